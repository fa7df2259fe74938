"""Evaluators as plug-ins: one module each, registered in ``ssl_bench.registry.EVALUATORS``.

A module registers its ``run(ctx) -> dict`` (the entries it adds to ``summary["eval"]``)
with what the registry needs to wire it everywhere else:

- ``needs``: what must be there for it to run: ``masks`` or ``factors`` (of the dataset),
  or a method capability (``text``, ``token_removal``: ``Method.capabilities``). Asked for
  by name and not met, it is an error naming who has it; in a default list it is skipped.
- ``order``: its place in the summary, the results table and the report's protocol.
- ``headline``: results-table columns, flattened ``summary.json`` key -> title.
- ``summary``: the terminal summary's lines, from ``summary["eval"]``.
- ``protocol``: one sentence for the report (``{k}``/``{T}`` filled with kNN's settings).

Heavy libraries (faiss, scikit-learn) are imported inside ``run``, so the registry loads
cheaply wherever an evaluator list is checked (config validation, ``--help``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

SPLITS = ("train", "val", "test")


@dataclass
class EvalContext:
    """Everything an evaluator may read: the model, the data, the run's config, the
    shared feature cache, and where to write figures (the run folder, or None)."""

    method: Any  # ssl_bench.method.Method
    data: Any  # ssl_bench.data.splits.DatasetSplits
    cfg: Any  # ssl_bench.config.Config
    views: Any  # ssl_bench.data.views.ViewGenerator
    device: torch.device
    cache: Any  # ssl_bench.eval.features.FeatureCache
    out_dir: Path | None = None

    def pooled(self, split: str) -> Tensor:
        return self.cache.get("pooled", split)

    def labels(self, split: str) -> Tensor:
        return getattr(self.data, split).labels


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"
