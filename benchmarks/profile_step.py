"""Where one training step's time goes, per method: views, forward, backward, optimiser,
EMA, and the rest (logging, schedule, Python), measured with torch.profiler.

The trainer marks each part with ``torch.profiler.record_function`` ("step/views",
"step/forward", ...); this script trains each method for a few steps on its default
config (shapes, small_cnn, batch 128 unless overridden) under the profiler and reports
each part's share of the step's wall time, so the next speed fix goes where the time is.
On CUDA (when present) the same spans are timed on the device too.

    python benchmarks/profile_step.py [--methods simclr,byol] [--steps 12] [--device cpu]

Writes its table at the head of benchmarks/results/profile.md and keeps the lab notebook
below it (the sections from the first ``## `` on).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from tqdm import tqdm

from ssl_bench.data.datasets import channel_stats, load_dataset
from ssl_bench.data.views import ViewGenerator
from ssl_bench.layering import resolve
from ssl_bench.method import DataInfo, build_method
from ssl_bench.runfolder import RunFolder
from ssl_bench.runtime import dist_info, precision_name, seed_everything, select_device
from ssl_bench.trainer import Trainer

RESULTS = Path(__file__).parent / "results" / "profile.md"
PARTS = ("views", "forward", "backward", "optimizer", "ema")
METHODS = ("simclr", "byol", "dino", "logo", "supervised")


def profile_method(
    name: str, steps: int, device_name: str, batch: int | None, precision: str = "auto"
) -> dict:
    sets = [f"data.train_size={steps * (batch or 128)}", "train.knn_monitor=false"]
    sets.append(f"train.precision={precision}")
    sets += ["train.log_every=1000", "train.progress=false", f"train.device={device_name}"]
    if batch:
        sets.append(f"train.batch_size={batch}")
    cfg = resolve(name, set_items=sets + ["train.epochs=2"])
    device = select_device(cfg.train.device)
    data = load_dataset(cfg.data)
    seed_everything(0)
    method = build_method(cfg, DataInfo.of(data)).to(device)
    views = ViewGenerator(*channel_stats(data.pretrain_images(False)))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(method, data, cfg, RunFolder(tmp), device, views, dist_info())
        trainer.save = lambda: None  # a checkpoint per epoch is not part of a step
        activities = [ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        bar = tqdm(disable=True)
        trainer._epoch(0, bar)  # warm-up: first-call costs (oneDNN kernels, allocator)
        start = time.perf_counter()
        with profile(activities=activities) as prof:
            trainer._epoch(1, bar)
        wall = time.perf_counter() - start
    n = trainer.progress.step // 2
    spans = {e.key: e for e in prof.key_averages() if e.key.startswith("step/")}
    part_ms = {
        p: spans[f"step/{p}"].cpu_time_total / 1e3 / n if f"step/{p}" in spans else 0.0
        for p in PARTS
    }
    step_ms = 1e3 * wall / n
    return {
        "method": name,
        "steps": n,
        "batch": cfg.train.batch_size,
        "step_ms": step_ms,
        "img_s": cfg.train.batch_size / (step_ms / 1e3),
        "parts": part_ms,
        "other_ms": max(0.0, step_ms - sum(part_ms.values())),
        "device": str(device),
        "precision": precision_name(device, cfg.train.precision),
    }


def to_markdown(rows: list[dict], command: str) -> str:
    head = "| method | batch | steps | ms/step | img/s | " + " | ".join(PARTS) + " | other |"
    sep = "|---" * (6 + len(PARTS)) + "|"
    lines = [head, sep]
    for r in rows:
        shares = [
            f"{ms:.0f} ms ({100 * ms / r['step_ms']:.0f}%)"
            for ms in (*r["parts"].values(), r["other_ms"])
        ]
        lines.append(
            f"| {r['method']} | {r['batch']} | {r['steps']} | {r['step_ms']:.0f} | "
            f"{r['img_s']:.0f} | " + " | ".join(shares) + " |"
        )
    cpu = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    return (
        "# Where a training step's time goes\n\n"
        f"`{command}` on {rows[0]['device']} ({cpu}, {rows[0]['precision']}), "
        f"torch {torch.__version__}. Each part is "
        "the profiler's CPU time inside the trainer's `record_function` span, per step "
        "(the second epoch's steps, after a warm-up epoch; profiler overhead included); "
        "`other` = the rest of the wall time (schedule, bookkeeping, logging, Python).\n\n"
        + "\n".join(lines)
        + "\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--precision", default="auto", help="auto, fp32 or bf16 (train.precision)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    rows = []
    for name in args.methods.split(","):
        r = profile_method(name.strip(), args.steps, args.device, args.batch_size, args.precision)
        print(
            f"{r['method']:>10}: {r['step_ms']:.0f} ms/step, "
            + ", ".join(f"{p} {ms:.0f}" for p, ms in r["parts"].items())
            + f", other {r['other_ms']:.0f}"
        )
        rows.append(r)
    command = (
        "python benchmarks/profile_step.py --methods " + args.methods + f" --steps {args.steps}"
    )
    command += f" --device {args.device} --precision {args.precision}" + (
        f" --batch-size {args.batch_size}" if args.batch_size else ""
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(replace_head(args.out, to_markdown(rows, command)))
    print(f"wrote {args.out}")


def replace_head(path: Path, head: str) -> str:
    """``head`` followed by the file's notebook: its sections from the first ``## `` on.

    The file is both this script's latest table and the hand-written lab notebook below
    it, so a new profile must not wipe the notebook.
    """
    old = path.read_text() if path.exists() else ""
    cut = old.find("\n## ")
    return head if cut < 0 else head + old[cut:]


if __name__ == "__main__":
    main()
