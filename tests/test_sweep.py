"""Sweep files expand into one validated run per arm x grid point x seed."""

import json
import os
from pathlib import Path

import pytest
import yaml

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
        "arms: {full: {}, no_flip: {aug.flip: false}}\n"
        "seeds: [0, 1]\n",
    )
    runs = plan(path)
    assert [r.name for r in runs] == [
        "full-batch_size=32-seed0",
        "full-batch_size=32-seed1",
        "full-batch_size=64-seed0",
        "full-batch_size=64-seed1",
        "no_flip-batch_size=32-seed0",
        "no_flip-batch_size=32-seed1",
        "no_flip-batch_size=64-seed0",
        "no_flip-batch_size=64-seed1",
    ]
    last = runs[-1].config
    assert last.train.batch_size == 64 and last.train.seed == 1 and last.train.epochs == 3
    assert last.aug.flip is False and runs[0].config.aug.flip is True


def test_set_applies_to_every_run_last(tmp_path):
    path = write(tmp_path, "base: {method: simclr}\narms: {a: {train.epochs: 3}, b: {}}\n")
    runs = plan(path, ["train.epochs=7", "model.width=8"])
    assert [(r.config.train.epochs, r.config.model.width) for r in runs] == [(7, 8), (7, 8)]


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
        ("base: {method: simclr}\narms:\n  a: {}\n  a: {train.epochs: 2}\n", "duplicate key 'a'"),
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


def test_gpu_scale_sweep_puts_every_arm_on_resnet18():
    arms = {r.name.rsplit("-seed", 1)[0]: r.config for r in plan(EXPERIMENTS / "gpu_scale.yaml")}
    assert set(arms) == {"random", "simclr", "byol", "byol_lars", "dino"}
    assert {c.model.backbone for c in arms.values()} == {"resnet18"}
    assert arms["byol_lars"].optim.name == "lars" and arms["byol"].optim.name == "adamw"


TINY_BASE = """
base:
  method: random
  data: {train_size: 64, val_size: 32, test_size: 32}
  model: {width: 8}
  train: {epochs: 1, batch_size: 16, knn_monitor_size: 64}
  eval: {evaluators: knn}
"""


def test_sweep_resumes_skips_and_survives_a_failing_run(run_cli, tmp_path):
    sweep = write(
        tmp_path,
        TINY_BASE
        + "arms:\n  ok: {method: simclr}\n  broken: {data.name: cifar10, data.data_dir: /nowhere}\n"
        + "seeds: [0, 1]\n",
    )
    out = tmp_path / "runs"
    code, stdout, _ = run_cli("sweep", sweep, "--out", out)
    assert code == 1  # a run failed, but the sweep went on
    assert sorted(p.parent.name for p in out.glob("*/summary.json")) == ["ok-seed0", "ok-seed1"]
    log = (out / "sweep.jsonl").read_text()
    assert log.count('"failed"') == 2 and "/nowhere" in log and log.count('"done"') == 2
    # Interrupt one run (a checkpoint without a summary): the next call resumes only it.
    (out / "ok-seed1" / "summary.json").unlink()
    code, stdout, _ = run_cli("sweep", sweep, "--out", out)
    assert "1 already finished" in stdout
    assert "ok-seed1: resumed" in stdout and "ok-seed0" not in stdout.split("to run")[1]
    assert (out / "ok-seed1" / "summary.json").is_file()
    recorded = yaml.safe_load((out / "sweep.yaml").read_text())  # for `ssl-bench report`
    assert recorded["command"] == f"ssl-bench sweep {sweep} --out {out}"
    assert set(recorded["arms"]) == {"ok", "broken"}
    # The sweep's report shows each arm's test features (its first seed) beside the table.
    code, _, err = run_cli("report", out, "-o", tmp_path / "rep.md", "--kind", "methods")
    assert code == 0, err
    assert "![embeddings](rep-embeddings.png)" in (tmp_path / "rep.md").read_text()
    assert (tmp_path / "rep-embeddings.png").stat().st_size > 5000


def test_dry_run_prints_plan_and_cost_and_writes_nothing(run_cli, tmp_path):
    sweep = write(tmp_path, TINY_BASE + "grid: {method: [simclr, random]}\nseeds: [0]\n")
    code, stdout, _ = run_cli("sweep", sweep, "--out", tmp_path / "runs", "--dry-run")
    assert code == 0
    assert "method=simclr-seed0" in stdout and "method=random-seed0" in stdout
    assert "estimated training time" in stdout
    assert not (tmp_path / "runs").exists()


