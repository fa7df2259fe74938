"""Every method head to head at its own budget, with the baselines.

The sweep file declares the reference arm (the untrained backbone) the reading compares
every method with; a method on another architecture (CLIP's ViT) is compared with the
untrained arm (method `random`) of its own backbone when the sweep has one."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ssl_bench.registry import REPORTS
from ssl_bench.report import paper, plots
from ssl_bench.report.kinds import ReportSpec
from ssl_bench.report.kinds._common import (
    HEAD_REF,
    HEAD_STD,
    KNN,
    LINEAR,
    LOW10,
    RANKME,
    SEG,
    ZEROSHOT,
    figure,
    label_of,
    png,
    ratio,
    s,
    table,
)
from ssl_bench.report.stats import by


@REPORTS.register(
    "methods",
    "all methods head to head, with the baselines",
    reference="the untrained backbone every method must beat",
)
def methods(df: pd.DataFrame, stem: Path, spec: ReportSpec) -> str:
    key = label_of(df)
    header = [key, "backbone", "epochs", "train s", "kNN top-1", "linear top-1"]
    header += ["10%-label top-1", "seg mIoU", "zero-shot top-1", "RankMe backbone"]
    header += ["head std / (1/sqrt(d))", "paper kNN (CIFAR-10, ResNet-18, 200 ep)"]
    rows, names, knn, lin, stats, backbone_of = [], [], [], [], {}, {}
    untrained = {}  # backbone -> the arm of method `random` on it
    for (name,), g in by(df, [key]).items():
        k = s(g, KNN)
        stats[name] = k
        backbone_of[name] = str(g["backbone"].iloc[0])
        if str(g["method"].iloc[0]) == "random":
            untrained.setdefault(backbone_of[name], name)
        ref = paper.CIFAR10_KNN.get(str(g["method"].iloc[0]))
        rows.append(
            [
                name,
                str(g["backbone"].iloc[0]),
                str(g["epochs"].iloc[0]),
                s(g, "train_seconds").fmt(False, 0),
                k.fmt(),
                s(g, LINEAR).fmt(),
                s(g, LOW10).fmt(),
                s(g, SEG).fmt(),
                s(g, ZEROSHOT).fmt(),
                s(g, RANKME).fmt(False),
                ratio(s(g, HEAD_STD), s(g, HEAD_REF)).fmt(False, 2),
                f"{ref:.1f}" if ref else "-",
            ]
        )
        names.append(name)
        knn.append(k)
        lin.append(s(g, LINEAR))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(names) + 2), 3.4))
    plots.bars(ax, names, {"kNN": knn, "linear": lin}, "top-1 (%) on the test split")
    path = plots.save(fig, png(stem))
    ref = spec.reference
    if ref in stats:
        untrained[backbone_of[ref]] = ref  # the declared reference wins on its backbone
        refs = {n: untrained.get(backbone_of[n], ref) for n in stats}
        compared = [n for n in stats if n not in untrained.values()]
        above = [n for n in compared if stats[n].beats(stats[refs[n]]) == "above"]
        rest = [n for n in compared if n not in above]

        def named(arms: list[str]) -> str:
            return (
                ", ".join(f"{n}" + (f" (vs `{refs[n]}`)" if refs[n] != ref else "") for n in arms)
                or "none"
            )

        reading = (
            f"Clearly above the untrained backbone (`{ref}`, or the untrained arm of the "
            f"same architecture) in kNN, by more than the seeds' spread: {named(above)}; "
            f"not clearly above it: {named(rest)}."
        )
    else:
        reading = (
            "The sweep file declares no reference arm (report.reference), so no arm is "
            "compared with an untrained backbone."
        )
    return "\n\n".join(
        [
            table(header, rows),
            figure(path, "methods head to head"),
            f"**Reading.** {reading} Rows differ in epochs because a step of one method "
            "costs several of another's; `train s` is the budget each row actually had, and "
            "a method's ranking here holds for that budget only. The paper column is another "
            "dataset and scale (lightly's CIFAR-10 benchmark), shown for orientation only.",
        ]
    )
