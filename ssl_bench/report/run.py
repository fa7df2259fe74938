"""`ssl-bench report RUN_DIR -o FILE.md`: one run's summary table and training plots.

Three figures beside the markdown: the loss and learning rate against the step; the
monitor (kNN on val, the head's std against 1/sqrt(d) and its RankMe) over training,
where the run logged it; and a 2-D PCA of the test features coloured by class, plus, on
`shapes`, by the generator factor the top components follow most (what the features
encode instead of the class).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ssl_bench.errors import UserError
from ssl_bench.eval.evaluator import summary_rows
from ssl_bench.report.plots import plt, save
from ssl_bench.runner import train_rows


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _table(s: dict[str, Any]) -> str:
    """The terminal summary's lines (ssl_bench.runner.format_summary), as a table."""
    rows = [("method", s["method"]), ("dataset / backbone", f"{s['dataset']} / {s['backbone']}")]
    rows += train_rows(s) + summary_rows(s.get("eval", {}))
    body = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return "| | |\n|---|---|\n" + body


def _training_plot(records: list[dict[str, Any]], path: Path) -> Path | None:
    steps = [r for r in records if "loss" in r]
    if not steps:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    x = [r["step"] for r in steps]
    a.plot(x, [r["loss"] for r in steps])
    a.set(xlabel="optimiser step", ylabel="training loss")
    b.plot(x, [r["lr"] for r in steps])
    b.set(xlabel="optimiser step", ylabel="learning rate")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return save(fig, path)


def _monitor_plot(records: list[dict[str, Any]], path: Path) -> Path | None:
    mon = [r for r in records if "knn_val_top1" in r]
    if not mon:
        return None
    x = [r["step"] for r in mon]
    head = [r for r in mon if "head_std" in r]
    fig, axes = plt.subplots(1, 3 if head else 1, figsize=(11 if head else 4, 3.2), squeeze=False)
    axes[0][0].plot(x, [100 * r["knn_val_top1"] for r in mon], marker="o")
    axes[0][0].set(xlabel="optimiser step", ylabel="kNN top-1 on val (%)")
    if head:
        hx = [r["step"] for r in head]
        axes[0][1].plot(hx, [r["head_std"] / r["head_std_ref"] for r in head], marker="o")
        axes[0][1].axhline(0.5, color="grey", ls="--", lw=1)  # issue 14's alive threshold
        axes[0][1].set(xlabel="optimiser step", ylabel="head std x sqrt(d)")
        axes[0][2].plot(hx, [r["head_rankme"] for r in head], marker="o")
        axes[0][2].set(xlabel="optimiser step", ylabel="head RankMe")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    return save(fig, path)


@dataclass
class Embedding:
    """A 2-D PCA of one run's l2-normalised test features (what cosine kNN compares)."""

    xy: np.ndarray  # (N, 2)
    share: np.ndarray  # (2,) share of the variance of PC1, PC2
    labels: np.ndarray  # (N,)
    classes: list[str]
    nuisance: str | None  # the generator factor PC1-2 follow most (shapes only)
    nuisance_r2: float
    nuisance_values: np.ndarray | None


def embedding(run_dir: Path) -> Embedding:
    from ssl_bench.eval.factors import factor_table
    from ssl_bench.runner import open_run

    r = open_run(run_dir)
    feats = r.cache().get("pooled", "test").double().numpy()  # (N, D)
    x = feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)
    x = x - x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    xy = u[:, :2] * s[:2]  # (N, 2)
    test = r.data.test
    r2: dict[str, float] = {}
    if test.factors is not None:
        for name, design in factor_table(test).items():
            if name == "shape" or np.ptp(design) == 0:
                continue
            # R^2 of the 2-D embedding from the factor (least squares, with intercept)
            a = np.hstack([design, np.ones((len(design), 1))])
            fit = a @ np.linalg.lstsq(a, xy, rcond=None)[0]
            r2[name] = float(1 - ((xy - fit) ** 2).sum() / ((xy - xy.mean(0)) ** 2).sum())
    nuisance = max(r2, key=r2.__getitem__) if r2 else None
    return Embedding(
        xy,
        s[:2] ** 2 / (s**2).sum(),
        test.labels.numpy(),
        list(r.data.classes),
        nuisance,
        r2.get(nuisance, 0.0) if nuisance else 0.0,
        test.factors[nuisance].double().numpy() if nuisance else None,
    )


