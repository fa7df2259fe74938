"""Q7a: top-1 against batch size, SimCLR and BYOL beside the BYOL paper's Fig. 3a.

Rows are grouped by method (the paper's columns are BYOL and SimCLR), so the sweep file
declares no arm roles. The batch on the x axis is the one the loss sees (negatives,
BatchNorm statistics): ``train.batch_size / train.accum_steps``. A sweep that varies it at
a fixed update batch through accumulation (equal optimiser steps) is the paper's design;
one that varies ``train.batch_size`` itself compares different step counts too."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ssl_bench.registry import REPORTS
from ssl_bench.report import paper, plots
from ssl_bench.report.kinds import ReportSpec
from ssl_bench.report.kinds._common import KNN, LINEAR, difference, figure, png, require, s, table
from ssl_bench.report.stats import by, points


@REPORTS.register("batch_size", "Q7a: top-1 against batch size, SimCLR vs BYOL (BYOL Fig. 3a)")
def batch_size(df: pd.DataFrame, stem: Path, spec: ReportSpec) -> str:
    require(df, ["batch_size", "images_seen"], "batch_size")
    accum = df["config.train.accum_steps"] if "config.train.accum_steps" in df.columns else 1
    df = df.assign(  # batch_size becomes the loss batch; the update batch is kept beside it
        update_batch=df["batch_size"],
        steps=df["images_seen"] // df["batch_size"],
        batch_size=df["batch_size"] // accum,
    )
    equal_steps = df["steps"].nunique() == 1
    largest = int(df["batch_size"].max())
    rows, curves, drops = [], {}, {}
    for (method,), g in by(df, ["method"]).items():
        top = s(g[g["batch_size"] == largest], LINEAR)
        which = {"byol": 0, "simclr": 1}.get(method)
        curves[method], drops[method] = [], {}
        for (bs,), gb in sorted(by(g, ["batch_size"]).items()):
            lin = s(gb, LINEAR)
            curves[method].append((bs, lin))
            drops[method][bs] = difference(lin, top)
            paper_bs = int(4096 * bs / largest)
            ref = paper.BYOL_FIG3A.get(paper_bs)
            paper_cells = ["-", "-", "-"]
            if ref is not None and which is not None:
                drop = ref[which] - paper.BYOL_FIG3A[4096][which]
                paper_cells = [str(paper_bs), f"{ref[which]:.1f}", f"{drop:+.1f}"]
            seen = gb["steps"].iloc[0]
            steps = str(int(seen)) if pd.notna(seen) else "-"
            rows.append(
                [
                    method,
                    str(bs),
                    steps,
                    s(gb, KNN).fmt(),
                    lin.fmt(),
                    points(lin, top),
                    *paper_cells,
                ]
            )
    header = [
        "method",
        "batch (loss)",
        "optimiser steps",
        "kNN top-1",
        "linear top-1",
        f"drop from {largest}",
        "paper batch (same ratio to 4096)",
        "paper linear top-1",
        "paper drop",
    ]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    plots.lines(axes[0], curves, "linear top-1 (%)")
    axes[0].set_xlabel("batch size")
    plots.lines(
        axes[1],
        {m: [(b, d) for b, d in sorted(v.items())] for m, v in drops.items()},
        f"drop from batch {largest} (points)",
    )
    for name, i in (("byol", 0), ("simclr", 1)):
        pts = [
            (largest * b / 4096, v[i] - paper.BYOL_FIG3A[4096][i])
            for b, v in sorted(paper.BYOL_FIG3A.items())
            if largest * b / 4096 >= 1
        ]
        axes[1].plot(*zip(*pts), ls="--", alpha=0.6, label=f"{name} paper (4096 -> x)")
    axes[1].set_xlabel("batch size (paper batch scaled by our largest / 4096)")
    axes[1].legend(fontsize=7)
    path = plots.save(fig, png(stem))

    smallest = int(df["batch_size"].min())
    drops = {m: d for m, d in drops.items() if smallest in d}  # methods run at every end
    reading = []
    for m, d in drops.items():
        reading.append(
            f"{m}: {d[smallest].mean * 100:+.1f} ± {d[smallest].std * 100:.1f} points from "
            f"batch {largest} to {smallest}"
        )
    text = "; ".join(reading) + "."
    if {"byol", "simclr"} <= drops.keys():
        b, c = drops["byol"][smallest], drops["simclr"][smallest]
        side = b.beats(c)
        factor = largest // smallest
        pair = paper.BYOL_FIG3A.get(4096 // factor)
        text += f" BYOL's change is {side} SimCLR's."
        if pair is not None:
            paper_b, paper_c = pair[0] - 72.5, pair[1] - 67.9
            text += (
                f" Over the same {factor}x range the paper (4096 -> {4096 // factor}) has "
                f"BYOL {paper_b:+.1f} and SimCLR {paper_c:+.1f}: "
                + (
                    "our numbers agree with the paper's ordering."
                    if side == ("above" if paper_b > paper_c else "below")
                    else "our numbers do not reproduce the paper's ordering at this scale."
                )
            )
    if equal_steps and df["update_batch"].nunique() == 1:
        text += (
            f" Every row took the same {int(df['steps'].iloc[0])} optimiser steps of "
            f"{int(df['update_batch'].iloc[0])} images (smaller loss batches accumulate "
            f"gradients), as in the paper, so the rows differ only in what one loss batch "
            f"holds: the negatives SimCLR sees and the BatchNorm statistics of both."
        )
    elif all(d[smallest].mean > 0 for d in drops.values()):
        text += (
            f" Every method gains from smaller batches here: in equal epochs a batch of "
            f"{smallest} takes {largest // smallest}x the optimiser steps of {largest}, and "
            f"at this step-starved scale steps outweigh what a small batch costs (fewer "
            f"negatives for SimCLR, noisier BatchNorm statistics for both)."
        )
    return "\n\n".join(
        [
            table(header, rows),
            figure(path, "top-1 against batch size"),
            f"**Reading.** {text}"
            + (
                ""
                if equal_steps
                else " The paper instead held the update batch at 4096 with gradient "
                "accumulation (equal steps; `train.accum_steps` does the same here)."
            ),
        ]
    )
