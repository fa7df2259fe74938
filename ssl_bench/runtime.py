"""Where a run executes: device, precision, distributed rank, seeding, provenance.

Nothing here is global state: each function reads the environment and returns values
that the caller passes on, so two runs in one process (tests, sweeps) never interfere
and a ``torchrun`` launch only changes what :func:`dist_info` reports.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssl_bench.errors import UserError


def select_device(name: str) -> torch.device:
    """``auto`` -> cuda if available, else mps, else cpu; an unavailable device is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' requested but CUDA is not available; use --device cpu")
    if device.type == "cuda" and device.index is None:
        # The current device: cuda:LOCAL_RANK under torchrun (ssl_bench.distributed).
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device '{name}' requested but MPS is not available; use --device cpu")
    return device


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device`` without making the host wait for the device: a plain
    copy from pageable memory to CUDA synchronises the stream, so the host could not
    queue the next step's kernels while this one runs. From pinned memory, asynchronously
    (the caching host allocator keeps the pinned block until the copy is done)."""
    if device.type != "cuda" or x.device.type != "cpu":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX). Where it does,
    bf16 autocast trains small_cnn 1.5-2x faster than fp32 (benchmarks/results/profile.md);
    where it does not (e.g. AVX2 only), bf16 is emulated and brings nothing."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, private
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def uses_bf16(device: torch.device, precision: str) -> bool:
    """``auto`` = bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere."""
    if precision != "auto":
        return precision == "bf16"
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast where :func:`uses_bf16`, else nothing (fp32)."""
    if not uses_bf16(device, precision):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def precision_name(device: torch.device, precision: str) -> str:
    return "bf16" if uses_bf16(device, precision) else "fp32"


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Only rank 0 writes files and shows progress."""
        return self.rank == 0


def dist_info() -> DistInfo:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return DistInfo(torch.distributed.get_rank(), torch.distributed.get_world_size())
    return DistInfo()


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy and random for model init and any stray randomness."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every RNG's state in tensors and plain types only, so a checkpoint that holds it
    loads with ``torch.load(weights_only=True)``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": [version, list(internal), py_gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, py_gauss = state["python"]
    random.setstate((version, tuple(internal), py_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def git_sha() -> str | None:
    """The commit of the ssl-bench source tree, with ``-dirty`` if it has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        return sha + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    import lightly
    import torchvision

    import ssl_bench
    from ssl_bench.blas import import_faiss

    faiss = import_faiss()
    return {
        "ssl_bench": ssl_bench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightly": lightly.__version__,
        "faiss": faiss.__version__,
    }


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
