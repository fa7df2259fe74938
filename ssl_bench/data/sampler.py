"""Which samples go in which batch: a seeded permutation per epoch, sharded by rank."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped)."""
    return num_samples // batch_size


def rank_rows(batch_size: int, rank: int = 0, world_size: int = 1) -> Tensor:
    """The positions in every global batch that belong to ``rank`` (a strided share)."""
    return torch.arange(rank, batch_size, world_size)


def epoch_batches(
    num_samples: int, batch_size: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1
) -> Iterator[Tensor]:
    """Index tensors of this rank's share of each global batch of ``epoch``.

    The permutation depends only on (seed, epoch), so every rank draws the same one and
    takes a disjoint slice, and a resumed run sees exactly the batches it would have.
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(num_samples, generator=g)
    rows = rank_rows(batch_size, rank, world_size)
    for s in range(steps_per_epoch(num_samples, batch_size)):
        yield perm[s * batch_size : (s + 1) * batch_size][rows]
