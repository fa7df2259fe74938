"""Helpers shared by the method tests (imported as ``from helpers import ...``)."""

from __future__ import annotations

import torch

from ssl_bench.config import Config
from ssl_bench.data.views import ViewGenerator, resolve_views
from ssl_bench.method import Method


def views_for(method: Method, cfg: Config, n: int = 8, size: int = 16) -> list[torch.Tensor]:
    """The method's views of ``n`` fixed random uint8 images, reproducibly."""
    images = torch.randint(
        0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    specs = resolve_views(method.views(), cfg.aug, size)
    return ViewGenerator([0.5] * 3, [0.25] * 3)(images, specs, torch.Generator().manual_seed(0))
