"""The evaluators' names and the parser of an evaluator list, with no heavy imports.

It is a leaf module so that a config can check ``eval.evaluators`` without loading faiss
or scikit-learn (``ssl_bench.eval.evaluator`` imports both).
"""

from __future__ import annotations

from ssl_bench.errors import unknown

EVALUATORS = (
    "knn",
    "linear",
    "lowshot",
    "seg",
    "collapse",
    "factors",
    "zeroshot",
    "retrieval",
    "removal",
    "finetune",
)


def parse_only(text: str | None, default: str) -> list[str]:
    """``"knn, linear"`` -> ``["knn", "linear"]`` (``default`` when empty); an unknown name
    fails with the valid choices."""
    names = [n.strip() for n in (text or default).split(",") if n.strip()]
    for n in names:
        if n not in EVALUATORS:
            raise unknown("evaluator", n, EVALUATORS)
    return names