def by_class(ax: plt.Axes, e: Embedding, title: str, legend: bool = True) -> None:
    n = len(e.classes)
    ax.scatter(e.xy[:, 0], e.xy[:, 1], c=e.labels, cmap="tab10", vmin=0, vmax=n - 1, s=6)
    if legend:
        # One handle per class, even for a class absent from the plotted points.
        colours = plt.get_cmap("tab10")([i / max(n - 1, 1) for i in range(n)])
        handles = [plt.Line2D([], [], ls="", marker="o", color=c, ms=4) for c in colours]
        ax.legend(handles, e.classes, fontsize=6, markerscale=0.8)
    ax.set_title(title, fontsize=9)
    ax.set(xlabel="PC1", ylabel="PC2")


def _embedding_plot(run_dir: Path, path: Path) -> tuple[Path, str]:
    """PCA of the test features by class and, on `shapes`, by the factor the first two
    components follow most. Returns the figure and a sentence about it."""
    e = embedding(run_dir)
    panels = 2 if e.nuisance else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4), squeeze=False)
    by_class(axes[0][0], e, "test features by class")
    text = (
        f"PCA of the l2-normalised test features (PC1 {100 * e.share[0]:.0f}%, "
        f"PC2 {100 * e.share[1]:.0f}% of the variance)"
    )
    if e.nuisance:
        ax = axes[0][1]
        points = ax.scatter(e.xy[:, 0], e.xy[:, 1], c=e.nuisance_values, cmap="viridis", s=6)
        fig.colorbar(points, ax=ax)
        ax.set_title(f"by {e.nuisance} (the factor PC1-2 follow most)", fontsize=9)
        ax.set(xlabel="PC1", ylabel="PC2")
        text += (
            f"; the right panel colours them by `{e.nuisance}`, which explains "
            f"{100 * e.nuisance_r2:.0f}% of the 2-D embedding"
        )
    return save(fig, path), text + "."


def arms_plot(runs: dict[str, Path], path: Path) -> Path:
    """One PCA panel by class per arm (its seed-0 run), for a sweep report."""
    cols = min(4, len(runs))
    rows = -(-len(runs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax, (arm, run_dir) in zip(axes.flat, runs.items()):
        by_class(ax, embedding(run_dir), arm, legend=False)
    for ax in list(axes.flat)[len(runs) :]:
        ax.axis("off")
    return save(fig, path)


def write_run_report(run_dir: Path, out: Path) -> Path:
    """``ssl-bench report RUN_DIR -o OUT``: markdown at OUT, PNGs beside it."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise UserError(f"{run_dir} has no summary.json: has the run finished?")
    s = json.loads(summary_path.read_text())
    records = _records(run_dir / "metrics.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    parts = [
        f"# Run report: {s['method']} on {s['dataset']}",
        f"Generated by `ssl-bench report {run_dir} -o {out}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from `{run_dir}` "
        f"(git {s.get('git_sha') or 'unknown'}).",
        _table(s),
    ]
    for title, make in (
        ("Training", _training_plot),
        ("Monitor over training (val split)", _monitor_plot),
    ):
        fig = make(records, Path(f"{stem}-{title.split()[0].lower()}.png"))
        if fig is not None:
            parts.append(f"## {title}\n\n![{title}]({fig.name})")
    if (run_dir / "checkpoints" / "last.pt").is_file():
        fig, text = _embedding_plot(run_dir, Path(f"{stem}-embedding.png"))
        parts.append(f"## Test features\n\n{text}\n\n![embedding]({fig.name})")
    out.write_text("\n\n".join(parts) + "\n")
    return out
