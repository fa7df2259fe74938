"""How much of the machine a run uses: FLOPs per training image (counted by PyTorch's
``FlopCounterMode`` on one real step) against a measured matmul peak.

``utilisation`` = achieved FLOP/s (FLOPs per image x images per second) / the FLOP/s of a
large square matmul in the run's precision on the same device, measured at the end of
the first training in the process (later runs of a sweep reuse it); what the speed issue
calls the utilisation figure.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from ssl_bench.runtime import autocast, rng_state, set_rng_state, uses_bf16


def flops_per_image(
    method: Any,  # ssl_bench.method.Method
    make_views: Callable[[Tensor, Sequence[Any], torch.Generator], list[Tensor]],
    images: Tensor,
    targets: Tensor,
    specs: Sequence[Any],
    device: torch.device,
    precision: str,
    n: int = 8,
) -> float | None:
    """Forward + backward FLOPs of one training step, per image, on ``n`` images. The
    method's weights, buffers (BatchNorm, centres), gradients and every RNG are restored
    afterwards, so the run is unchanged. None if the count fails."""
    saved = {k: v.detach().clone() for k, v in method.state_dict().items() if isinstance(v, Tensor)}
    rng = rng_state()
    g = torch.Generator(device=device).manual_seed(0)
    try:
        views = make_views(images[:n], specs, g)
        with FlopCounterMode(display=False) as counter:
            with autocast(device, precision):
                out = method.training_step(views, targets[:n], 0, 1)
            out["loss"].backward()
        return counter.get_total_flops() / n
    except Exception:  # a counter gap must never fail a run; the figure is then missing
        return None
    finally:
        method.load_state_dict(saved, strict=False)
        method.zero_grad(set_to_none=True)
        set_rng_state(rng)


@functools.cache
def matmul_flops_per_s(device: torch.device, precision: str, size: int = 2048) -> float:
    """:func:`measure_matmul_flops_per_s`, once per process, device and precision: the
    peak is a property of the machine (about 2 s to measure on a slow CPU), and a sweep or
    a test session runs many runs in one process."""
    return measure_matmul_flops_per_s(device, precision, size)


def measure_matmul_flops_per_s(device: torch.device, precision: str, size: int = 2048) -> float:
    """FLOP/s of a ``size``^2 matmul in the run's precision: the machine's practical peak."""
    dtype = torch.bfloat16 if uses_bf16(device, precision) else torch.float32
    # Constant operands: a matmul's speed does not depend on the values, and drawing
    # random ones would move the global RNG the evaluation comes after.
    a = torch.full((size, size), 0.5, device=device, dtype=dtype)
    b = torch.full((size, size), 0.25, device=device, dtype=dtype)
    a @ b  # warm-up
    reps, start = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - start < 0.3:
        a @ b
        reps += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 2 * size**3 * reps / (time.perf_counter() - start)
