"""One report section per kind of sweep (see :mod:`ssl_bench.report.kinds`).

Each section function takes the runs' table (:func:`ssl_bench.report.table.collect`) and
a path stem for its figures, and returns markdown: a table of mean ± std over seeds,
the papers' numbers beside ours where FACTS.md has them, PNG plots, and a reading that
is computed from the numbers (a difference is called only when it exceeds the seeds'
spread), so the text cannot claim what the table does not show.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import pandas as pd

from ssl_bench.errors import UserError
from ssl_bench.report import paper, plots
from ssl_bench.report.stats import NAN, Stat, by, points, stat

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


# ---------------------------------------------------------------- batch size (Q7a)


def batch_size(df: pd.DataFrame, stem: Path) -> str:
    require(df, ["batch_size", "images_seen"], "batch_size")
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
            seen = gb["images_seen"].iloc[0]
            steps = str(int(seen // bs)) if pd.notna(seen) else "-"
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
        "batch",
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
    if all(d[smallest].mean > 0 for d in drops.values()):
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
            f"**Reading.** {text} The paper instead held the update batch at 4096 with "
            f"gradient accumulation (equal steps; `train.accum_steps` does the same here).",
        ]
    )


# ---------------------------------------------------------------- augmentations (Q7b)


def augmentations(df: pd.DataFrame, stem: Path) -> str:
    require(df, ["arm"], "augmentations")
    df = df.assign(setting=df["arm"].str.replace(r"-?method=[^-]+", "", regex=True))
    methods = list(dict.fromkeys(df["method"]))
    arms = list(dict.fromkeys(df["setting"]))
    base = {m: s(df[(df.method == m) & (df.setting == "baseline")], LINEAR) for m in methods}
    header, rows, drops = ["arm"], [], {m: [] for m in methods}
    for m in methods:
        header += [f"{m} linear top-1", f"{m} drop", f"{m} paper drop"]
    for arm in arms:
        row = [arm]
        for m in methods:
            lin = s(df[(df.method == m) & (df.setting == arm)], LINEAR)
            drops[m].append(difference(lin, base[m]))
            ref = paper.BYOL_FIG3B.get(arm)
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
        d = [(a, x) for a, x in zip(arms, drops[m]) if a != "baseline"]
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
            if a != "baseline"
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


# ---------------------------------------------------------------- collapse (Q5, Q6)


def collapse(df: pd.DataFrame, stem: Path) -> str:
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
        ref_paper = paper.COLLAPSE.get(name)
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


# ---------------------------------------------------------------- multi-crop (Q8)


class Arm(NamedTuple):
    """One multi-crop arm's seeds, summarised: the metrics its reading compares."""

    name: str
    method: str
    scores: dict[str, Stat]  # kNN, linear, seg mIoU


def multicrop(df: pd.DataFrame, stem: Path) -> str:
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


# ---------------------------------------------------------------- DetailCLIP (Q1-4)


