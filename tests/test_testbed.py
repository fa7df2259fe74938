"""The digits testbed of issue 14 (benchmarks/results/recipes.md), tiny: BYOL's default
recipe keeps its projector alive, and the same run without a predictor collapses."""

import json

import pytest

from ssl_bench.cli import _parser as parser
from ssl_bench.cli import resolve_config
from ssl_bench.runner import run

TESTBED = [
    "--dataset", "digits", "--set", "data.image_size=16", "--set", "model.width=8",
    "--batch-size", "64", "--epochs", "4", "--no-progress", "--no-eval",
    "--set", "train.knn_monitor_size=256",
]  # fmt: skip


def last_epoch(folder):
    records = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "head_std" in r][-1]


@pytest.mark.e2e
def test_byol_keeps_its_head_alive_where_no_predictor_collapses(tmp_path):
    healthy = {}
    for arm, extra in [("byol", []), ("no_predictor", ["--set", "method.predictor=false"])]:
        cfg = resolve_config(parser().parse_args(["run", "byol", *TESTBED, *extra]))
        run(cfg, tmp_path / arm)
        r = last_epoch(tmp_path / arm)
        healthy[arm] = r["head_std"] / r["head_std_ref"], r["head_rankme"]
    # At this tiny scale (16 px, a 64-dim backbone under a 256-dim head) a healthy head sits
    # below the full-size criterion of 0.5/sqrt(d); what must hold is the contrast.
    (std, rank), (std_np, rank_np) = healthy["byol"], healthy["no_predictor"]
    assert std >= 0.2 and rank >= 10, healthy
    assert std >= 2 * std_np and rank > rank_np, healthy
