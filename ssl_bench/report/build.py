"""`ssl-bench report` and the study: markdown with the setup, the protocol and one
section per kind of sweep, plots written beside the markdown."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml

from ssl_bench.data.views import view_side
from ssl_bench.errors import UserError
from ssl_bench.eval.names import in_order
from ssl_bench.registry import EVALUATORS, REPORTS
from ssl_bench.report.kinds import ReportSpec, kinds, parse, title
from ssl_bench.report.table import collect


def protocol(k: int, t: float) -> str:
    """The report's protocol paragraph: each evaluator's own sentence, in order."""
    said = [EVALUATORS.get(n).extra.get("protocol") for n in in_order(EVALUATORS.names())]
    text = " ".join(s for s in said if s).format(k=k, T=t)
    return text + " Every cell is the mean ± sample std over the seeds of that row."


def sweep_info(folder: Path) -> dict:
    """The sweep file a folder's runs came from (written by `ssl-bench sweep`), if any."""
    path = folder / "sweep.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def spec_of(folder: Path, kind: str | None) -> ReportSpec:
    """The report a sweep folder asks for: its sweep file's ``report:`` (kind and arm
    roles), or ``kind`` (--kind), which keeps the file's roles when the kinds agree."""
    info = sweep_info(folder)
    origin = f"{folder / 'sweep.yaml'}"
    spec = parse(info.get("report"), [str(a) for a in info.get("arms") or {}], origin)
    if kind is None:
        if spec is None:
            raise UserError(
                f"{folder} has no sweep.yaml naming its report kind; pass --kind "
                f"({', '.join(kinds())})"
            )
        return spec
    REPORTS.get(kind)  # an unknown kind fails with the valid ones
    return spec if spec is not None and spec.kind == kind else ReportSpec(kind)


def setup(folder: Path, df: pd.DataFrame) -> str:
    """Dataset, sizes, backbone, epochs, batch and seeds, read from the runs themselves."""
    summaries = [json.loads(p.read_text()) for p in sorted(folder.rglob("summary.json"))]
    first, data = summaries[0], summaries[0]["config"]["data"]
    # Records from before precision was recorded trained in fp32.
    precision = ", ".join(sorted({s.get("precision", "fp32") for s in summaries}))

    def values(column: str) -> str:
        return ", ".join(str(v) for v in sorted(df[column].dropna().unique()))

    # Records from before aug.view_scale existed trained on views at the image size.
    scales = sorted({s["config"].get("aug", {}).get("view_scale", 1.0) for s in summaries})
    sides = ", ".join(str(view_side(v, data["image_size"])) for v in scales)
    views = "" if scales == [1.0] else f" (training views at {sides} px)"
    seeds = df.groupby("arm" if "arm" in df else "method")["seed"].nunique()
    per_row = str(seeds.min()) if seeds.min() == seeds.max() else f"{seeds.min()}-{seeds.max()}"
    k = df["eval.knn.k"].iloc[0] if "eval.knn.k" in df else 20
    t = df["eval.knn.T"].iloc[0] if "eval.knn.T" in df else 0.07
    return (
        f"**Setup.** Dataset `{values('dataset')}` ({data['train_size']} train / "
        f"{data['val_size']} val / {data['test_size']} test images at "
        f"{data['image_size']} px{views}), "
        f"backbone `{values('backbone')}`, {values('epochs')} epochs, batch {values('batch_size')}"
        f"; {len(df)} runs, {per_row} seeds per row (seeds {values('seed')}); "
        f"device {first['device']}, {precision}.\n\n**Protocol.** {protocol(k, t)}"
    )


def in_sweep_order(df: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """Rows in the order the sweep file lists its arms (its authors' reading order, e.g.
    each multi-crop arm adding one term), not alphabetically; the rest keep their order."""
    if "arm" not in df or not arms:
        return df

    def rank(run_arm: str) -> int:  # a run's arm is "<arm>" or "<arm>-<grid point>"
        hits = [i for i, a in enumerate(arms) if run_arm == a or run_arm.startswith(a + "-")]
        return hits[0] if hits else len(arms)

    order = df["arm"].astype(str).map(rank)
    return df.iloc[order.argsort(kind="stable").to_numpy()].reset_index(drop=True)


def section(folder: Path, spec: ReportSpec, stem: Path, level: str = "##") -> str:
    """One section: title, how the runs were made, setup, then the kind's table and plots."""
    info = sweep_info(folder)
    df = in_sweep_order(collect(folder), list(info.get("arms") or {}))
    made_by = info.get("command")
    lines = [f"{level} {title(spec.kind)}"]
    if made_by:
        lines.append(f"Runs: `{made_by}` ({len(df)} runs in `{folder}`).")
    lines += [setup(folder, df), REPORTS.get(spec.kind).factory(df, stem, spec)]
    return "\n\n".join(lines)


def write_report(folder: Path, out: Path, kind: str | None = None) -> Path:
    """``ssl-bench report FOLDER -o OUT``: markdown at OUT, PNGs beside it."""
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise UserError(f"results directory not found: {folder}")
    if (folder / "summary.json").is_file():  # one run folder
        from ssl_bench.report.run import write_run_report

        if kind:
            raise UserError("--kind applies to sweep folders; a run folder has one report")
        return write_run_report(folder, out)
    command = f"ssl-bench report {folder} -o {out}" + (f" --kind {kind}" if kind else "")
    spec = spec_of(folder, kind)
    out.parent.mkdir(parents=True, exist_ok=True)
    head = (
        f"# Report: {title(spec.kind)}\n\nGenerated by `{command}` on "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Every number below comes from the "
        f"runs' summary.json files."
    )
    body = section(folder, spec, out.with_suffix(""))  # "no runs under ..." fails here
    out.write_text(head + "\n\n" + body + "\n\n" + arms_section(folder, out) + "\n")
    return out


def arms_section(folder: Path, out: Path, most: int = 12) -> str:
    """A PCA of each arm's test features (its first seed's run), coloured by class."""
    from ssl_bench.report.run import arms_plot

    df = in_sweep_order(collect(folder), list(sweep_info(folder).get("arms") or {}))
    by = "arm" if "arm" in df else "run"
    first = df.sort_values("seed", kind="stable").drop_duplicates(by)
    first = df[df["run"].isin(first["run"])]  # back in the report's order
    runs = {
        str(row[by]): folder / row["run"]
        for _, row in first.iterrows()
        if (folder / row["run"] / "checkpoints" / "last.pt").is_file()
    }
    if not runs:
        return ""
    shown = dict(list(runs.items())[:most])
    fig = arms_plot(shown, Path(f"{out.with_suffix('')}-embeddings.png"))
    more = f" (the first {most} of {len(runs)})" if len(runs) > most else ""
    return (
        f"## Test features of each arm\n\nPCA of the l2-normalised test features of each "
        f"arm's first seed{more}, coloured by class: where the classes separate, cosine kNN "
        f"can read them.\n\n![embeddings]({fig.name})"
    )
