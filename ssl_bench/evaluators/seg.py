"""Segmentation probe on frozen spatial features (DINOv2 style)."""

from __future__ import annotations

from typing import Any

from ssl_bench.evaluators import EvalContext, pct
from ssl_bench.registry import EVALUATORS


@EVALUATORS.register(
    "seg",
    "segmentation probe (BatchNorm + 1x1 conv on frozen spatial features), test mIoU",
    order=40,
    needs=("masks",),
    headline={"eval.seg.miou": "seg mIoU"},
    summary=lambda ev: [("segmentation mIoU", pct(ev["seg"]["miou"]))],
    protocol="Seg: DINOv2-style probe (BatchNorm + 1x1 conv on frozen spatial features), "
    "test mIoU with background.",
)
def run(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.segmentation import seg_probe

    e = ctx.cfg.eval
    seg = seg_probe(
        ctx.cache.get("spatial", "train"),
        ctx.data.train.masks,
        ctx.cache.get("spatial", "test"),
        ctx.data.test.masks,
        ctx.data.num_classes + 1,
        e.seg_epochs,
        e.seg_lr,
        seed=ctx.cfg.train.seed,
        device=ctx.device,
    )
    return {"seg": seg}
