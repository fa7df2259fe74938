"""Evaluation speed: faiss kNN against scikit-learn, and the full evaluation of a run.

(a) kNN on the same l2-normalised features, 50,000 x 512 memory bank and 10,000
    queries, k = 20: ssl-bench's exact faiss inner-product search with the weighted vote
    vs scikit-learn's KNeighborsClassifier(algorithm="brute", metric="cosine").
    Both predict; the ratio of wall times is reported, and the predictions compared.
(b) The wall time of the full evaluation (kNN, linear, low-shot, seg, collapse) of a
    default `shapes` run, features extracted from scratch.

    python benchmarks/eval_speed.py

Prints the figures and writes benchmarks/results/eval_speed.json.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.neighbors import KNeighborsClassifier

from ssl_bench.eval.knn import knn_scores
from ssl_bench.layering import resolve
from ssl_bench.runner import evaluate_existing, run
from ssl_bench.runtime import versions

RESULTS = Path(__file__).parent / "results" / "eval_speed.json"


def bench_knn(n_train: int = 50_000, n_query: int = 10_000, dim: int = 512, classes: int = 100):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(classes, dim, generator=g)
    y = torch.randint(0, classes, (n_train,), generator=g)
    yq = torch.randint(0, classes, (n_query,), generator=g)
    train = F.normalize(centres[y] + 2 * torch.randn(n_train, dim, generator=g), dim=1)
    query = F.normalize(centres[yq] + 2 * torch.randn(n_query, dim, generator=g), dim=1)

    start = time.perf_counter()
    ours = knn_scores(train, y, query, classes, k=20, T=0.07).argmax(1)
    t_ours = time.perf_counter() - start

    start = time.perf_counter()
    clf = KNeighborsClassifier(n_neighbors=20, algorithm="brute", metric="cosine", n_jobs=-1)
    theirs = torch.from_numpy(clf.fit(train.numpy(), y.numpy()).predict(query.numpy()))
    t_theirs = time.perf_counter() - start
    return {
        "n_train": n_train,
        "n_query": n_query,
        "dim": dim,
        "k": 20,
        "faiss_seconds": t_ours,
        "sklearn_seconds": t_theirs,
        "speedup": t_theirs / t_ours,
        "top1_faiss": (ours == yq).float().mean().item(),
        "top1_sklearn": (theirs == yq).float().mean().item(),
        "note": "sklearn votes uniformly; ssl-bench weights votes by exp(s/T) (DINO)",
    }


def bench_full_eval() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cfg = resolve(
            "simclr", set_items=["train.epochs=1", "train.progress=false", "eval.enabled=false"]
        )
        run(cfg, out)
        start = time.perf_counter()
        summary = evaluate_existing(out, None)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "evaluators": sorted(summary["eval"]),
        "train_images": cfg.data.train_size,
        "test_images": cfg.data.test_size,
        "backbone": cfg.model.backbone,
    }


def main() -> None:
    knn = bench_knn()
    print(
        f"(a) kNN 50k x 512, 10k queries: faiss {knn['faiss_seconds']:.2f} s, scikit-learn "
        f"{knn['sklearn_seconds']:.2f} s -> {knn['speedup']:.1f}x"
    )
    full = bench_full_eval()
    print(f"(b) full evaluation of a default run: {full['seconds']:.1f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "knn": knn,
                "full_eval": full,
                "cpus": os.cpu_count(),
                "versions": versions(),
                "command": "python benchmarks/eval_speed.py",
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
