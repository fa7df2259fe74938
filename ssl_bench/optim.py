"""Optimisers (SGD, AdamW, lightly's LARS), lr scaling and the per-step schedule.

The parameter-group protocol. ``Method.param_groups()`` returns a list of dicts, each
with ``name`` and ``params`` and optionally:

- ``weight_decay``: this group's decay (default ``optim.weight_decay``; 0 for norms and
  biases). With ``optim.weight_decay_end`` only groups with decay > 0 follow the schedule.
- ``lr_scale``: this group's lr = the scheduled lr x ``lr_scale`` (BYOL's predictor,
  LoGo's affinity network).
- ``freeze_until_step``: lr 0 before this optimiser step (DINO's last layer).

:func:`split_group` is the one way a method carves such a group out of the default ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from lightly.utils.lars import LARS
from torch import nn

from ssl_bench.config import OptimConfig
from ssl_bench.method import Method
from ssl_bench.schedules import cosine, warmup_cosine

# The CPU-scale optimiser recipe of SimCLR and LoGo on `shapes` (BYOL uses it at a tenth
# of the lr, without weight decay: methods/byol.py): AdamW converged in
# minutes where SGD/LARS at the papers' settings (FACTS: LARS lr 0.2 * bs/256, wd 1.5e-6
# for BYOL) had not left the random-init level after the same number of steps. lr is for
# batch 256, scaled by sqrt(bs / 256), as usual for Adam.
ADAMW_CPU = {
    "name": "adamw",
    "lr": 3e-3,
    "lr_scaling": "sqrt",
    "weight_decay": 1e-4,
    "warmup_epochs": 1.0,
}


def split_group(
    groups: list[dict[str, Any]], params: Iterable[nn.Parameter], suffix: str, **keys: Any
) -> list[dict[str, Any]]:
    """Split every group in two: its parameters outside ``params``, and those inside,
    named ``<name><suffix>`` and given ``keys`` (e.g. ``lr_scale=10``). Each keeps its
    group's weight decay unless ``keys`` set one."""
    chosen = {id(p) for p in params}
    out = []
    for g in groups:
        out.append({**g, "params": [p for p in g["params"] if id(p) not in chosen]})
        inside = [p for p in g["params"] if id(p) in chosen]
        if inside:
            out.append({**g, "name": g["name"] + suffix, "params": inside, **keys})
    return out


def peak_lr(cfg: OptimConfig, batch_size: int) -> float:
    """``cfg.lr`` is the lr at batch size 256; scale it to ``batch_size``."""
    ratio = batch_size / 256
    return cfg.lr * {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}[cfg.lr_scaling]


def build_optimizer(method: Method, cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    groups = [g for g in method.param_groups() if g["params"]]
    for g in groups:
        g.setdefault("weight_decay", cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    # LARS skips layer-wise adaptation for groups with weight decay 0 (norms, biases).
    return LARS(groups, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def apply_schedule(
    optimizer: torch.optim.Optimizer,
    cfg: OptimConfig,
    step: int,
    total_steps: int,
    warmup_steps: int,
    lr: float,
) -> float:
    """Set every group's lr (and decaying groups' weight decay) for ``step``; return lr."""
    now = warmup_cosine(step, total_steps, warmup_steps, lr, lr * cfg.min_lr_ratio)
    wd = None
    if cfg.weight_decay_end is not None:
        wd = cosine(step, total_steps, cfg.weight_decay, cfg.weight_decay_end)
    for g in optimizer.param_groups:
        # A group may be frozen for its first steps (DINO's last layer): lr 0 also stops
        # AdamW's decoupled weight decay, unlike a zeroed gradient.
        frozen = step < g.get("freeze_until_step", 0)
        g["lr"] = 0.0 if frozen else now * g.get("lr_scale", 1.0)
        if wd is not None and g["weight_decay"] > 0:
            g["weight_decay"] = wd
    return now
