"""Q8: global and local crops, LoGo's terms one arm at a time, against DINO's multi-crop.

The reading follows the sweep file's arm order (each arm of the first method adds one
term), so the sweep file declares no arm roles."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import pandas as pd

from ssl_bench.registry import REPORTS
from ssl_bench.report import plots
from ssl_bench.report.kinds import ReportSpec
from ssl_bench.report.kinds._common import (
    HEAD_REF,
    HEAD_STD,
    KNN,
    LINEAR,
    RANKME_HEAD,
    SEG,
    figure,
    label_of,
    png,
    ratio,
    s,
    table,
)
from ssl_bench.report.stats import Stat, by, points


class Arm(NamedTuple):
    """One multi-crop arm's seeds, summarised: the metrics its reading compares."""

    name: str
    method: str
    scores: dict[str, Stat]  # kNN, linear, seg mIoU


@REPORTS.register("multicrop", "Q8: global/local crops: LoGo terms vs DINO multi-crop")
def multicrop(df: pd.DataFrame, stem: Path, spec: ReportSpec) -> str:
    key = label_of(df)
    header = [key, "method", "kNN top-1", "linear top-1", "seg mIoU", "head std / (1/sqrt(d))"]
    header += ["RankMe head"]
    rows, arms = [], []  # arms in the sweep file's order
    for (name,), g in by(df, [key]).items():
        arm = Arm(
            name,
            str(g["method"].iloc[0]),
            {"kNN": s(g, KNN), "linear": s(g, LINEAR), "seg mIoU": s(g, SEG)},
        )
        r = ratio(s(g, HEAD_STD), s(g, HEAD_REF))
        rows.append(
            [name, arm.method, *(v.fmt() for v in arm.scores.values()), r.fmt(False, 2)]
            + [s(g, RANKME_HEAD).fmt(False)]
        )
        arms.append(arm)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    names = [a.name for a in arms]
    plots.bars(axes[0], names, {"ours": [a.scores["kNN"] for a in arms]}, "kNN top-1 (%)")
    plots.bars(axes[1], names, {"ours": [a.scores["seg mIoU"] for a in arms]}, "seg mIoU (%)")
    path = plots.save(fig, png(stem))
    return "\n\n".join(
        [
            table(header, rows),
            figure(path, "multi-crop arms"),
            "**Reading.** " + multicrop_reading(arms),
        ]
    )


def multicrop_reading(arms: list[Arm]) -> str:
    """Each arm against the previous arm of its method (the sweep file adds one term per
    arm), and each arm of another method against the best arm of the first method."""

    def compare(a: Arm, b: Arm) -> str:
        parts = [
            f"{metric} {points(x, b.scores[metric])} "
            f"({x.beats(b.scores[metric]).removesuffix(' of')})"
            for metric, x in a.scores.items()
        ]
        return f"`{a.name}` against `{b.name}`: " + ", ".join(parts)

    first = arms[0].method
    same = [a for a in arms if a.method == first]
    sentences = [compare(b, a) for a, b in zip(same, same[1:])]
    best = max(same, key=lambda a: a.scores["kNN"].mean)
    sentences += [compare(a, best) for a in arms if a.method != first]
    return (
        "; ".join(sentences)
        + ". Points are differences of the means; 'within seed noise' means the gap is no"
        " larger than the two rows' standard deviations together. The LoGo paper argues"
        " for local-local repulsion from ImageNet-scale training; FACTS.md holds no LoGo or"
        " DINO number at this scale to compare with."
    )
