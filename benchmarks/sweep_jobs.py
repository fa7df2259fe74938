"""Sweep throughput: two runs at a time (`--jobs 2`, the CPU threads split between them)
against one run at a time (`--jobs 1`, every thread on one run).

A study's cost is the sum of its runs. One small-CNN run may not keep every core of a
small CPU busy (a batch of 64 32-px images is little work per kernel), so two runs side by
side might finish a sweep sooner. Both arms run the same sweep (SimCLR and BYOL x 2
seeds, `shapes`, E epochs, kNN + linear) into fresh folders, interleaved over R rounds.
Reported: the median ratio of the two arms' wall times (> 1: two jobs are faster), and
whether each run's kNN and linear top-1 are equal between the arms (a different thread
count can change the order of float reductions, and so the numbers).

    python benchmarks/sweep_jobs.py [--epochs 3] [--rounds 2]

Prints the figures and writes benchmarks/results/sweep_jobs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from ssl_bench.runtime import versions
from ssl_bench.sweep import run_sweep

RESULTS = Path(__file__).parent / "results" / "sweep_jobs.json"

SWEEP = """
base:
  train: {{epochs: {epochs}, knn_monitor: false}}
  eval: {{evaluators: "knn,linear"}}
grid:
  method: [simclr, byol]
seeds: [0, 1]
"""


def one_arm(sweep: Path, out: Path, jobs: int) -> tuple[float, dict[str, tuple[float, float]]]:
    """Wall seconds of the whole sweep, and each run's (kNN, linear) top-1."""
    start = time.perf_counter()
    outcomes = run_sweep(sweep, out, jobs=jobs, echo=lambda *_: None, reuse=False)
    seconds = time.perf_counter() - start
    if any(o.status == "failed" for o in outcomes):
        raise SystemExit(f"a run failed: {[o.error for o in outcomes if o.error]}")
    scores = {}
    for summary in sorted(out.glob("*/summary.json")):
        ev = json.loads(summary.read_text())["eval"]
        scores[summary.parent.name] = (ev["knn"]["top1"], ev["linear"]["top1"])
    return seconds, scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "sweep.yaml"
        sweep.write_text(SWEEP.format(epochs=args.epochs))
        for i in range(args.rounds):
            row = {}
            for jobs in (1, 2):  # interleaved, so a slow spell of the machine hits both
                seconds, scores = one_arm(sweep, Path(tmp) / f"r{i}-jobs{jobs}", jobs)
                row[f"jobs{jobs}_seconds"] = round(seconds, 1)
                row[f"jobs{jobs}_scores"] = scores
            row["speedup"] = round(row["jobs1_seconds"] / row["jobs2_seconds"], 3)
            row["same_numbers"] = row["jobs1_scores"] == row["jobs2_scores"]
            print(
                f"round {i + 1}: --jobs 1 {row['jobs1_seconds']:.0f} s, --jobs 2 "
                f"{row['jobs2_seconds']:.0f} s -> {row['speedup']:.2f}x; "
                f"identical kNN/linear: {row['same_numbers']}"
            )
            rounds.append(row)
    speedup = statistics.median(r["speedup"] for r in rounds)
    print(f"median: --jobs 2 finishes the sweep {speedup:.2f}x as fast as --jobs 1")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "rounds": rounds,
                "median_speedup": speedup,
                "epochs": args.epochs,
                "runs_per_arm": 4,
                "cpus": os.cpu_count(),
                "versions": versions(),
                "command": f"python benchmarks/sweep_jobs.py --epochs {args.epochs} "
                f"--rounds {args.rounds}",
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
