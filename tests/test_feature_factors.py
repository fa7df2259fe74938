"""The feature-factor diagnostic (benchmarks/feature_factors.py) finds a planted factor."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_bench.data.shapes import generate
from ssl_bench.data.splits import Split
from ssl_bench.errors import UserError

_PATH = Path(__file__).parent.parent / "benchmarks" / "feature_factors.py"
_spec = importlib.util.spec_from_file_location("feature_factors", _PATH)
ff = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ff)


def _planted(split: Split, seed: int) -> np.ndarray:
    """Features whose main direction is the background polarity, plus a weak shape code."""
    g = np.random.default_rng(seed)
    n = len(split)
    dark = split.factors["dark_background"].numpy()[:, None]
    shape = np.eye(10)[split.labels.numpy()]
    return np.concatenate([5 * dark + 0.1 * g.normal(size=(n, 1)), shape, g.normal(size=(n, 4))], 1)


def test_components_and_probe_name_the_planted_factors():
    tr, te = generate(500, 16, seed=0), generate(300, 16, seed=1)
    xtr, xte = _planted(tr, 0), _planted(te, 1)
    pcs = ff.components(xte, te, 2)
    share, r2 = pcs[0]
    assert share > 0.2 and r2[0][0] == "dark_background" and r2[0][1] > 0.9
    scores = ff.probe(xtr, xte, tr, te)
    assert scores["shape"] > 0.95 and scores["dark_background"] > 0.95
    assert scores["colour"] < 0.4  # not in the features: near chance (1/8)


def test_a_dataset_without_factors_is_a_clear_error():
    split = Split(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.arange(4))
    with pytest.raises(UserError, match="only `shapes`"):
        ff.factor_table(split)
