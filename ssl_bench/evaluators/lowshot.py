"""The linear probe on 1% and 10% of the labels (fixed class-balanced subsets)."""

from __future__ import annotations

from typing import Any

from ssl_bench.evaluators import EvalContext, pct
from ssl_bench.registry import EVALUATORS

LOW_SHOT = {"1%": 0.01, "10%": 0.10}


def summary(ev: dict[str, Any]) -> list[tuple[str, str]]:
    shots = ", ".join(f"{k} {pct(v['top1'])}" for k, v in ev["lowshot"].items())
    return [("low-shot linear top-1", shots)]


@EVALUATORS.register(
    "lowshot",
    "the linear probe on fixed class-balanced 1% and 10% label subsets",
    order=30,
    headline={"eval.lowshot.10%.top1": "10%-label top-1"},
    summary=summary,
    protocol="10%-label: the same on a fixed class-balanced tenth of the labels.",
)
def run(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.linear import linear_probe, low_shot_indices

    p, y, seed = ctx.pooled, ctx.labels, ctx.cfg.train.seed
    out = {}
    for name, fraction in LOW_SHOT.items():
        idx = low_shot_indices(y("train"), fraction, seed)
        result = linear_probe(
            p("train")[idx],
            y("train")[idx],
            p("val"),
            y("val"),
            p("test"),
            y("test"),
            ctx.data.num_classes,
            refit_with_val=False,
        )
        result.update(fraction=fraction, labels=len(idx), subset_seed=seed)
        out[name] = result
    return {"lowshot": out}
