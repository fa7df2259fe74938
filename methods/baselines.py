"""Reference rows for every table, run through the same evaluator as any method.

- ``random``: the backbone at its random initialisation (what training must beat);
- ``pixels``: raw normalised pixels as features (what any feature must beat);
- ``supervised``: the same backbone trained with labels, same views minus colour
  distortion, same budget (what self-supervision tries to approach).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ssl_bench.config import Config, MethodConfig
from ssl_bench.data.views import ViewSpec
from ssl_bench.method import DataInfo, Method
from ssl_bench.registry import METHODS


@METHODS.register(
    "random", "baseline: untrained backbone (random init, seeded)", config=MethodConfig
)
class RandomInit(Method):
    trainable = False


@METHODS.register("pixels", "baseline: raw normalised pixels as features", config=MethodConfig)
class Pixels(Method):
    trainable = False

    def embed(self, x: Tensor) -> Tensor:
        return x.flatten(1)  # (B, 3*H*W)

    def embed_spatial(self, x: Tensor) -> Tensor:
        return x  # (B, 3, H, W)

    def features(self, x: Tensor) -> dict[str, Tensor | None]:
        return {"pooled": self.embed(x), "spatial": x, "head": None}


@METHODS.register(
    "supervised",
    "baseline: backbone + linear classifier trained with labels",
    config=MethodConfig,
    recipe={"optim": {"name": "sgd", "lr": 0.2, "weight_decay": 5e-4}},
)
class Supervised(Method):
    def __init__(self, cfg: Config, info: DataInfo) -> None:
        super().__init__(cfg, info)
        self.classifier = nn.Linear(self.backbone.dim, info.num_classes)

    def views(self) -> list[ViewSpec]:
        return [ViewSpec(jitter_p=0.0, gray_p=0.0, blur_p=0.0)]  # crop + flip

    def head_of(self, pooled: Tensor) -> Tensor:
        return self.classifier(pooled)

    def training_step(
        self, views: list[Tensor], labels: Tensor, step: int, total_steps: int
    ) -> dict[str, Tensor]:
        logits = self.embed_head(views[0])
        loss = F.cross_entropy(logits, labels, ignore_index=-1)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "train_acc": accuracy}
