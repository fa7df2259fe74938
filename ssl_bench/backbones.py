"""Backbones: image -> pooled features (B, D), plus a spatial map (B, D, h, w).

Every backbone exposes ``dim`` (pooled feature size), ``forward`` (pooled features, what
kNN and linear probes read) and ``forward_spatial`` (a feature map or the grid of patch
tokens, what the segmentation probe and dense methods read).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from ssl_bench.config import ModelConfig
from ssl_bench.errors import UserError
from ssl_bench.registry import BACKBONES


class Backbone(nn.Module):
    dim: int

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, D)
        return self.forward_spatial(x).mean(dim=(2, 3))

    def forward_spatial(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, D, h, w)
        raise NotImplementedError

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Pooled (B, D) and spatial (B, D, h, w) features from one pass (evaluation)."""
        spatial = self.forward_spatial(x)
        return spatial.mean(dim=(2, 3)), spatial


def build_backbone(cfg: ModelConfig, image_size: int) -> Backbone:
    """The backbone named by ``cfg.backbone`` for images of side ``image_size``."""
    return BACKBONES.get(cfg.backbone).factory(cfg, image_size)


# ---------------------------------------------------------------- convolutional


class _ChannelsLast(Backbone):
    """CNNs run in channels-last memory format: about 1.6x faster on CPU (oneDNN) and
    the layout tensor cores prefer on GPU."""

    def _prepare(self) -> None:
        self.to(memory_format=torch.channels_last)

    def _in(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last)


class SmallCNN(_ChannelsLast):
    """Four conv-BN-ReLU stages (width w, 2w, 4w, 8w), 2x2 max-pool between stages.

    The fast CPU default: at w=32 it trains at ~1,400 images/s at 32 px on 2 cores.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for stage in range(4):
            c_out = width * 2**stage
            if stage:
                layers.append(nn.MaxPool2d(2))
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.dim = c_in
        self._prepare()

    def forward_spatial(self, x: Tensor) -> Tensor:
        return self.features(self._in(x))


class ResNet(_ChannelsLast):
    """torchvision ResNet without its classifier. Images of 64 px or less get the CIFAR
    stem (3x3 conv, stride 1, no max-pool), as in solo-learn and lightly's benchmarks."""

    def __init__(self, depth: int, image_size: int) -> None:
        super().__init__()
        net = {18: torchvision.models.resnet18, 50: torchvision.models.resnet50}[depth](
            weights=None
        )
        if image_size <= 64:
            net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        self.dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self._prepare()

    def forward_spatial(self, x: Tensor) -> Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(self._in(x)))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))


# ---------------------------------------------------------------- vision transformer


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, return_attention: bool = False) -> tuple[Tensor, Tensor | None]:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if return_attention:  # explicit softmax so the weights can be returned
            attn = (q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5).softmax(-1)  # (B, h, N, N)
            out = attn @ v
        else:
            attn, out = None, F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d)), attn


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, return_attention: bool = False) -> tuple[Tensor, Tensor | None]:
        y, attn = self.attn(self.norm1(x), return_attention)
        x = x + y
        return x + self.mlp(self.norm2(x)), attn


