"""The factors evaluator: what features encode among the shapes generator's factors."""

import json

import numpy as np
import pytest
import torch

from ssl_bench.data.shapes import HARD, generate
from ssl_bench.data.splits import Split
from ssl_bench.errors import UserError
from ssl_bench.eval.factors import components, factor_table, probe


def _planted(split: Split, seed: int) -> np.ndarray:
    """Features whose main direction is the background polarity, plus a weak shape code."""
    g = np.random.default_rng(seed)
    n = len(split)
    dark = split.factors["dark_background"].numpy()[:, None]
    shape = np.eye(10)[split.labels.numpy()]
    return np.concatenate([5 * dark + 0.1 * g.normal(size=(n, 1)), shape, g.normal(size=(n, 4))], 1)


def test_components_and_probe_name_the_planted_factors():
    tr, te = generate(500, 16, seed=0, style=HARD), generate(300, 16, seed=1, style=HARD)
    xtr, xte = _planted(tr, 0), _planted(te, 1)
    first = components(xte, te, 2)[0]
    assert first["share"] > 0.2 and first["factor"] == "dark_background"
    assert first["r2"]["dark_background"] > 0.9
    scores = probe(xtr, xte, tr, te)
    assert scores["shape"] > 0.95 and scores["dark_background"] > 0.95
    assert scores["colour"] < 0.4  # not in the features: near chance (1/8)


def test_a_split_without_factors_is_a_clear_error():
    split = Split(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(4))
    with pytest.raises(UserError, match="only the `shapes` datasets"):
        factor_table(split)


def test_eval_only_factors_end_to_end(run_cli, tiny, tmp_path):
    out = tmp_path / "run"  # shapes_hard: every factor varies
    args = ["run", "random", *tiny, "--dataset", "shapes_hard", "--out", out, "--no-eval"]
    assert run_cli(*args)[0] == 0
    code, stdout, err = run_cli("eval", out, "--only", "factors")
    assert code == 0, err
    f = json.loads((out / "summary.json").read_text())["eval"]["factors"]
    assert {"shape", "colour", "pattern", "centre_x", "rotation"} <= set(f["probe"])
    assert len(f["components"]) == 3 and all(0 < c["share"] <= 1 for c in f["components"])
    assert "features: top components" in stdout and "PC0" in stdout
    digits = tmp_path / "digits"
    args = ["run", "pixels", "--dataset", "digits", "--set", "data.image_size=16", "--no-eval"]
    assert run_cli(*args, "--out", digits)[0] == 0
    code, _, err = run_cli("eval", digits, "--only", "factors")
    assert code == 2 and "generator factors (shapes)" in err and "'digits'" in err
    assert len(err.strip().splitlines()) == 1


def test_a_constant_factor_is_left_out_of_the_probe(run_cli, tiny, tmp_path):
    out = tmp_path / "easy"
    args = ["run", "random", *tiny, "--dataset", "shapes_easy", "--out", out]
    code, stdout, err = run_cli(*args, "--set", "eval.evaluators=factors")
    assert code == 0, err
    probe = json.loads((out / "summary.json").read_text())["eval"]["factors"]["probe"]
    assert "pattern" not in probe and "noise" not in probe and "shape" in probe
    assert "probe shape / colour / pattern" in stdout and stdout.count(" / -") == 1
