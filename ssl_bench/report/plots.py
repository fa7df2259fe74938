"""Matplotlib figures for the report sections (Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssl_bench.report.stats import Stat  # noqa: E402


def save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def lines(
    ax: plt.Axes,
    series: dict[str, list[tuple[float, Stat]]],
    ylabel: str,
    percent: bool = True,
    log2: bool = True,
) -> None:
    """One line with error bars (± std over seeds) per series of (x, Stat)."""
    k = 100 if percent else 1
    for name, pts in series.items():
        xs = [x for x, _ in pts]
        ax.errorbar(
            xs,
            [k * s.mean for _, s in pts],
            yerr=[k * s.std for _, s in pts],
            marker="o",
            capsize=3,
            label=name,
        )
    if log2:
        ax.set_xscale("log", base=2)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def bars(
    ax: plt.Axes,
    labels: list[str],
    groups: dict[str, list[Stat]],
    title: str,
    percent: bool = True,
    reference: float | None = None,
    horizontal: bool = False,
) -> None:
    """Grouped bars (one group per label, one bar per series) with ± std error bars."""
    k = 100 if percent else 1
    width = 0.8 / max(1, len(groups))
    for i, (name, values) in enumerate(groups.items()):
        pos = [j + (i - (len(groups) - 1) / 2) * width for j in range(len(labels))]
        heights = [k * v.mean for v in values]
        errors = [k * v.std for v in values]
        if horizontal:
            ax.barh(pos, heights, height=width, xerr=errors, capsize=2, label=name)
        else:
            ax.bar(pos, heights, width=width, yerr=errors, capsize=2, label=name)
    ticks = list(range(len(labels)))
    if horizontal:
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="black", lw=0.8)
    else:
        ax.set_xticks(ticks, labels, rotation=30, ha="right", fontsize=8)
    if reference is not None:
        ax.axhline(reference * k, color="grey", ls="--", lw=1)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="x" if horizontal else "y")
    if len(groups) > 1:
        ax.legend(fontsize=8)
