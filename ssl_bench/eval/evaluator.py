"""Runs the evaluators on one model and returns the ``eval`` section of summary.json.

The evaluators are plug-ins (``ssl_bench/evaluators/``, one module each, registered in
``EVALUATORS``); this module only checks what each needs and runs them in their declared
order. Every number is stored beside the protocol parameters that produced it. All
evaluators read the same :class:`FeatureCache`, so features are extracted once per
checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ssl_bench.config import Config
from ssl_bench.data.splits import DatasetSplits
from ssl_bench.data.views import ViewGenerator
from ssl_bench.errors import UserError
from ssl_bench.eval.features import FeatureCache
from ssl_bench.eval.names import in_order
from ssl_bench.evaluators import EvalContext
from ssl_bench.method import Method
from ssl_bench.registry import DATASETS, EVALUATORS, METHODS

# What a method capability is, for error messages (Method.capabilities declares them).
CAPABILITIES = {"text": "a method with a text tower", "token_removal": "a token-removal method"}


def _unmet(need: str, name: str, method: Method, data: DatasetSplits) -> str | None:
    """Why evaluator ``name`` cannot run here, or None if ``need`` is met."""
    if need == "masks":
        if data.has_masks:
            return None
        have = ", ".join(e.name for e in DATASETS.entries() if e.extra.get("has_masks"))
        return f"{name} needs masks; dataset '{data.name}' has none; datasets with masks: {have}"
    if need == "factors":
        if data.test.factors is not None:
            return None
        return (
            f"{name} needs a dataset that records its generator factors (shapes); "
            f"'{data.name}' does not"
        )
    if need in method.capabilities:
        return None
    have = ", ".join(e.name for e in METHODS.entries() if need in e.factory.capabilities)
    return f"{name} needs {CAPABILITIES.get(need, need)} ({have})"


def evaluate(
    method: Method,
    data: DatasetSplits,
    cfg: Config,
    views: ViewGenerator,
    device: torch.device,
    cache: FeatureCache,
    only: list[str],
    explicit: bool = False,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the evaluators in ``only``; ``explicit`` = the user named them (then one whose
    needs are unmet, ``seg`` on a dataset without masks say, is an error rather than a
    skip). Figures go under ``out_dir`` (the run folder)."""
    ctx = EvalContext(method, data, cfg, views, device, cache, out_dir)
    out: dict[str, Any] = {}
    for name in in_order(list(dict.fromkeys(only))):
        entry = EVALUATORS.get(name)
        reasons = [r for n in entry.extra.get("needs", ()) if (r := _unmet(n, name, method, data))]
        if reasons:
            if explicit:
                raise UserError(reasons[0])
            continue
        out.update(entry.factory(ctx))
    return out


def summary_rows(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """The terminal summary's evaluation lines, each evaluator's own, in order."""
    rows: list[tuple[str, str]] = []
    for name in in_order(EVALUATORS.names()):
        show = EVALUATORS.get(name).extra.get("summary")
        if show is not None and name in ev:
            rows += show(ev)
    return rows
