"""Helpers every report section shares: metric columns, seed statistics, tables."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ssl_bench.errors import UserError
from ssl_bench.report.stats import NAN, Stat, stat

KNN, LINEAR, LOW10 = "eval.knn.top1", "eval.linear.top1", "eval.lowshot.10%.top1"
SEG, ZEROSHOT = "eval.seg.miou", "eval.zeroshot.top1"
HEAD_STD, HEAD_REF = "eval.collapse_head.std", "head_std_reference"
RANKME_HEAD, RANKME = "eval.collapse_head.rankme", "eval.collapse.rankme"
HEAD_DIM = "eval.collapse_head.dim"


def s(g: pd.DataFrame, column: str) -> Stat:
    """The metric over a group's seeds (missing column: no value)."""
    return stat(g[column]) if column in g.columns else NAN


def label_of(df: pd.DataFrame) -> str:
    """What names a row: the sweep arm when there is one, else the method."""
    return "arm" if "arm" in df.columns else "method"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def png(stem: Path) -> Path:
    """Where a section's figure goes: ``stem`` + .png, beside the markdown."""
    return stem.parent / (stem.name + ".png")


def figure(path: Path, title: str) -> str:
    return f"![{title}]({path.name})"


def require(df: pd.DataFrame, columns: list[str], kind: str) -> None:
    """A section that needs columns the runs lack says which, in one line."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UserError(
            f"the {kind} report needs {', '.join(missing)} in the runs (a sweep folder made "
            f"by `ssl-bench sweep`); found none under this folder"
        )


def ratio(std: Stat, ref: Stat) -> Stat:
    """Head std as a fraction of 1/sqrt(d): ~1 healthy, ~0 collapsed."""
    if math.isnan(std.mean) or math.isnan(ref.mean) or ref.mean == 0:
        return NAN
    return Stat(std.mean / ref.mean, std.std / ref.mean, std.n)


def difference(a: Stat, b: Stat) -> Stat:
    """a - b with the seeds' spread combined."""
    return Stat(a.mean - b.mean, math.hypot(a.std, b.std), min(a.n, b.n))


def verdict(std_ratio: Stat, rank: Stat, dim: float) -> str:
    """Collapse reading of the head: complete (all outputs alike), dimensional (a few
    directions only) or spread."""
    if math.isnan(std_ratio.mean):
        return "no head diagnostics"
    if std_ratio.mean < 0.3:
        return "complete collapse (std far below 1/sqrt(d))"
    if not math.isnan(rank.mean) and rank.mean < 0.1 * dim:
        return f"dimensional collapse (RankMe {rank.mean:.1f} of {dim:.0f})"
    return "no collapse"