def detailclip(df: pd.DataFrame, stem: Path) -> str:
    key = label_of(df)
    header = [key, "seg mIoU", "zero-shot top-1", "kNN top-1", "linear top-1"]
    header += ["image->text R@1", "kept on object: attention / random / all patches"]
    header += ["paper seg mIoU (ADE20K)", "paper zero-shot (ImageNet)"]
    rows, names, seg, zs, stats = [], [], [], [], {}
    for (name,), g in by(df, [key]).items():
        stats[name] = {"seg": s(g, SEG), "zs": s(g, ZEROSHOT), "knn": s(g, KNN)}
        att, rnd = s(g, "eval.removal.attention"), s(g, "eval.removal.random")
        stats[name].update(att=att, rnd=rnd, all=s(g, "eval.removal.all_patches"))
        kept = (
            "-"
            if math.isnan(att.mean)
            else (f"{att.fmt()} / {rnd.fmt()} / {stats[name]['all'].fmt()}")
        )
        ref = paper.DETAILCLIP.get(name)
        rows.append(
            [
                name,
                stats[name]["seg"].fmt(),
                stats[name]["zs"].fmt(),
                stats[name]["knn"].fmt(),
                s(g, LINEAR).fmt(),
                s(g, "eval.retrieval.image_to_text_r1").fmt(),
                kept,
                f"{ref[0]:.1f}" if ref else "-",
                f"{ref[1]:.1f}" if ref else "-",
            ]
        )
        names.append(name)
        seg.append(stats[name]["seg"])
        zs.append(stats[name]["zs"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    plots.bars(axes[0], names, {"ours": seg}, "seg mIoU (%)")
    plots.bars(axes[1], names, {"ours": zs}, "zero-shot top-1 (%)")
    path = plots.save(fig, png(stem))

    def compare(a: str, b: str, metric: str, what: str) -> str:
        if a not in stats or b not in stats:
            return ""
        x, y = stats[a][metric], stats[b][metric]
        return f"`{a}` {what} {x.fmt()} is {x.beats(y)} `{b}`'s {y.fmt()}."

    full = "detailclip"
    q = [
        "Q1 (self-distillation): "
        + compare(full, "no_distillation", "seg", "seg mIoU")
        + " "
        + compare(full, "clip", "seg", "seg mIoU"),
        "Q2 (what attention keeps): "
        + (
            f"the teacher's most-attended blocks put {stats[full]['att'].fmt()}% of kept "
            f"patches on the object, random blocks {stats[full]['rnd'].fmt()}%, against "
            f"{stats[full]['all'].fmt()}% of all patches (attention "
            f"{stats[full]['att'].beats(stats[full]['rnd'])} random); "
            if full in stats and not math.isnan(stats[full]["att"].mean)
            else ""
        )
        + compare(full, "random_removal", "seg", "seg mIoU"),
        "Q3 (pixel reconstruction): " + compare(full, "no_reconstruction", "seg", "seg mIoU"),
        "Q4 (components together): "
        + compare(full, "no_removal", "seg", "seg mIoU")
        + " "
        + compare(full, "clip", "zs", "zero-shot"),
    ]
    chance = s(df, "eval.zeroshot.chance").mean
    best = max((v["zs"].mean for v in stats.values() if not math.isnan(v["zs"].mean)), default=0)
    if not math.isnan(chance) and best < 2 * chance:
        q.append(
            f"Every arm's zero-shot is below twice chance ({100 * chance:.0f}%): at this "
            "budget the image tower has barely started on shape, so the ablation cannot "
            "separate the components; scale it up with --set (see the sweep file)."
        )
    sources = (
        df["eval.zeroshot.captions"].dropna().unique() if "eval.zeroshot.captions" in df else []
    )
    captions = f"Captions: {', '.join(sources)}. " if len(sources) else ""
    paper_line = captions + (
        "Paper (ViT-B/16, YFCC-15M): DetailCLIP 37.3 vs CLIP 34.2 ADE20K mIoU, 43.9 vs 37.6 "
        f"zero-shot; A-CLIP: keeping the most-attended 50% gives {paper.ACLIP_KEEP['attention']}"
        f" vs {paper.ACLIP_KEEP['random']} zero-shot for a random 50%."
    )
    return "\n\n".join(
        [
            table(header, rows),
            figure(path, "DetailCLIP components"),
            "**Reading.** " + " ".join(x for x in q if not x.endswith(": ")),
            paper_line,
        ]
    )


# ---------------------------------------------------------------- methods head to head


def methods(df: pd.DataFrame, stem: Path) -> str:
    key = label_of(df)
    header = [key, "backbone", "epochs", "train s", "kNN top-1", "linear top-1"]
    header += ["10%-label top-1", "seg mIoU", "zero-shot top-1", "RankMe backbone"]
    header += ["head std / (1/sqrt(d))", "paper kNN (CIFAR-10, ResNet-18, 200 ep)"]
    rows, names, knn, lin, stats = [], [], [], [], {}
    for (name,), g in by(df, [key]).items():
        k = s(g, KNN)
        stats[name] = k
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
    reading = ""
    if "random" in stats:
        above = [
            n for n, k in stats.items() if n != "random" and k.beats(stats["random"]) == "above"
        ]
        rest = [n for n in stats if n not in above and n != "random"]
        reading = (
            f"Clearly above the random-init backbone in kNN: {', '.join(above) or 'none'}; "
            f"not clearly above it: {', '.join(rest) or 'none'}."
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


SECTIONS: dict[str, Callable[[pd.DataFrame, Path], str]] = {
    "batch_size": batch_size,
    "augmentations": augmentations,
    "collapse": collapse,
    "multicrop": multicrop,
    "detailclip": detailclip,
    "methods": methods,
}
