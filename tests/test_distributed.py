"""Distributed training, proved on CPU with gloo and real processes (no mocks):
gathered losses equal the one-process loss, 2-rank training equals 1-process training
on the same global batch (a method without BatchNorm, an EMA method with a centre), a
2-rank run resumes bit-identically, and bad input fails before any rank waits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TINY

from ssl_bench import checkpoint

WORLD = 2


def _join(rank: int, init: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=WORLD)


def spawn(fn, tmp_path: Path, *args) -> None:  # noqa: ANN001
    """Run ``fn(rank, tmp_path, *args)`` in WORLD real processes joined by gloo."""
    init = f"file://{tmp_path / f'rendezvous-{uuid.uuid4().hex}'}"  # one per group
    mp.spawn(_worker, args=(fn, init, tmp_path, args), nprocs=WORLD, join=True)


def _worker(rank: int, fn, init: str, tmp_path: Path, args: tuple) -> None:  # noqa: ANN001
    _join(rank, init)
    try:
        fn(rank, tmp_path, *args)
    finally:
        dist.destroy_process_group()


# ----------------------------------------------------------------- gathered losses
def _global_batch(n: int = 8, dim: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, WORLD * n, dim, generator=g, dtype=torch.float64)
    return torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1)


def _losses(a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    from lightly.loss import NTXentLoss

    from ssl_bench.text import clip_loss

    return {
        "ntxent": NTXentLoss(temperature=0.2, gather_distributed=True)(a, b),
        "clip": clip_loss(a, b, torch.tensor(10.0, dtype=torch.float64)),
    }


def _loss_ranks(rank: int, tmp_path: Path) -> None:
    a_all, b_all = _global_batch()
    n = len(a_all) // WORLD
    rows = slice(rank * n, (rank + 1) * n)  # gather order = rank order
    out = {}
    for name in ("ntxent", "clip"):
        a = a_all[rows].clone().requires_grad_()
        b = b_all[rows].clone().requires_grad_()
        loss = _losses(a, b)[name]
        loss.backward()
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        # The global loss is the mean of the ranks' losses; each rank's leaf gets the
        # gradient of their sum through the gather's backward.
        out[name] = (mean / WORLD, a.grad / WORLD, b.grad / WORLD)
    torch.save(out, tmp_path / f"losses-rank{rank}.pt")


def test_gathered_ntxent_and_clip_losses_equal_the_one_process_loss(ranks_dir):
    a_all, b_all = (t.clone().requires_grad_() for t in _global_batch())
    ranks = [torch.load(ranks_dir / f"losses-rank{r}.pt") for r in range(WORLD)]
    for name in ("ntxent", "clip"):
        a_all.grad = b_all.grad = None
        loss = _losses(a_all, b_all)[name]
        loss.backward()
        for r in ranks:
            torch.testing.assert_close(r[name][0], loss.detach(), rtol=0, atol=1e-5)
        grad_a = torch.cat([r[name][1] for r in ranks])
        grad_b = torch.cat([r[name][2] for r in ranks])
        torch.testing.assert_close(grad_a, a_all.grad, rtol=0, atol=1e-5, msg=name)
        torch.testing.assert_close(grad_b, b_all.grad, rtol=0, atol=1e-5, msg=name)


# ----------------------------------------------------------------- training equivalence
# ViT backbone with one block, no BatchNorm anywhere (DINO's head on a ViT has none;
# CLIP's towers are transformers), so 2 ranks x B/2 must equal 1 process x B.
NO_BN = [
    "--set",
    "model.backbone=vit_tiny",
    "--set",
    "model.depth=1",
    "--set",
    "model.vit_stem=patch",
]
EQUIVALENT = {
    "clip": [],
    "dino": ["--set", "method.out_dim=256", "--set", "method.n_local=2"],
}


def _config(method: str, *extra: str):  # noqa: ANN202
    from ssl_bench.cli import _parser, resolve_config

    args = [*TINY, *NO_BN, *EQUIVALENT.get(method, []), "--no-eval", *extra]
    args += ["--set", "train.knn_monitor=false", "--set", "train.log_every=1"]
    # fp32 even where "auto" is bf16: the tolerances below are float32 rounding.
    args += ["--set", "train.precision=fp32"]
    return resolve_config(_parser().parse_args(["run", method, *args]))


def _interrupted_then_resumed(method: str, out: Path) -> None:
    """Killed after its first epoch's checkpoint (in this process), then resumed."""
    from ssl_bench.runner import run
    from ssl_bench.trainer import Trainer

    original = Trainer._epoch

    def stop(self, epoch, bar):  # noqa: ANN001, ANN202
        if epoch == 1:
            raise KeyboardInterrupt
        original(self, epoch, bar)

    Trainer._epoch = stop
    try:
        run(_config(method, "--epochs", "2"), out)
    except KeyboardInterrupt:
        pass
    finally:
        Trainer._epoch = original
    run(_config(method, "--epochs", "2"), out, resume=True)


