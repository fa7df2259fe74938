"""Frozen feature extraction: batched, on the training device, model in eval mode."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ssl_bench.data.views import ViewGenerator
from ssl_bench.runtime import autocast


@torch.no_grad()
def extract(
    model: nn.Module,
    fn: Callable[[Tensor], Tensor],
    images: Tensor,
    views: ViewGenerator,
    device: torch.device,
    batch_size: int = 512,
    precision: str = "auto",
) -> Tensor:
    """``fn`` applied to the plain (whole-image, normalised) view of uint8 ``images``.

    ``model`` is put in eval mode for the pass (BatchNorm running statistics, no
    dropout) and restored afterwards. Returns float32 features on the CPU.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = views.plain(images[i : i + batch_size].to(device, non_blocking=True))
            with autocast(device, precision):
                out.append(fn(x).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)