def test_dry_run_times_a_step_as_the_trainer_runs_it_with_accumulation(tmp_path, monkeypatch):
    # A step of accum_steps micro-batches costs far more than one full batch on a CPU, so
    # the estimate must time the micro-batches, not the batch.
    import ssl_bench.method
    from ssl_bench.sweep import time_step

    seen: list[int] = []
    build = ssl_bench.method.build_method

    def recording_build(cfg, info):
        method = build(cfg, info)
        step = method.training_step

        def training_step(views, labels, *args):
            seen.append(len(views[0]))
            return step(views, labels, *args)

        method.training_step = training_step
        return method

    monkeypatch.setattr(ssl_bench.method, "build_method", recording_build)
    sweep = write(tmp_path, TINY_BASE + "grid: {method: [simclr], train.accum_steps: [4]}\n")
    assert time_step(plan(sweep)[0].config, repeats=2) > 0
    assert seen == [16 // 4] * 4 * 3  # (warm-up + 2 timed steps) x 4 micro-batches of 4


def test_bad_sweep_file_is_one_line_error(run_cli, tmp_path):
    code, _, err = run_cli("sweep", write(tmp_path, "grid: {method: [simclr, nope]}\n"))
    assert code == 2 and "nope" in err and "simclr" in err and len(err.strip().splitlines()) == 1


@pytest.mark.e2e
def test_jobs_run_in_parallel_processes_with_split_threads(run_cli, tmp_path):
    sweep = write(tmp_path, TINY_BASE + "grid: {method: [simclr, byol]}\nseeds: [0]\n")
    code, stdout, _ = run_cli("sweep", sweep, "--out", tmp_path / "runs", "--jobs", "2")
    assert code == 0 and "2 runs ok, 0 failed" in stdout
    expected = max(1, (os.cpu_count() or 1) // 2)
    for name in ("method=simclr-seed0", "method=byol-seed0"):
        summary = json.loads((tmp_path / "runs" / name / "summary.json").read_text())
        assert summary["config"]["train"]["threads"] == expected


def test_a_run_another_sweep_trained_is_reused_and_evaluated_its_own_way(run_cli, tmp_path):
    # Two sweeps of one study that share a run: the second copies the first's weights
    # and evaluates them with its own evaluators instead of training them again.
    first = tmp_path / "first.yaml"
    first.write_text(TINY_BASE + "arms:\n  simclr: {method: simclr}\nseeds: [0]\n")
    second = tmp_path / "second.yaml"
    second.write_text(
        TINY_BASE.replace("evaluators: knn", "evaluators: 'knn,collapse'")
        + "arms:\n  baseline: {method: simclr}\nseeds: [0, 1]\n"
    )
    runs = tmp_path / "runs"
    source_dir = runs / "first" / "simclr-seed0"
    assert run_cli("sweep", first, "--out", runs / "first")[0] == 0
    code, stdout, _ = run_cli("sweep", second, "--out", runs / "second", "--dry-run")
    plan_lines = {line.split()[0]: line for line in stdout.splitlines() if "-seed" in line}
    assert code == 0 and f"reused from {source_dir}" in plan_lines["baseline-seed0"]
    assert "reused" not in plan_lines["baseline-seed1"]  # another seed is another training
    code, stdout, err = run_cli("sweep", second, "--out", runs / "second")
    assert code == 0, err
    assert "baseline-seed0: reused in" in stdout and f"(from {source_dir})" in stdout
    assert "baseline-seed1: done" in stdout
    log = [json.loads(line) for line in (runs / "second" / "sweep.jsonl").read_text().splitlines()]
    assert [(r["status"], r["source"]) for r in log] == [("reused", str(source_dir)), ("done", "")]
    source = json.loads((source_dir / "summary.json").read_text())
    copy = json.loads((runs / "second" / "baseline-seed0" / "summary.json").read_text())
    assert copy["reused_from"] == str(source_dir)
    assert copy["run_dir"] == str(runs / "second" / "baseline-seed0")
    assert copy["train_seconds"] == source["train_seconds"]  # what the training cost
    assert "collapse" in copy["eval"] and "collapse" not in source["eval"]
    # Its records read as the second sweep's own: config.yaml differs from the trained
    # seed's only in the seed (so the two are one row, mean ± std, in a results table).
    config = yaml.safe_load((runs / "second" / "baseline-seed0" / "config.yaml").read_text())
    trained = yaml.safe_load((runs / "second" / "baseline-seed1" / "config.yaml").read_text())
    assert config["eval"]["evaluators"] == "knn,collapse" and copy["config"] == config
    assert config == {**trained, "train": {**trained["train"], "seed": 0}}
    # --no-reuse trains it again, to the same numbers: reuse loses nothing.
    code, stdout, _ = run_cli("sweep", second, "--out", runs / "third", "--no-reuse")
    assert code == 0 and "baseline-seed0: done" in stdout
    again = json.loads((runs / "third" / "baseline-seed0" / "summary.json").read_text())
    assert again["eval"]["knn"] == copy["eval"]["knn"] == source["eval"]["knn"]
    assert again["eval"]["collapse"] == copy["eval"]["collapse"]
    assert not list(tmp_path.rglob("*.partial"))


def test_a_run_trained_in_another_precision_is_not_a_twin(tmp_path):
    # precision "auto" is bf16 on one CPU and fp32 on another: the numbers differ.
    import torch

    from ssl_bench.runtime import precision_name
    from ssl_bench.sweep import find_twin

    (spec,) = plan(write(tmp_path, TINY_BASE + "arms:\n  a: {method: simclr}\nseeds: [0]\n"))
    assert spec.config is not None
    mine = precision_name(torch.device("cpu"), spec.config.train.precision)
    other = "fp32" if mine == "bf16" else "bf16"
    record = {"device": "cpu (2 cores)", "precision": mine, "world_size": 1}
    saved = spec.config.to_dict()
    assert find_twin(spec, [(tmp_path / "x", saved, record)]) == tmp_path / "x"
    assert find_twin(spec, [(tmp_path / "x", saved, {**record, "precision": other})]) is None