def _all_on_two_ranks(rank: int, tmp_path: Path) -> None:
    """Everything the tests below compare, in one group of processes (each spawn costs
    two interpreter starts on a 2-core CI machine)."""
    from ssl_bench.runner import run
    from ssl_bench.trainer import Trainer

    _loss_ranks(rank, tmp_path)
    fit = Trainer.fit

    def fit_and_keep_centre(self):  # noqa: ANN001, ANN202  (each rank's own DINO centre)
        progress = fit(self)
        if hasattr(self.method, "criterion"):
            torch.save(self.method.criterion.center, tmp_path / f"centre-rank{rank}.pt")
        return progress

    Trainer.fit = fit_and_keep_centre
    for method in EQUIVALENT:
        run(_config(method), tmp_path / f"ddp-{method}")
    Trainer.fit = fit
    _interrupted_then_resumed("clip", tmp_path / "resumed")
    run(_config("clip", "--epochs", "2"), tmp_path / "straight")


@pytest.fixture(scope="module")
def ranks_dir(tmp_path_factory) -> Path:  # noqa: ANN001
    folder = tmp_path_factory.mktemp("ranks")
    spawn(_all_on_two_ranks, folder)
    return folder


def _params(path: Path) -> dict[str, torch.Tensor]:
    model = checkpoint.load(path)["model"]
    return {k: v for k, v in model.items() if isinstance(v, torch.Tensor) and v.is_floating_point()}


@pytest.mark.parametrize("method", list(EQUIVALENT))
def test_two_ranks_train_like_one_process_on_the_same_global_batch(ranks_dir, tmp_path, method):
    from ssl_bench.runner import run

    run(_config(method), tmp_path / "single")
    ddp, single = (
        _params(ranks_dir / f"ddp-{method}/checkpoints/last.pt"),
        _params(tmp_path / "single/checkpoints/last.pt"),
    )
    assert ddp.keys() == single.keys()
    init = _params_at_init(method)
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=0, atol=tolerance(k), msg=k)
    moved = [k for k in single if not torch.equal(single[k], init[k])]
    assert len(moved) > len(single) // 2  # the runs trained (not two copies of the init)
    if method == "dino":  # the EMA teacher and the centre follow on both
        assert any(k.startswith("teacher") for k in moved) and "criterion.center" in moved


