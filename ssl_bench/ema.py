"""The EMA-teacher part shared by BYOL, DINO, LoGo and DetailCLIP.

A teacher is a frozen copy of student modules (no gradients, never seen by the
optimiser) that moves towards them after every real optimiser step,
``teacher = tau * teacher + (1 - tau) * student`` (lightly's ``update_momentum``), with
``tau`` a pure function of the step: constant, or cosine from ``base`` to 1 (BYOL, DINO).
A method keeps its teacher modules as attributes (their names are its checkpoint keys),
builds them with :func:`frozen_copy` and calls :func:`ema_update` from
``after_optimizer_step``, which the trainer calls once per optimiser step (after
gradient accumulation), on every rank.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from lightly.models.utils import deactivate_requires_grad, update_momentum
from torch import nn

from ssl_bench.schedules import cosine

SCHEDULES = ("cosine", "constant")


def frozen_copy(module: nn.Module, make: Callable[[], nn.Module] | None = None) -> nn.Module:
    """A copy of ``module`` with its weights and no gradients. ``make`` builds an empty
    twin for modules that cannot be deep-copied (weight_norm layers, as in DINO's head)."""
    if make is None:
        twin = copy.deepcopy(module)
    else:
        twin = make()
        twin.load_state_dict(module.state_dict())
    deactivate_requires_grad(twin)
    return twin


def momentum(step: int, total_steps: int, base: float, schedule: str = "cosine") -> float:
    """The EMA rate at ``step``: ``base`` throughout, or cosine from ``base`` to 1."""
    if schedule == "constant":
        return base
    return cosine(step, total_steps, base, 1.0)


def scaled_momentum(base: float, batch_size: int, reference_batch: int) -> float:
    """The EMA scaling rule (Busbridge et al. 2023, "How to Scale Your EMA"): ``base`` holds
    at ``reference_batch``; at ``kappa = batch_size / reference_batch`` times that batch the
    rate is ``base ** kappa``, so the target moves as far per epoch (per image seen) at any
    batch. ``reference_batch`` 0 turns the rule off."""
    if reference_batch <= 0:
        return base
    return base ** (batch_size / reference_batch)


@torch.no_grad()
def ema_update(pairs: Iterable[tuple[nn.Module, nn.Module]], tau: float) -> None:
    """Move each (student, teacher) pair's teacher towards its student at rate ``tau``."""
    for student, teacher in pairs:
        update_momentum(student, teacher, tau)
