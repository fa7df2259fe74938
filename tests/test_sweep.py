"""Sweep files expand into one validated run per arm x grid point x seed."""

from pathlib import Path

import pytest

from ssl_bench.errors import UserError
from ssl_bench.sweep import plan

EXPERIMENTS = Path(__file__).parent.parent / "experiments"


def write(tmp_path, text):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def test_grid_times_arms_times_seeds_with_names(tmp_path):
    path = write(
        tmp_path,
        "base: {method: simclr, train: {epochs: 3}}\n"
        "grid: {train.batch_size: [32, 64]}\n"
        "arms: {full: {}, no_blur: {aug.blur: false}}\n"
        "seeds: [0, 1]\n",
    )
    runs = plan(path)
    assert [r.name for r in runs] == [
        "full-batch_size=32-seed0",
        "full-batch_size=32-seed1",
        "full-batch_size=64-seed0",
        "full-batch_size=64-seed1",
        "no_blur-batch_size=32-seed0",
        "no_blur-batch_size=32-seed1",
        "no_blur-batch_size=64-seed0",
        "no_blur-batch_size=64-seed1",
    ]
    last = runs[-1].config
    assert last.train.batch_size == 64 and last.train.seed == 1 and last.train.epochs == 3
    assert last.aug.blur is False and runs[0].config.aug.blur is True


def test_method_can_come_from_the_grid(tmp_path):
    runs = plan(write(tmp_path, "grid: {method: [simclr, byol]}\nseeds: [0]\n"))
    assert [(r.name, r.method) for r in runs] == [
        ("method=simclr-seed0", "simclr"),
        ("method=byol-seed0", "byol"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("grid: {}\nseeds: [0]\n", "empty"),
        ("base: {method: simclr}\ngrid: {train.bogus: [1]}\n", "bogus"),
        ("base: {method: simclr}\ngrid: {train.epochs: []}\n", "non-empty list"),
        ("gird: {method: [simclr]}\n", "grid"),
        ("grid: {train.epochs: [1]}\n", "no method"),
        ("base: {method: simclr}\narms: {a: {method.negatives: maybe}}\n", "run a-seed0"),
    ],
)
def test_bad_sweep_files_fail_before_anything_runs(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        plan(write(tmp_path, text))


def test_collapse_sweep_has_every_variant():
    runs = plan(EXPERIMENTS / "collapse.yaml")
    arms = {r.name.rsplit("-seed", 1)[0]: r.config for r in runs}
    assert len(runs) == 6 * 3
    assert arms["simclr_positive_only"].method.negatives is False
    assert arms["byol_no_predictor"].method.predictor is False
    assert arms["byol_tau0"].method.momentum_base == 0.0
    assert arms["byol_tau1"].method.momentum_base == 1.0


def test_multicrop_sweep_adds_one_term_per_arm():
    arms = {r.name.rsplit("-seed", 1)[0]: r.config for r in plan(EXPERIMENTS / "multicrop.yaml")}
    assert arms["global_only"].method.n_local == 0
    assert arms["local_global"].method.local_repulsion is False
    assert arms["logo"].method.local_repulsion is True
    assert arms["logo_strong_repulsion"].method.local_weight > arms["logo"].method.local_weight
    assert arms["dino"].method.name == "dino"
