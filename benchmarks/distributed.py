"""Training throughput on 1 process against N processes (torchrun), side by side.

Each round launches ``ssl-bench run METHOD`` once per process count, alternating, with
the same global batch and steps, and reads ``train_images_per_s`` from the runs'
summary.json (evaluation off). On a CPU the processes share the cores (each gets
cores / N threads), so expect little gain; on a GPU machine N = the number of GPUs.

    python benchmarks/distributed.py [--method simclr] [--nproc 2] [--rounds 2]

Prints the ratios and writes benchmarks/results/distributed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from ssl_bench.runtime import versions

RESULTS = Path(__file__).parent / "results" / "distributed.json"


def launch(method: str, nproc: int, out: Path, extra: list[str]) -> float:
    """Images/s of one run on ``nproc`` processes (1 = plain ``ssl-bench run``)."""
    cores = os.cpu_count() or 1
    threads = max(1, cores // nproc) if not torch.cuda.is_available() else 0
    run = ["-m", "ssl_bench", "run", method, "--out", str(out), "--no-eval", "--no-progress"]
    run += ["--set", "train.knn_monitor=false", "--set", f"train.threads={threads}", *extra]
    if nproc == 1:
        cmd = [sys.executable, *run]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += [f"--nproc_per_node={nproc}", *run]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(threads, 1))}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text())["train_images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--method", default="simclr")
    p.add_argument("--nproc", type=int, default=0, help="processes; 0 = GPUs, or 2 on CPU")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    args = p.parse_args()
    nproc = args.nproc or (torch.cuda.device_count() if torch.cuda.is_available() else 2)
    extra = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    speeds: dict[int, list[float]] = {1: [], nproc: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for n in (1, nproc):
                ips = launch(args.method, n, Path(tmp) / f"r{r}-n{n}", extra)
                speeds[n].append(ips)
                print(f"round {r + 1}: {n} process(es): {ips:,.0f} images/s")
    one, many = statistics.median(speeds[1]), statistics.median(speeds[nproc])
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    result = {
        "method": args.method,
        "global_batch": args.batch_size,
        "epochs": args.epochs,
        "device": device,
        "cores": os.cpu_count(),
        "images_per_s": {str(k): v for k, v in speeds.items()},
        "ratio": round(many / one, 3),
        "platform": platform.platform(),
        "versions": versions(),
        "command": " ".join(["python benchmarks/distributed.py", *sys.argv[1:]]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{nproc} processes / 1 process: {many / one:.2f}x ({many:,.0f} vs {one:,.0f} images/s)")


if __name__ == "__main__":
    main()
