"""Training across processes with PyTorch's own engine: ``torchrun`` launches the
processes, :func:`process_group` joins them (NCCL on CUDA, one GPU per local rank; gloo
on CPU), and the helpers below are the only collectives a run uses.

What each rank does (the contract, issue 16):

- ``train.batch_size`` is the global batch; rank r takes a disjoint ``B / world_size``
  share of every global batch (:mod:`ssl_bench.data.sampler`). The views of a sample are
  a function of (seed, step, its position in the global batch), never of the rank, so a
  global batch gets the same views whatever the world size.
- The trainable modules are wrapped in DistributedDataParallel through :class:`StepModule`
  (the method computes its own loss in ``training_step``); EMA teachers hold no gradients
  and are updated identically on every rank after the optimiser step.
- Losses that need the whole batch gather it with :func:`gather` (gradients flow back to
  the rank that produced each row); DINO/iBOT centres are all-reduced by lightly.
- Only rank 0 writes files, monitors and evaluates; a non-finite loss on any rank stops
  every rank at the same step (:func:`any_rank`).

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) none of this runs.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ssl_bench.errors import UserError

# A rank that waits longer than this at a collective gives up with an error instead of
# hanging forever (e.g. when another rank died).
TIMEOUT = timedelta(minutes=10)


def launched() -> bool:
    """True in a process started by ``torchrun`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


@contextlib.contextmanager
def process_group(device: str) -> Iterator[None]:
    """Join the ``torchrun`` process group for the duration of a command (no-op without
    torchrun, or when a group exists already, as in tests that create their own)."""
    if not launched() or dist.is_initialized():
        yield
        return
    cuda = device in ("auto", "cuda") and torch.cuda.is_available() or device.startswith("cuda")
    if cuda:
        n_gpus = torch.cuda.device_count()
        if local_rank() >= n_gpus:
            raise UserError(
                f"torchrun started {os.environ.get('LOCAL_WORLD_SIZE', '?')} processes on this "
                f"node but it has {n_gpus} CUDA device(s); use --nproc_per_node={n_gpus} or "
                f"--device cpu"
            )
        torch.cuda.set_device(local_rank())
    dist.init_process_group("nccl" if cuda else "gloo", timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather(x: Tensor) -> Tensor:
    """All ranks' ``x`` (B, ...) concatenated in rank order (W*B, ...); the backward sums
    each row's gradient from every rank's loss and returns it to the rank that owns the
    row (``torch.distributed.nn.all_gather``). Identity in one process."""
    if not active():
        return x
    return torch.cat(torch.distributed.nn.functional.all_gather(x), dim=0)


def rank_offset(n: int) -> int:
    """Where this rank's ``n`` rows start in a :func:`gather`-ed batch."""
    return dist.get_rank() * n if active() else 0


def any_rank(flag: Tensor) -> bool:
    """True when ``flag`` (a bool scalar) is true on any rank; every rank gets the same
    answer, so every rank takes the same branch (no rank left waiting at a collective)."""
    if active():
        flag = flag.to(torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag)


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if active():
        dist.barrier()


class StepModule(nn.Module):
    """The method's training step as a ``forward``, so DistributedDataParallel can wrap
    it (DDP reduces gradients of what ``forward`` used; the method stays generic)."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, *args: Any) -> dict[str, Tensor]:
        return self.method.training_step(*args)


def wrap(method: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """The module the trainer calls for a step: the method itself in one process, a DDP
    wrapper of it under torchrun. Frozen parameters (EMA teachers) are not reduced.
    ``sync_bn``: BatchNorm statistics over the global batch (CUDA only)."""
    step = StepModule(method)
    if not active() or not any(p.requires_grad for p in method.parameters()):
        return step  # one process, or nothing to train (random, pixels)
    if sync_bn and device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(step)
    with warnings.catch_warnings():
        # torch 2.14 deprecates broadcast_buffers but says to keep it (False) for
        # rank-local buffers until its replacement exists; the warning is not for us.
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
        return nn.parallel.DistributedDataParallel(
            step,
            device_ids=[device.index] if device.type == "cuda" else None,
            # A step may leave parameters unused (DINO's frozen last layer in its first
            # epoch, a disabled loss term); DDP must not wait for their gradients.
            find_unused_parameters=True,
            broadcast_buffers=False,  # buffers (BN statistics, centres) stay each rank's own
        )


def no_sync(module: nn.Module, skip: bool) -> contextlib.AbstractContextManager:
    """Skip the gradient all-reduce for accumulation micro-steps before the last one."""
    if skip and isinstance(module, nn.parallel.DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()
