"""Why kNN and the linear probe disagree on a run: kNN on its cached pooled features as
stored, centred and standardised, and the share of variance in the top directions.

    python benchmarks/knn_geometry.py RUN_DIR

Needs a finished run folder (its `features/` cache, written by the evaluation). If kNN
recovers when the features are standardised, a few channels' scale dominates the cosine;
if it does not and the top direction holds most of the variance, the features have
collapsed dimensionally (the linear probe may still read the small directions).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

from ssl_bench.config import DataConfig
from ssl_bench.data.datasets import load_dataset
from ssl_bench.eval.knn import knn_eval


def main(run: Path) -> None:
    caches = sorted((run / "features").glob("*-pooled.pt"))
    if not caches:
        raise SystemExit(f"{run}: no cached pooled features; run `ssl-bench eval {run}` first")
    f = torch.load(caches[-1], weights_only=True)
    data_cfg = yaml.safe_load((run / "config.yaml").read_text())["data"]
    data = load_dataset(DataConfig(**data_cfg))
    tr, te = f["train"], f["test"]
    mu, sd = tr.mean(0), tr.std(0) + 1e-6
    for name, a, b in [
        ("as stored", tr, te),
        ("centred", tr - mu, te - mu),
        ("standardised", (tr - mu) / sd, (te - mu) / sd),
    ]:
        r = knn_eval(a, data.train.labels, b, data.test.labels, data.num_classes, 20, 0.07)
        print(f"kNN top-1, {name:13s} {100 * r['top1']:.1f}%")
    s = torch.linalg.svdvals(tr - mu) ** 2
    share = ", ".join(f"{100 * v:.0f}%" for v in (s[:5] / s.sum()).tolist())
    print(f"variance in the top 5 directions (train, centred): {share}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
