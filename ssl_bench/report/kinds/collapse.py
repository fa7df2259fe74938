"""Q5-6: which ingredient keeps a non-contrastive method from collapsing.

Each arm's head std against 1/sqrt(d), RankMe and kNN, with a verdict per arm; the sweep
file declares which arm stands for which row of the BYOL paper's Table 5."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ssl_bench.registry import REPORTS
from ssl_bench.report import paper, plots
from ssl_bench.report.kinds import ReportSpec
from ssl_bench.report.kinds._common import (
    HEAD_DIM,
    HEAD_REF,
    HEAD_STD,
    KNN,
    LINEAR,
    RANKME,
    RANKME_HEAD,
    figure,
    label_of,
    png,
    ratio,
    s,
    table,
    verdict,
)
from ssl_bench.report.stats import NAN, Stat, by


@REPORTS.register(
    "collapse", "Q5-6: collapse variants: std vs 1/sqrt(d), RankMe, kNN", paper=paper.COLLAPSE
)
def collapse(df: pd.DataFrame, stem: Path, spec: ReportSpec) -> str:
    key = label_of(df)
    header = [
        key,
        "method",
        "kNN top-1",
        "linear top-1",
        "head std",
        "1/sqrt(d)",
        "std / (1/sqrt(d))",
        "RankMe head (of d)",
        "RankMe backbone",
        "final loss",
        "alignment",
        "uniformity",
        "paper linear top-1",
        "verdict",
    ]
    rows, names, ratios, ranks, knns, verdicts = [], [], [], [], [], {}
    for (name,), g in by(df, [key]).items():
        std, ref = s(g, HEAD_STD), s(g, HEAD_REF)
        r, rank = ratio(std, ref), s(g, RANKME_HEAD)
        dim = float(g[HEAD_DIM].iloc[0]) if HEAD_DIM in g else math.nan
        verdicts[name] = verdict(r, rank, dim)
        ref_paper = paper.COLLAPSE.get(spec.paper.get(name, ""))
        rows.append(
            [
                name,
                str(g["method"].iloc[0]),
                s(g, KNN).fmt(),
                s(g, LINEAR).fmt(),
                std.fmt(False, 3),
                ref.fmt(False, 3).split(" ±")[0],
                r.fmt(False, 2),
                f"{rank.fmt(False)} (of {dim:.0f})",
                s(g, RANKME).fmt(False),
                s(g, "final_loss").fmt(False, 2),
                s(g, "eval.collapse_head.alignment").fmt(False, 3),
                s(g, "eval.collapse_head.uniformity").fmt(False, 2),
                f"{ref_paper:.1f}" if ref_paper is not None else "-",
                verdicts[name],
            ]
        )
        names.append(name)
        ratios.append(r)
        ranks.append(Stat(rank.mean / dim, rank.std / dim, rank.n) if dim else NAN)
        knns.append(s(g, KNN))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    plots.bars(axes[0], names, {"ours": ratios}, "head std / (1/sqrt(d))", False, reference=1.0)
    plots.bars(axes[1], names, {"ours": ranks}, "head RankMe / d", False)
    plots.bars(axes[2], names, {"ours": knns}, "kNN top-1 (%)")
    path = plots.save(fig, png(stem))
    reading = " ".join(f"`{n}`: {v}." for n, v in verdicts.items())
    reading += against_paper(verdicts, spec)
    return "\n\n".join(
        [
            table(header, rows),
            figure(path, "collapse diagnostics"),
            f"**Reading.** {reading} The std criterion (SimSiam) only sees complete collapse: "
            "a head can keep std near 1/sqrt(d) while its outputs span a few directions, "
            "which RankMe and alignment show. Final loss is the last logged training loss "
            "(BYOL's 2 - 2cos has its floor at 0; positive-only NT-Xent at -1/T).",
        ]
    )


# An ImageNet linear top-1 below this is collapse in the paper's tables (chance is 0.1%).
PAPER_COLLAPSED = 5.0


def against_paper(verdicts: dict[str, str], spec: ReportSpec) -> str:
    """Which declared arms collapse here as in the paper, and which do not."""
    agree, disagree = [], []
    for name, v in verdicts.items():
        ref = paper.COLLAPSE.get(spec.paper.get(name, ""))
        if ref is None:
            continue
        theirs, ours = ref < PAPER_COLLAPSED, not v.startswith("no collapse")
        if theirs == ours:
            agree.append(f"`{name}`")
        else:
            said = "collapses here" if ours else "does not collapse here"
            disagree.append(
                f"`{name}` {said}, the paper's row {'collapsed' if theirs else 'did not'} "
                f"({ref:.1f}% linear)"
            )
    if not agree and not disagree:
        return ""
    text = f" Against the paper: {', '.join(agree) or 'no arm'} agree on collapse or not"
    return text + (f"; disagree: {'; '.join(disagree)}." if disagree else ".")
