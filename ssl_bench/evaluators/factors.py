"""What the features encode among the `shapes` generator's per-image factors."""

from __future__ import annotations

from typing import Any

from ssl_bench.evaluators import EvalContext
from ssl_bench.registry import EVALUATORS


def summary(ev: dict[str, Any]) -> list[tuple[str, str]]:
    f = ev["factors"]
    pcs = ", ".join(
        f"PC{i} {100 * c['share']:.0f}% {c['factor']}" for i, c in enumerate(f["components"])
    )
    probe = " / ".join(
        f"{f['probe'][k]:.2f}" if k in f["probe"] else "-"  # a constant factor: no probe
        for k in ("shape", "colour", "pattern")
    )
    return [("features: top components", pcs), ("probe shape / colour / pattern", probe)]


@EVALUATORS.register(
    "factors",
    "what the features encode among the shapes generator's factors (probes, top PCs)",
    order=70,
    needs=("factors",),
    summary=summary,
)
def run(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.factors import factors_eval

    d = ctx.data
    return {"factors": factors_eval(ctx.pooled("train"), ctx.pooled("test"), d.train, d.test)}
