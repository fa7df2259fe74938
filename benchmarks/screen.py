"""Run one recipe screen and append its row to the lab notebook (benchmarks/results/recipes.md).

    python benchmarks/screen.py "note" -- byol --dataset digits --lr 3e-4 ...

Everything after ``--`` is passed to ``ssl-bench run`` (with ``--out`` set to a scratch
folder, progress bars off, and knn,linear,collapse evaluated unless the arguments say
otherwise). The row records the exact command, the optimiser steps, test kNN and linear
top-1, the head's std against 1/sqrt(d), head RankMe, the per-epoch kNN-on-val curve and
the wall time, so no screen has to be run twice.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NOTEBOOK = Path(__file__).parent / "results" / "recipes.md"
HEADER = (
    "| date | note | command | steps | kNN | linear | head std / ref | head RankMe | "
    "kNN-val by epoch | wall s |\n|---|---|---|---|---|---|---|---|---|---|\n"
)


def main() -> int:
    if "--" not in sys.argv:
        print(__doc__)
        return 2
    cut = sys.argv.index("--")
    note = " ".join(sys.argv[1:cut])
    args = sys.argv[cut + 1 :]
    if not any(a.startswith("eval.evaluators") for a in args):
        args += ["--set", "eval.evaluators=knn,linear,collapse"]
    out = Path(tempfile.mkdtemp(prefix="screen-"))
    # SCREEN_PRELOAD=module.py registers scratch variants (a dataset style, say) first.
    preload = os.environ.get("SCREEN_PRELOAD")
    exe = ["ssl-bench"]
    if preload:
        code = f"import runpy, sys; runpy.run_path({preload!r}); from ssl_bench.cli import main; "
        exe = [sys.executable, "-c", code + "sys.exit(main(sys.argv[1:]))"]
    cmd = [*exe, "run", *args, "--out", str(out / "run"), "--set", "train.progress=false"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    flags = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("SCREEN_"))
    shown = (flags + " " if flags else "") + "ssl-bench run " + shlex.join(args)
    if proc.returncode:
        print(proc.stderr[-2000:], file=sys.stderr)
        row = f"| {time.strftime('%m-%d %H:%M')} | {note} | `{shown}` | failed | | | | | | |\n"
    else:
        s = json.loads((out / "run" / "summary.json").read_text())
        ev = s["eval"]
        head = ev.get("collapse_head") or {}
        metrics = out / "run" / "metrics.jsonl"  # untrained baselines log nothing
        lines = metrics.read_text().splitlines() if metrics.exists() else []
        curve = [json.loads(x)["knn_val_top1"] for x in lines if "knn_val_top1" in x]
        steps = s["images_seen"] // s["batch_size"]
        pick = curve if len(curve) <= 8 else curve[:: max(1, len(curve) // 6)] + curve[-1:]
        lin = ev.get("linear", {}).get("top1")
        row = (
            f"| {time.strftime('%m-%d %H:%M')} | {note} | `{shown}` | {steps} | "
            f"{100 * ev['knn']['top1']:.1f} | {'-' if lin is None else f'{100 * lin:.1f}'} | "
            f"{head.get('std', float('nan')):.3f} / {head.get('std_ref', float('nan')):.3f} | "
            f"{head.get('rankme', float('nan')):.1f} | "
            f"{' '.join(f'{100 * c:.0f}' for c in pick)} | {wall:.0f} |\n"
        )
    if not NOTEBOOK.exists():
        NOTEBOOK.write_text("# Recipe screens\n\n" + HEADER)
    with NOTEBOOK.open("a") as f:
        f.write(row)
    print(row, end="")
    # Kept, so the run can be looked at again (`ssl-bench eval RUN --only factors`).
    print(f"run folder: {out / 'run'}")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
