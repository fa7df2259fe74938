"""Sweep files: a base config, a grid, named arms and seeds, expanded into one run each.

A sweep file is YAML with four keys::

    base:    {train: {epochs: 10}}         # config sections shared by every run
    grid:    {train.batch_size: [64, 256]} # dotted key -> values: the cartesian product
    arms:    {no_blur: {aug.blur: false}}  # named overrides, each crossed with the grid
    seeds:   [0, 1, 2]

``method`` (the method's name) may sit in ``base``, the grid or an arm. Every run gets a
folder named from its arm, its grid values and its seed. ``plan`` resolves each run's
full config up front, so an unknown key or value fails before anything trains.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssl_bench.config import Config, load_yaml, resolve
from ssl_bench.errors import UserError, unknown

SWEEP_KEYS = ("base", "grid", "arms", "seeds")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its folder name, method and the config layers it adds."""

    name: str
    method: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value
    config: Config | None = field(default=None, compare=False, repr=False)


def _nest(dotted: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"optim.lr": 0.1}`` -> ``{"optim": {"lr": 0.1}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in dotted.items():
        section, dot, name = key.partition(".")
        if not dot or not name:
            raise UserError(f"sweep override keys are section.key, got '{key}'")
        out.setdefault(section, {})[name] = value
    return out


def _merge(base: dict[str, Any], extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for section, values in extra.items():
        out.setdefault(section, {}).update(values)
    return out


def _label(value: Any) -> str:
    text = str(value).replace(" ", "")
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in text)


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read and check the shape of a sweep file (not yet its config values)."""
    data = load_yaml(path)
    for key in data:
        if key not in SWEEP_KEYS:
            raise unknown(f"key in sweep file {path}", key, SWEEP_KEYS)
    grid = data.get("grid") or {}
    if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise UserError(f"{path}: grid must map each key to a non-empty list of values")
    arms = data.get("arms") or {}
    if not isinstance(arms, dict):
        raise UserError(f"{path}: arms must map arm names to overrides")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise UserError(f"{path}: seeds must be a non-empty list of integers")
    if not grid and not arms:
        raise UserError(f"{path}: the sweep is empty: give a grid, arms, or both")
    return {"base": data.get("base") or {}, "grid": grid, "arms": arms, "seeds": seeds}


def plan(path: str | Path) -> list[RunSpec]:
    """Every run of a sweep file, its config resolved and validated."""
    sweep = load_sweep(path)
    base = dict(sweep["base"])
    base_method = base.pop("method", None)
    grid_keys = list(sweep["grid"])
    arms = sweep["arms"] or {"": {}}
    runs: list[RunSpec] = []
    for arm, arm_values in arms.items():
        for combo in itertools.product(*(sweep["grid"][k] for k in grid_keys)):
            overrides = {**(arm_values or {}), **dict(zip(grid_keys, combo))}
            method = overrides.pop("method", base_method)
            if method is None:
                raise UserError(f"{path}: no method for arm '{arm}': set `method` in base/arm")
            parts = [arm] if arm else []
            parts += [f"{k.split('.')[-1]}={_label(v)}" for k, v in zip(grid_keys, combo)]
            for seed in sweep["seeds"]:
                name = "-".join([*parts, f"seed{seed}"])
                values = _merge(base, _nest({**overrides, "train.seed": seed}))
                try:
                    cfg = resolve(str(method), file_values=values)
                except UserError as err:
                    raise UserError(f"{path}, run {name}: {err}") from None
                runs.append(RunSpec(name, str(method), seed, overrides, cfg))
    return runs
