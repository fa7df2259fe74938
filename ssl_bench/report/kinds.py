"""The kinds of report section, one per course question group (MISSION.md).

A sweep file names its kind under ``report:``; ``ssl-bench sweep`` copies the file into
its output folder, where ``ssl-bench report`` finds it.
"""

KINDS = {
    "batch_size": "Q7a: top-1 against batch size, SimCLR vs BYOL (BYOL Fig. 3a)",
    "augmentations": "Q7b: drop in top-1 when augmentations are removed (BYOL Fig. 3b)",
    "collapse": "Q5-6: collapse variants: std vs 1/sqrt(d), RankMe, kNN",
    "multicrop": "Q8: global/local crops: LoGo terms vs DINO multi-crop",
    "detailclip": "Q1-4: DetailCLIP components: seg mIoU, zero-shot, kept-on-object",
    "methods": "all methods head to head, with the baselines",
}
