"""Gather every summary.json under a folder into one pandas table.

One row per run. Columns: method, dataset, backbone, seed, the config keys that vary
between the runs, every ``eval.*`` number (flattened, e.g. ``eval.knn.top1``), images
seen and train time. Protocol parameters stay in the summaries; the markdown view keeps
a chosen set of headline columns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ssl_bench.errors import UserError
from ssl_bench.eval.names import in_order
from ssl_bench.registry import EVALUATORS


def headline() -> dict[str, str]:
    """The markdown table's columns: each evaluator's headline keys, in the evaluators'
    order (ssl_bench/evaluators/), then the training time."""
    cols: dict[str, str] = {}
    for name in in_order(EVALUATORS.names()):
        cols.update(EVALUATORS.get(name).extra.get("headline", {}))
    return {**cols, "train_seconds": "train s"}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def _final_loss(metrics: Path) -> float | None:
    """The last logged training loss (where a loss floor shows), if the run logged one."""
    if not metrics.is_file():
        return None
    loss = None
    for line in metrics.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            loss = record["loss"]
    return loss


def collect(root: str | Path) -> pd.DataFrame:
    """One row per summary.json found below ``root``."""
    root = Path(root)
    paths = sorted(root.rglob("summary.json"))
    if not paths:
        raise UserError(f"no runs under {root} (no summary.json found)")
    rows = []
    for path in paths:
        s = json.loads(path.read_text())
        run = str(path.parent.relative_to(root))
        row = {"run": run}
        if re.search(r"-seed\d+$", run):  # a sweep's run: its name without the seed
            row["arm"] = re.sub(r"-seed\d+$", "", run)
        for key in (
            "method",
            "dataset",
            "backbone",
            "seed",
            "epochs",
            "batch_size",
            "images_seen",
            "train_seconds",
        ):
            row[key] = s.get(key)
        row["final_loss"] = _final_loss(path.parent / "metrics.jsonl")
        row.update({f"config.{k}": v for k, v in _flatten(s.get("config", {})).items()})
        row.update(
            {
                k: v
                for k, v in _flatten({"eval": s.get("eval", {})}).items()
                if (isinstance(v, int | float) and not isinstance(v, bool))
                or k.endswith(".captions")  # where captions came from (dataset or template)
            }
        )
        rows.append(row)
    df = pd.DataFrame(rows)
    if "eval.collapse_head.dim" in df.columns:  # what a healthy head's std is compared with
        df["head_std_reference"] = df["eval.collapse_head.dim"] ** -0.5
    config_cols = [c for c in df.columns if c.startswith("config.")]
    varying = [c for c in config_cols if df[c].astype(str).nunique() > 1]
    return df.drop(columns=[c for c in config_cols if c not in varying])


def _cell(name: str, values: pd.Series) -> str:
    """One table cell: the value, or mean ± std over seeds when a group has several runs."""
    values = values.dropna()
    if values.empty:
        return "-"
    if not pd.api.types.is_number(values.iloc[0]) or isinstance(values.iloc[0], bool):
        return str(values.iloc[0])
    scale, fmt, unit = 1.0, "{:.1f}", ""
    if "top-1" in name or "mIoU" in name:
        scale, unit = 100.0, "%"
    elif "std" in name or "sqrt" in name:
        fmt = "{:.3f}"
    mean = fmt.format(scale * values.mean())
    if len(values) == 1:
        return mean + unit
    return f"{mean} ± {fmt.format(scale * values.std(ddof=1))}{unit}"


def to_markdown(df: pd.DataFrame) -> str:
    """Headline metrics as a markdown table (accuracies in %). Config columns are shown
    when they vary between runs of the same method (the arms of an ablation); keys that
    differ only because the methods differ stay in results.csv. Runs that differ only in
    their seed form one row: mean ± sample std over the seeds, with their count."""
    config = [c for c in df.columns if c.startswith("config.") and c != "config.train.seed"]
    arms = [c for c in config if df.groupby("method")[c].nunique(dropna=False).max() > 1]
    keys = [*(["arm"] if "arm" in df.columns else []), "method", *arms]
    columns = headline()
    metrics = [c for c in columns if c in df.columns]
    groups = list(df.groupby(keys, dropna=False, sort=False))
    with_seeds = any(len(g) > 1 for _, g in groups)
    header = [*keys, *(["seeds"] if with_seeds else []), *(columns[m] for m in metrics)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, g in groups:
        cells = [str(g[k].iloc[0]) if g[k].notna().any() else "-" for k in keys]
        cells += [str(len(g))] if with_seeds else []
        cells += [_cell(columns[m], g[m]) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
