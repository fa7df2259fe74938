"""Q1-4: what each DetailCLIP component adds over CLIP, one ablation arm per component.

The sweep file declares the full-method arm (report.reference), which component each
ablation arm removes (report.removes) and which arms stand for the paper's rows."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from ssl_bench.registry import REPORTS
from ssl_bench.report import paper, plots
from ssl_bench.report.kinds import ReportSpec
from ssl_bench.report.kinds._common import (
    KNN,
    LINEAR,
    SEG,
    ZEROSHOT,
    figure,
    label_of,
    png,
    s,
    table,
)
from ssl_bench.report.stats import Stat, by

COMPONENTS = {
    "distillation": "Q1 (self-distillation)",
    "attention": "Q2 (what attention keeps)",  # random instead of attention-guided removal
    "reconstruction": "Q3 (pixel reconstruction)",
    "removal": "Q4 (components together)",  # the student sees every patch
    "all": "Q1 and Q4 (the plain method the full one extends)",
}


@REPORTS.register(
    "detailclip",
    "Q1-4: DetailCLIP components: seg mIoU, zero-shot, kept-on-object",
    reference="the full method, which each ablation arm is compared with",
    reference_required=True,
    paper=paper.DETAILCLIP,
    components=COMPONENTS,
)
def detailclip(df: pd.DataFrame, stem: Path, spec: ReportSpec) -> str:
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
        ref = paper.DETAILCLIP.get(spec.paper.get(name, ""))
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

    def compare(component: str, metric: str, what: str) -> str:
        a, b = full, spec.arm_for(component)
        if a not in stats or b not in stats:
            return ""
        x, y = stats[a][metric], stats[b][metric]
        return f"`{a}` {what} {x.fmt()} is {x.beats(y)} `{b}`'s {y.fmt()}."

    full = spec.reference or ""
    kept = ""
    if full in stats and not math.isnan(stats[full]["att"].mean):
        att, rnd = stats[full]["att"], stats[full]["rnd"]
        kept = (
            f"the teacher's most-attended blocks put {att.fmt()}% of kept patches on the "
            f"object, random blocks {rnd.fmt()}%, against {stats[full]['all'].fmt()}% of all "
            f"patches (attention {att.beats(rnd)} random); "
        )
    q = [
        f"{COMPONENTS['distillation']}: "
        + compare("distillation", "seg", "seg mIoU")
        + " "
        + compare("all", "seg", "seg mIoU"),
        f"{COMPONENTS['attention']}: " + kept + compare("attention", "seg", "seg mIoU"),
        f"{COMPONENTS['reconstruction']}: " + compare("reconstruction", "seg", "seg mIoU"),
        f"{COMPONENTS['removal']}: "
        + compare("removal", "seg", "seg mIoU")
        + " "
        + compare("all", "zs", "zero-shot"),
    ]
    q = [x.strip() for x in q]
    undeclared = [c for c in COMPONENTS if spec.arm_for(c) not in stats]
    if undeclared:
        q.append(
            "No arm of these runs is declared (report.removes) to remove: "
            + ", ".join(f"`{c}`" for c in undeclared)
            + "."
        )
    if claims := against_paper(stats, full, spec):
        q.append(claims)
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
    (d_seg, d_zs), (c_seg, c_zs) = paper.DETAILCLIP["detailclip"], paper.DETAILCLIP["clip"]
    paper_line = captions + (
        f"Paper (ViT-B/16, YFCC-15M): DetailCLIP {d_seg} vs CLIP {c_seg} ADE20K mIoU, {d_zs} vs "
        f"{c_zs} zero-shot; A-CLIP: keeping the most-attended 50% gives "
        f"{paper.ACLIP_KEEP['attention']} vs {paper.ACLIP_KEEP['random']} zero-shot for a "
        "random 50%."
    )
    return "\n\n".join(
        [
            table(header, rows),
            figure(path, "DetailCLIP components"),
            "**Reading.** " + " ".join(x for x in q if not x.endswith(":")),
            paper_line,
        ]
    )


def against_paper(stats: dict[str, dict[str, Stat]], full: str, spec: ReportSpec) -> str:
    """Say whether each of the papers' two orderings holds here: DetailCLIP above CLIP
    (seg mIoU and zero-shot), and attention-chosen patches above random ones (A-CLIP)."""
    claims = []
    clip = spec.arm_for("all")
    if full in stats and clip in stats:
        ours, theirs = paper.DETAILCLIP["detailclip"], paper.DETAILCLIP["clip"]
        for i, (metric, what) in enumerate((("seg", "seg mIoU"), ("zs", "zero-shot"))):
            verdict = stats[full][metric].beats(stats[clip][metric])
            claims.append(
                f"they find DetailCLIP above CLIP on {what} ({ours[i]} vs {theirs[i]}), "
                f"here `{full}` is {verdict} `{clip}` ({agreement(verdict)})"
            )
    rnd = spec.arm_for("attention")
    if full in stats and rnd in stats:
        verdict = stats[full]["zs"].beats(stats[rnd]["zs"])
        claims.append(
            f"A-CLIP finds attention-chosen patches above random ones on zero-shot "
            f"({paper.ACLIP_KEEP['attention']} vs {paper.ACLIP_KEEP['random']}), "
            f"here `{full}` is {verdict} `{rnd}` ({agreement(verdict)})"
        )
    return f"Against the papers: {'; '.join(claims)}." if claims else ""


def agreement(verdict: str) -> str:
    return "agrees" if verdict == "above" else "disagrees"