def tolerance(key: str) -> float:
    """Measured after 4 AdamW steps at lr ~3e-4 (parameters move by ~7e-4), float32 (DINO
    trains at 6e-4 since 2026-12-06; these tolerances still held on an AVX2 AMD EPYC):
    <= 1.1e-6 apart on an AVX2 CPU, <= 2.5e-6 on an AVX-512 one (oneDNN picks other
    kernels, so other rounding, for half batches), and up to 8.9e-6 on an AMX Xeon once
    the `shapes` views lost their blur (2026-12-06: other images, other rounding, which
    Adam's normalised step turns into whole steps where a gradient is near zero). 2e-5 is
    under 3% of the movement, far below what a rank training on its own half of the loss
    would give (differences of the order of the movement itself). The teacher moves by
    ~1e-6 (EMA 0.996) and inherits a share of the student's rounding: <= 9e-8 measured,
    2e-7 allowed; DINO's centre <= 1.1e-8.
    Attention key biases are the exception (4.4e-5, 5.8e-5 on the AMX Xeon): their true
    gradient is zero (a softmax ignores a constant per query), so what Adam sees is
    rounding noise."""
    if key.endswith(("qkv.bias", "in_proj_bias")):
        return 1e-4
    if key.endswith("center"):
        return 2e-8
    return 2e-7 if key.startswith("teacher") else 2e-5


def _params_at_init(method: str) -> dict[str, torch.Tensor]:
    from ssl_bench.data.datasets import load_dataset
    from ssl_bench.method import DataInfo, build_method
    from ssl_bench.runtime import seed_everything

    cfg = _config(method)
    data = load_dataset(cfg.data)
    seed_everything(cfg.train.seed)
    model = build_method(cfg, DataInfo.of(data, cfg.data.use_unlabeled)).state_dict()
    return {k: v for k, v in model.items() if isinstance(v, torch.Tensor) and v.is_floating_point()}


def test_the_dino_centre_is_identical_on_both_ranks(ranks_dir):
    centres = [torch.load(ranks_dir / f"centre-rank{r}.pt") for r in range(WORLD)]
    assert centres[0].abs().sum() > 0  # it was updated from its zero init
    torch.testing.assert_close(centres[0], centres[1], rtol=0, atol=0)


def test_a_two_rank_run_resumes_to_the_same_result(ranks_dir):
    resumed = _params(ranks_dir / "resumed/checkpoints/last.pt")
    straight = _params(ranks_dir / "straight/checkpoints/last.pt")
    assert resumed.keys() == straight.keys()
    for k in resumed:
        torch.testing.assert_close(resumed[k], straight[k], rtol=0, atol=0, msg=k)


# ----------------------------------------------------------------- the launcher and bad input
def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*cmd, "-m", "ssl_bench", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.e2e
def test_torchrun_rejects_bad_input_on_every_rank_before_any_waits(tmp_path):
    bad = _torchrun("run", "simclr", *TINY, "--batch-size", "15", cwd=tmp_path)
    assert bad.returncode != 0
    # Each rank says it in one line; torchrun then reports the failed child with its own
    # traceback (frames in torch.distributed only, none in ssl_bench).
    assert "ssl-bench: error: train.batch_size 15 is the global batch" in bad.stderr
    assert "divisible by the world size (2 processes)" in bad.stderr
    assert "/ssl_bench/" not in bad.stderr


@pytest.mark.e2e
def test_a_sweep_launches_each_run_on_nproc_processes(run_cli, tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "base: {method: simclr, data: {train_size: 64, val_size: 32, test_size: 32},"
        " model: {width: 8}, train: {batch_size: 16, epochs: 1, knn_monitor: false},"
        " eval: {evaluators: knn}}\narms: {a: {}}\nseeds: [0]\nnproc: 2\n"
    )
    code, out, err = run_cli("sweep", sweep, "--out", tmp_path / "runs")
    assert code == 0, out + err
    summary = json.loads((tmp_path / "runs/a-seed0/summary.json").read_text())
    assert summary["world_size"] == 2 and summary["config"]["train"]["seed"] == 0
    assert summary["batch_size_per_rank"] == 8  # the global batch 16 over 2 ranks
    log = (tmp_path / "runs/.a-seed0.log").read_text()  # what torchrun's processes printed
    assert log.startswith("$ ") and "--nproc_per_node=2" in log.splitlines()[0]
    assert log.count("kNN top-1") == 1  # one summary: only rank 0 prints
    code, _, err = run_cli("sweep", sweep, "--out", tmp_path / "runs2", "--jobs", "2")
    assert code != 0 and "nproc" in err
