"""Parsing an evaluator list, with no heavy imports.

The names come from the evaluator registry (``ssl_bench/evaluators/``), whose modules
import faiss and scikit-learn only when they run, so a config can check
``eval.evaluators`` without loading them.
"""

from __future__ import annotations

from ssl_bench.registry import EVALUATORS


def parse_only(text: str | None, default: str) -> list[str]:
    """``"knn, linear"`` -> ``["knn", "linear"]`` (``default`` when empty); an unknown name
    fails with the valid choices."""
    names = [n.strip() for n in (text or default).split(",") if n.strip()]
    for n in names:
        EVALUATORS.get(n)  # fails with the valid choices
    return names


def in_order(names: list[str]) -> list[str]:
    """Evaluator names in their declared order (summary, table columns, protocol)."""
    return sorted(names, key=lambda n: EVALUATORS.get(n).extra.get("order", 100))
