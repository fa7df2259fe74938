"""kNN top-1 on frozen features (DINO's weighted vote), and lightly's preset beside it."""

from __future__ import annotations

from typing import Any

from ssl_bench.evaluators import EvalContext, pct
from ssl_bench.registry import EVALUATORS


def summary(ev: dict[str, Any]) -> list[tuple[str, str]]:
    knn = ev["knn"]
    return [(f"kNN top-1 (k={knn['k']}, T={knn['T']})", pct(knn["top1"]))]


@EVALUATORS.register(
    "knn",
    "kNN top-1 on l2-normalised backbone features (k=20, T=0.07; and lightly's k=200, T=0.1)",
    order=10,
    headline={"eval.knn.top1": "kNN top-1"},
    summary=summary,
    protocol="kNN: top-1 on the test split with the train split as memory bank, on "
    "l2-normalised frozen backbone features, DINO's weighted vote (k={k}, T={T}).",
)
def run(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.knn import LIGHTLY_PRESET, knn_eval

    e, c = ctx.cfg.eval, ctx.data.num_classes
    bank, query = (
        (ctx.pooled("train"), ctx.labels("train")),
        (ctx.pooled("test"), ctx.labels("test")),
    )
    return {
        "knn": knn_eval(*bank, *query, c, e.knn_k, e.knn_t),
        "knn_lightly": knn_eval(*bank, *query, c, LIGHTLY_PRESET["k"], LIGHTLY_PRESET["T"]),
    }
