"""What a run's frozen features encode: the `shapes` generator's factors.

The quality diagnostic behind "why does BYOL end below the random backbone": for each
run folder (trained on `shapes`), it reads the run's pooled backbone features of the
train and test splits (from RUN/features, or extracted from the checkpoint) and prints

1. a linear probe per factor, fitted on train and scored on test: accuracy for the
   categorical factors (shape = the class, colour, background pattern, dark background),
   R^2 for the continuous ones (position, radius, rotation, luminances, noise);
2. the top principal components of the l2-normalised test features (what cosine kNN
   sees): each one's share of the variance and the factors that explain most of it
   (R^2 of a linear regression of the component on that factor).

Usage:
    python benchmarks/feature_factors.py runs/methods/random-seed0 runs/methods/byol-seed0
    python benchmarks/feature_factors.py RUN --kind head --pcs 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from ssl_bench import checkpoint
from ssl_bench.config import resolve
from ssl_bench.data.datasets import channel_stats, load_dataset
from ssl_bench.data.splits import DatasetSplits, Split
from ssl_bench.data.views import ViewGenerator
from ssl_bench.errors import UserError
from ssl_bench.eval.features import FeatureCache, checkpoint_key
from ssl_bench.method import DataInfo, build_method
from ssl_bench.runfolder import RunFolder

CATEGORICAL = ("shape", "colour", "pattern", "dark_background")


def factor_table(split: Split) -> dict[str, np.ndarray]:
    """Each factor as a (N, k) design matrix: one-hot for categorical factors, the
    value for continuous ones, harmonics for the rotation (shapes have 2-, 4-fold
    symmetries, so the angle itself is not what a feature can encode)."""
    if split.factors is None:
        raise UserError("this split has no generator factors (only `shapes` does)")
    raw = {"shape": split.labels, **split.factors}
    out: dict[str, np.ndarray] = {}
    for name, values in raw.items():
        v = values.double().numpy()
        if name in CATEGORICAL:
            out[name] = np.eye(int(v.max()) + 1)[v.astype(int)]
        elif name == "rotation":
            out[name] = np.stack([f(k * v) for k in (1, 2, 4) for f in (np.cos, np.sin)], 1)
        else:
            out[name] = v[:, None]
    return out


def probe(train: np.ndarray, test: np.ndarray, tr: Split, te: Split) -> dict[str, float]:
    """Linear probe per factor: test accuracy (categorical) or R^2 (continuous)."""
    scaler = StandardScaler().fit(train)
    xtr, xte = scaler.transform(train), scaler.transform(test)
    ftr, fte = factor_table(tr), factor_table(te)
    scores = {}
    for name in ftr:
        if name in CATEGORICAL:
            ytr, yte = ftr[name].argmax(1), fte[name].argmax(1)
            clf = LogisticRegression(max_iter=1000, C=0.1).fit(xtr, ytr)
            scores[name] = clf.score(xte, yte)
        else:
            scores[name] = Ridge(alpha=10.0).fit(xtr, ftr[name]).score(xte, fte[name])
    return scores


def components(test: np.ndarray, te: Split, n: int) -> list[tuple[float, list[tuple[str, float]]]]:
    """Top ``n`` principal components of the l2-normalised features: (share of variance,
    [(factor, R^2)] best first)."""
    x = test / np.linalg.norm(test, axis=1, keepdims=True).clip(1e-12)
    x = x - x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)  # (N, r), (r,)
    share = s**2 / (s**2).sum()
    table = factor_table(te)
    out = []
    for i in range(min(n, len(s))):
        pc = u[:, i] * s[i]  # (N,)
        r2 = {k: LinearRegression().fit(f, pc).score(f, pc) for k, f in table.items()}
        out.append((float(share[i]), sorted(r2.items(), key=lambda kv: -kv[1])))
    return out


def run_features(run_dir: Path, kind: str) -> tuple[dict[str, torch.Tensor], DatasetSplits]:
    """The run's ``kind`` features per split (cached in RUN/features when possible)."""
    folder = RunFolder(run_dir)
    if not folder.checkpoint_path.is_file():
        raise UserError(f"no checkpoint in {run_dir} (expected {folder.checkpoint_path})")
    state = checkpoint.load(folder.checkpoint_path)
    cfg = resolve(state["config"]["method"]["name"], file_values=state["config"])
    data = load_dataset(cfg.data)
    method = build_method(cfg, DataInfo.of(data, cfg.data.use_unlabeled))
    method.load_state_dict(state["model"])
    views = ViewGenerator(*channel_stats(data.pretrain_images(cfg.data.use_unlabeled)))
    cache = FeatureCache(
        method,
        data,
        views,
        torch.device("cpu"),
        cfg.eval.batch_size,
        "fp32",
        folder=run_dir / "features",
        key=checkpoint_key(folder.checkpoint_path, f"plain{data.image_size}"),
        write=False,
    )
    return {s: cache.get(kind, s) for s in ("train", "test")}, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders trained on shapes")
    parser.add_argument("--kind", default="pooled", choices=("pooled", "head"))
    parser.add_argument("--pcs", type=int, default=3, help="principal components to explain")
    args = parser.parse_args(argv)
    try:
        for run_dir in args.runs:
            feats, data = run_features(run_dir, args.kind)
            train, test = feats["train"].double().numpy(), feats["test"].double().numpy()
            scores = probe(train, test, data.train, data.test)
            print(f"{run_dir} ({args.kind} features)")
            print("  linear probe: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
            for i, (share, r2) in enumerate(components(test, data.test, args.pcs)):
                top = ", ".join(f"{k} {v:.2f}" for k, v in r2[:3])
                print(f"  PC{i}: {100 * share:.0f}% of variance; R^2 {top}")
    except (UserError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
