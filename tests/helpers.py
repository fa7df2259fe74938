"""Helpers shared by the method tests (imported as ``from helpers import ...``)."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode

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


class HostSyncs(TorchDispatchMode):
    """Records the aten ops that make the host wait for an accelerator: data-dependent
    shapes (``nonzero``, boolean-mask indexing) and reading a value on the host
    (``.item()``). On the CPU nothing waits, so this is how the tests see, without a GPU,
    what would sync on one. ``seen`` holds every op name, ``syncs`` the syncing ones."""

    NAMES = {"nonzero", "masked_select", "_local_scalar_dense", "equal", "is_nonzero"}

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.syncs: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name.split("::")[-1]
        self.seen.add(name)
        indices = [t for a in args if isinstance(a, (list, tuple)) for t in a]
        if name in self.NAMES or (
            name.startswith("index")
            and any(getattr(t, "dtype", None) == torch.bool for t in indices)
        ):
            self.syncs.add(name)
        return func(*args, **(kwargs or {}))
