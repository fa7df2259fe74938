"""CLIP (Radford et al., 2021): an image tower and a text tower trained with symmetric
InfoNCE over image-caption pairs and a learnable logit scale (init 1/0.07).

The views keep colour (no jitter, grayscale or solarisation): captions name the
object's colour, so recolouring an image would make its caption wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from ssl_bench.config import Config, MethodConfig, check_crop_scale
from ssl_bench.data.views import ViewSpec
from ssl_bench.method import DataInfo
from ssl_bench.registry import METHODS
from ssl_bench.text import ImageTextMethod, clip_loss


@dataclass
class CLIPConfig(MethodConfig):
    VIEW_KEYS_OWNED: ClassVar[dict[str, str]] = {
        "aug.crop_min_scale": "method.crop_scale",
        "aug.crop_max_scale": "method.crop_scale",
    }
    embed_dim: int = 128  # shared image-text embedding
    text_width: int = 128  # text transformer width (CPU scale)
    text_depth: int = 2
    text_heads: int = 4
    crop_scale: tuple[float, float] = (0.5, 1.0)  # mild crops: the caption must stay true

    def validate(self) -> None:
        check_crop_scale("method.crop_scale", self.crop_scale)


# CPU scale on `shapes` (measured, 2 cores, zero-shot top-1 with 10% chance): a ViT-Tiny
# with 4 blocks and 4 px patches stayed at chance (10-12%) however we set lr, depth or
# batch within 5 minutes; 8 px patches reached 20% in 24 epochs, and 58% when a conv
# stem (early convolutions) makes them. So: conv stem, 8 px patches (a 4x4
# token grid at 32 px), 4 blocks, batch 64 (twice the steps of 128 in the same time;
# zero-shot kept rising with steps), 16 epochs. On a GPU use the patchify stem, depth 12.
RECIPE = {
    "model": {"backbone": "vit_tiny", "depth": 4, "patch_size": 8, "vit_stem": "conv"},
    "optim": {
        "name": "adamw",
        "lr": 1e-3,
        "lr_scaling": "sqrt",
        "weight_decay": 0.05,
        "warmup_epochs": 1.0,
    },
    "train": {"epochs": 16, "batch_size": 64},
    "eval": {"evaluators": "knn,linear,lowshot,seg,collapse,zeroshot,retrieval"},
    # Whole-size views: the ViT's 4x4 patch grid (and DetailCLIP's masked patches) was tuned
    # at 32 px; the smaller views `shapes` gives the CNN methods are not screened here.
    # No view noise: `shapes_noisy` adds it against noise two image crops share, but the
    # second view here is the caption. Without it DetailCLIP's zero-shot rose from 35.4 ±
    # 2.2% to 43.7 ± 7.0 (3 seeds, paired +8.3 ± 5.7; benchmarks/results/recipes.md, 12-07).
    "aug": {"view_scale": 1.0, "noise_sd": 0.0},
}


def clip_views(m: CLIPConfig) -> list[ViewSpec]:
    """Crop and flip only: colour stays as the caption describes it."""
    return [ViewSpec(crop_scale=m.crop_scale, jitter_p=0.0, gray_p=0.0, blur_p=0.0)]


@METHODS.register(
    "clip",
    "CLIP: image and text towers, symmetric InfoNCE on image-caption pairs",
    config=CLIPConfig,
    recipe=RECIPE,
)
class CLIP(ImageTextMethod):
    def __init__(self, cfg: Config, info: DataInfo) -> None:
        m: CLIPConfig = cfg.method  # type: ignore[assignment]
        super().__init__(cfg, info, m.embed_dim, m.text_width, m.text_depth, m.text_heads)
        self.m = m

    def views(self) -> list[ViewSpec]:
        return clip_views(self.m)

    def training_step(
        self, views: list[Tensor], labels: Tensor, step: int, total_steps: int
    ) -> dict[str, Tensor]:
        (x,) = views  # (B, 3, H, W); labels: caption token ids (B, L)
        loss = clip_loss(self.encode_image(x), self.encode_text(labels), self.scale())
        return {"loss": loss, "logit_scale": self.scale().detach()}
