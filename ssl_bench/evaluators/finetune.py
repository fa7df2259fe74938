"""The fine-tuning probe: backbone + linear head trained end to end (off by default)."""

from __future__ import annotations

from typing import Any

from ssl_bench.evaluators import EvalContext, pct
from ssl_bench.registry import EVALUATORS


@EVALUATORS.register(
    "finetune",
    "backbone + linear head trained end to end on train, lr chosen on val (eval.finetune)",
    order=25,
    headline={"eval.finetune.top1": "fine-tuned top-1"},
    summary=lambda ev: [
        ("fine-tuned top-1", f"{pct(ev['finetune']['top1'])} (lr {ev['finetune']['lr']:g})")
    ],
)
def run(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.finetune import finetune_probe

    e, t = ctx.cfg.eval, ctx.cfg.train
    result = finetune_probe(
        ctx.method.backbone,
        ctx.data,
        ctx.cfg.aug,
        ctx.views,
        ctx.device,
        e.finetune_epochs,
        e.finetune_lrs,
        t.batch_size,
        t.seed,
        t.precision,
        e.batch_size,
    )
    return {"finetune": result}
