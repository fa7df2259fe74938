"""Schedules as pure functions of the optimiser step (DINO style), built on lightly's."""

from __future__ import annotations

from lightly.utils.scheduler import cosine_schedule


def warmup_cosine(
    step: int, total_steps: int, warmup_steps: int, peak: float, final: float
) -> float:
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps``, then cosine to ``final``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    return cosine_schedule(step - warmup_steps, max(1, total_steps - warmup_steps), peak, final)


def cosine(step: int, total_steps: int, start: float, end: float) -> float:
    """Cosine from ``start`` at step 0 to ``end`` at the last step (EMA momentum, wd)."""
    return cosine_schedule(min(step, total_steps), max(1, total_steps), start, end)
