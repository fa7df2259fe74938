"""Token removal for masked-image methods (DetailCLIP, A-CLIP): which patches a student
keeps, chosen from a teacher's attention, at random, or none removed.

Selection works on 2x2 blocks of patches, so kept regions are contiguous at the
block scale; everything is batched (top-k over block scores, one gather), with no
per-image Python loop.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_bench.errors import unknown


@runtime_checkable
class TokenRemoval(Protocol):
    """What a token-removal method offers (``capabilities`` ``token_removal``): its patch
    grid side, the fraction of 2x2 patch blocks it keeps, and per-patch scores (B, P)
    from which :func:`select_patches` keeps the highest (the teacher's attention)."""

    grid: int
    keep_ratio: float
    training: bool

    def removal_scores(self, x: Tensor) -> Tensor: ...

    def eval(self) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...


REMOVAL = ("attention", "random", "none")


def cls_attention(attentions: list[Tensor]) -> Tensor:
    """CLS -> patch attention averaged over layers and heads.

    attentions: per layer (B, heads, 1 + N, 1 + N) -> (B, N).
    """
    return torch.stack([a[:, :, 0, 1:] for a in attentions]).mean(dim=(0, 2))


def block_scores(patch_scores: Tensor, grid: int) -> Tensor:
    """(B, N) per-patch scores on a grid x grid layout -> (B, (grid // 2) ** 2) per block."""
    b = patch_scores.shape[0]
    return F.avg_pool2d(patch_scores.reshape(b, 1, grid, grid), 2).reshape(b, -1)


def blocks_to_patches(blocks: Tensor, grid: int) -> Tensor:
    """Block indices (B, K) on the (grid // 2)^2 block grid -> the patch indices they
    cover (B, 4K), sorted ascending (the order the student sees tokens in)."""
    half = grid // 2
    row, col = blocks // half * 2, blocks % half * 2  # top-left patch of each block
    # [0, 1, grid, grid + 1], made on the device (a tensor from a list is a host copy)
    step = torch.arange(2, device=blocks.device)
    offsets = (step[:, None] * grid + step[None, :]).flatten()
    patches = (row * grid + col)[..., None] + offsets  # (B, K, 4)
    return patches.flatten(1).sort(dim=1).values


def select_patches(
    patch_scores: Tensor,
    grid: int,
    keep_ratio: float,
    mode: str,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Indices (B, K') of the patches to keep.

    ``attention``: the blocks with the highest mean score; ``random``: the same number of
    blocks drawn uniformly (scores ignored); ``none``: every patch.
    """
    if mode not in REMOVAL:
        raise unknown("removal", mode, REMOVAL)
    b, n = patch_scores.shape
    device = patch_scores.device
    if mode == "none":
        return torch.arange(n, device=device).expand(b, n)
    scores = block_scores(patch_scores, grid)  # (B, nb)
    k = max(1, round(keep_ratio * scores.shape[1]))
    if mode == "random":
        scores = torch.rand(scores.shape, generator=generator, device=device)
    return blocks_to_patches(scores.topk(k, dim=1).indices, grid)


def removed_mask(keep: Tensor, n: int) -> Tensor:
    """(B, K) kept indices -> (B, N) bool, True where a patch was removed."""
    mask = torch.ones(keep.shape[0], n, dtype=torch.bool, device=keep.device)
    return mask.scatter(1, keep, False)
