"""Q7b: the drop in linear top-1 when augmentations are removed, beside BYOL Fig. 3b.

The sweep file declares the reference arm (every augmentation) and which arm stands for
which of the paper's rows."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ssl_bench.errors import UserError
from ssl_bench.registry import REPORTS
from ssl_bench.report import paper, plots
from ssl_bench.report.kinds import ReportSpec
from ssl_bench.report.kinds._common import LINEAR, difference, figure, png, require, s, table
from ssl_bench.report.stats import points


@REPORTS.register(
    "augmentations",
    "Q7b: drop in top-1 when augmentations are removed (BYOL Fig. 3b)",
    reference="the arm with every augmentation, which the drops are measured from",
    reference_required=True,
    paper=paper.BYOL_FIG3B,
)
def augmentations(df: pd.DataFrame, stem: Path, spec: ReportSpec) -> str:
    require(df, ["arm"], "augmentations")
    reference = spec.reference
    if reference is None:
        raise UserError(
            "the augmentations report needs its reference arm (report.reference in the "
            "sweep file): the drops are measured from it"
        )
    df = df.assign(setting=df["arm"].str.replace(r"-?method=[^-]+", "", regex=True))
    methods = list(dict.fromkeys(df["method"]))
    arms = list(dict.fromkeys(df["setting"]))
    base = {m: s(df[(df.method == m) & (df.setting == reference)], LINEAR) for m in methods}
    header, rows, drops = ["arm"], [], {m: [] for m in methods}
    for m in methods:
        header += [f"{m} linear top-1", f"{m} drop", f"{m} paper drop"]
    for arm in arms:
        row = [arm]
        for m in methods:
            lin = s(df[(df.method == m) & (df.setting == arm)], LINEAR)
            drops[m].append(difference(lin, base[m]))
            ref = paper.BYOL_FIG3B.get(spec.paper.get(arm, ""))
            which = {"byol": 0, "simclr": 1}.get(m)
            p = "-"
            if ref is not None and which is not None:
                p = f"{ref[which] - paper.BYOL_FIG3B['baseline'][which]:+.1f}"
            row += [lin.fmt(), points(lin, base[m]), p]
        rows.append(row)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(arms) + 1.2))
    plots.bars(ax, arms, drops, "drop in linear top-1 from the baseline (points)", horizontal=True)
    ax.set_xlabel("points")
    path = plots.save(fig, png(stem))

    reading = []
    for m in methods:
        d = [(a, x) for a, x in zip(arms, drops[m]) if a != reference]
        if d:
            worst = min(d, key=lambda t: t[1].mean)
            mean = sum(x.mean for _, x in d) / len(d)
            reading.append(
                f"{m} loses {-100 * mean:.1f} points on average over the {len(d)} removal "
                f"arms, most without `{worst[0]}` ({100 * worst[1].mean:+.1f})"
            )
    text = "; ".join(reading) + "."
    if {"byol", "simclr"} <= set(methods):
        pairs = [
            (a, drops["byol"][i].beats(drops["simclr"][i]))
            for i, a in enumerate(arms)
            if a != reference
        ]
        less = [a for a, side in pairs if side == "above"]
        more = [a for a, side in pairs if side == "below"]
        text += (
            f" BYOL loses clearly less than SimCLR on {len(less)} of {len(pairs)} arms"
            f"{' (' + ', '.join(less) + ')' if less else ''}, clearly more on {len(more)}"
            f"{' (' + ', '.join(more) + ')' if more else ''}, and the rest are within seed "
            f"noise. In the paper BYOL loses less on every arm; "
            + (
                "our numbers agree."
                if len(less) == len(pairs)
                else "our numbers do not fully reproduce that at this scale."
            )
        )
    return "\n\n".join(
        [table(header, rows), figure(path, "augmentation removal"), f"**Reading.** {text}"]
    )