class ViT(Backbone):
    """A plain ViT with a CLS token. Position embeddings are interpolated for inputs of
    another size (DINO's local crops); ``tokens(keep=...)`` encodes a subset of patches
    (token removal)."""

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        dim: int,
        depth: int,
        heads: int,
        stem: str = "patch",
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(
                f"image size {image_size} is not a multiple of patch size {patch_size}"
            )
        self.patch_size = patch_size
        self.grid = image_size // patch_size
        self.dim = dim
        self.patch_embed = (
            conv_stem(dim, patch_size)
            if stem == "conv"
            else nn.Conv2d(3, dim, patch_size, stride=patch_size)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid**2, dim))
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_vit)

    def patch_pos(self, h: int, w: int) -> Tensor:
        """Patch position embeddings for an (h, w) grid, bicubic-interpolated if needed."""
        pos = self.pos_embed[:, 1:]
        if (h, w) == (self.grid, self.grid):
            return pos
        grid = pos.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        return grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)

    def tokens(
        self, x: Tensor, keep: Tensor | None = None, return_attention: bool = False
    ) -> tuple[Tensor, list[Tensor]]:
        """(B, 3, H, W) -> normalised tokens (B, 1 + N', D) and per-layer attentions.

        ``keep`` (B, N') holds the indices of the patches to encode (all if None).
        """
        p = self.patch_embed(x)  # (B, D, h, w)
        h, w = p.shape[-2:]
        t = p.flatten(2).transpose(1, 2) + self.patch_pos(h, w)  # (B, N, D)
        if keep is not None:
            t = t.gather(1, keep[..., None].expand(-1, -1, t.shape[-1]))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(t.shape[0], -1, -1)
        t = torch.cat([cls, t], dim=1)
        attentions = []
        for block in self.blocks:
            t, attn = block(t, return_attention)
            if attn is not None:
                attentions.append(attn)
        return self.norm(t), attentions

    def forward(self, x: Tensor) -> Tensor:
        return self.tokens(x)[0][:, 0]

    def forward_spatial(self, x: Tensor) -> Tensor:
        return self.forward_features(x)[1]

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        t = self.tokens(x)[0]  # (B, 1 + N, D)
        h, w = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        return t[:, 0], t[:, 1:].transpose(1, 2).reshape(t.shape[0], -1, h, w)


def conv_stem(dim: int, patch_size: int) -> nn.Sequential:
    """Early convolutions (Xiao et al., 2021): stride-2 3x3 conv-BN-ReLU layers down to the
    patch grid, then a 1x1 conv to the token width. Same tokens as the patchify stem, but
    a ViT trained from scratch on little data learns shape from them far sooner."""
    if patch_size < 2 or patch_size & (patch_size - 1):
        raise UserError(
            f"model.vit_stem=conv needs a power-of-two patch size, got {patch_size}; "
            f"set model.patch_size (e.g. 8 or 16) or model.vit_stem=patch"
        )
    layers: list[nn.Module] = []
    c_in, width, size = 3, max(16, dim // 4), 1
    while size < patch_size:
        layers += [
            nn.Conv2d(c_in, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        c_in, width, size = width, width * 2, size * 2
    return nn.Sequential(*layers, nn.Conv2d(c_in, dim, 1))


def _init_vit(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def _patch_size(cfg: ModelConfig, image_size: int) -> int:
    """The configured patch size, or image_size // 8 (an 8x8 grid), capped at 16 px."""
    if cfg.patch_size:
        return cfg.patch_size
    return max(2, min(16, image_size // 8))


def _vit(dim: int, depth: int, heads: int):  # noqa: ANN202
    def make(cfg: ModelConfig, image_size: int) -> ViT:
        patch = _patch_size(cfg, image_size)
        return ViT(image_size, patch, dim, cfg.depth or depth, heads, cfg.vit_stem)

    return make


# ---------------------------------------------------------------- registry

BACKBONES.register("small_cnn", "4-stage conv-BN-ReLU CNN, width w..8w (fast CPU default)")(
    lambda cfg, size: SmallCNN(cfg.width)
)
BACKBONES.register(
    "resnet18", "torchvision ResNet-18, CIFAR stem (3x3 conv, no max-pool) <= 64 px"
)(lambda cfg, size: ResNet(18, size))
BACKBONES.register("resnet50", "torchvision ResNet-50, CIFAR stem <= 64 px")(
    lambda cfg, size: ResNet(50, size)
)
BACKBONES.register("vit_tiny", "ViT-Tiny: dim 192, 3 heads, 12 blocks, patch = image_size / 8")(
    _vit(192, 12, 3)
)
BACKBONES.register("vit_small", "ViT-Small: dim 384, 6 heads, 12 blocks, patch = image_size / 8")(
    _vit(384, 12, 6)
)
