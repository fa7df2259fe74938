import json
import math

import pytest
import torch
from helpers import HostSyncs

from ssl_bench import checkpoint
from ssl_bench.cli import _parser as parser
from ssl_bench.cli import resolve_config
from ssl_bench.data import ops
from ssl_bench.data.datasets import load_dataset
from ssl_bench.data.views import Draws, ViewGenerator
from ssl_bench.method import DataInfo, build_method
from ssl_bench.registry import METHODS
from ssl_bench.runfolder import RunFolder
from ssl_bench.runner import run
from ssl_bench.runtime import dist_info
from ssl_bench.schedules import cosine, warmup_cosine
from ssl_bench.trainer import Diverged, Trainer


def config(tiny, method="simclr", *extra):
    return resolve_config(parser().parse_args(["run", method, *tiny, *extra]))


def test_warmup_cosine_is_a_pure_function_of_the_step():
    values = [warmup_cosine(s, 100, 10, 1.0, 0.1) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and values[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values == [warmup_cosine(s, 100, 10, 1.0, 0.1) for s in range(100)]
    assert cosine(0, 50, 0.99, 1.0) == pytest.approx(0.99) and cosine(50, 50, 0.99, 1.0) == 1.0


def _weights(path):
    return checkpoint.load(path)["model"]


TRAINABLE = [n for n in METHODS.names() if METHODS.get(n).factory.trainable]


@pytest.mark.parametrize("method", TRAINABLE)
def test_resume_continues_to_the_same_result(tiny, tmp_path, monkeypatch, method):
    """Every method: stopped after an epoch and resumed, it ends bit-identical."""
    extra = ["--set", "model.depth=1"] if method in ("clip", "detailclip") else []
    extra += ["--set", "data.train_size=32", "--set", "train.knn_monitor=false"]
    cfg = config(tiny, method, "--epochs", "2", "--no-eval", *extra)
    run(cfg, tmp_path / "straight")

    original = Trainer._epoch

    def stop_after_first(self, epoch, bar):
        if epoch == 1:
            raise KeyboardInterrupt
        original(self, epoch, bar)

    monkeypatch.setattr(Trainer, "_epoch", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "resumed")
    assert checkpoint.load(tmp_path / "resumed/checkpoints/last.pt")["progress"]["epoch"] == 1
    monkeypatch.setattr(Trainer, "_epoch", original)
    run(cfg, tmp_path / "resumed", resume=True)

    a, b = (
        _weights(tmp_path / "straight/checkpoints/last.pt"),
        _weights(tmp_path / "resumed/checkpoints/last.pt"),
    )
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
        else:  # e.g. a text method's tokenizer vocabulary
            assert a[k] == b[k], k
    steps = [
        json.loads(l)["step"]
        for l in (tmp_path / "resumed/metrics.jsonl").read_text().splitlines()
        if "loss" in json.loads(l)
    ]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    from ssl_bench.methods.simclr import SimCLR

    original = SimCLR.training_step

    def poisoned(self, views, labels, step, total_steps):
        out = original(self, views, labels, step, total_steps)
        if step >= 5:  # epoch 2 of 4-step epochs
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(SimCLR, "training_step", poisoned)
    cfg = config(tiny, "simclr", "--epochs", "3")
    with pytest.raises(Diverged, match="non-finite.*epoch 2.*checkpoint \\(epoch 1\\)"):
        run(cfg, tmp_path / "r")
    state = checkpoint.load(tmp_path / "r/checkpoints/last.pt")
    assert state["progress"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_atomic_checkpoint_survives_a_failed_write(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"model": {"w": torch.ones(2)}})

    def broken(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        checkpoint.atomic_write_bytes(path, broken)
    assert torch.equal(checkpoint.load(path)["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_corrupt_checkpoint_is_a_user_error(tmp_path):
    from ssl_bench.errors import UserError

    bad = tmp_path / "last.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt checkpoint"):
        checkpoint.load(bad)


def test_accumulation_and_images_seen(tiny, tmp_path):
    cfg = config(
        tiny,
        "byol",
        "--set",
        "train.accum_steps=2",
        "--epochs",
        "2",
        "--set",
        "train.monitor_every=3",
    )
    summary = run(cfg, tmp_path / "acc")
    assert summary["images_seen"] == 2 * (64 // 16) * 16
    records = [json.loads(l) for l in (tmp_path / "acc/metrics.jsonl").read_text().splitlines()]
    assert {r["epoch"] for r in records} == {0, 1, 2}
    assert all(math.isfinite(r["loss"]) for r in records if "loss" in r)
    assert all(0 <= r["knn_val_top1"] <= 1 for r in records if "knn_val_top1" in r)
    # Collapse is tracked beside the kNN monitor (BYOL has a projection head): once before
    # training, at every 3rd step (3, 6) and at each epoch's end (4 steps per epoch).
    epochs = [r for r in records if "knn_val_top1" in r]
    assert [r["step"] for r in epochs] == [0, 3, 4, 6, 8]
    for r in epochs:
        dim = cfg.method.proj_output_dim
        assert 0 < r["head_std"] <= 1 and r["head_std_ref"] == pytest.approx(dim**-0.5)
        assert 1 <= r["head_rankme"] <= dim


def test_micro_batches_share_one_view_call_and_train_to_the_same_weights(
    tiny, tmp_path, monkeypatch
):
    """Under gradient accumulation the views of a step's micro-batches come from one call
    (the per-call cost is paid once a step) and are bit for bit the views each
    micro-batch would make alone: the weights end identical to one call per micro-batch."""
    from ssl_bench import trainer

    calls = []
    original = ViewGenerator.__call__

    def counted(self, images, specs, generator):
        calls.append(len(images))
        return original(self, images, specs, generator)

    monkeypatch.setattr(ViewGenerator, "__call__", counted)
    cfg = config(tiny, "byol", "--set", "train.accum_steps=4", "--no-eval")
    cfg.train.knn_monitor = False
    run(cfg, tmp_path / "grouped")
    # 4 steps of 16 images, one call each (micro-batches of 4); the runner's FLOP count
    # makes views once beforehand
    assert calls[-4:] == [16] * 4 and 4 not in calls
    calls.clear()
    monkeypatch.setattr(trainer, "VIEWS_PER_CALL", 1)  # one call per micro-batch
    run(cfg, tmp_path / "single")
    assert calls[-16:] == [4] * 16
    a, b = (_weights(tmp_path / f"{r}/checkpoints/last.pt") for r in ("grouped", "single"))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_baselines_without_training(tiny, tmp_path):
    summary = run(config(tiny, "random"), tmp_path / "random")
    assert summary["epochs"] == 0 and summary["images_seen"] == 0
    assert (tmp_path / "random/checkpoints/last.pt").is_file()
    assert 0 <= summary["eval"]["knn"]["top1"] <= 1


class _RunsCode:
    """Unpickling this calls ``Path.touch`` on a marker file: what a hostile file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    from ssl_bench.errors import UserError

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "payload": _RunsCode(str(marker))}, evil)
    with pytest.raises(UserError, match="refusing to load .*could run code"):
        checkpoint.load(evil)
    assert not marker.exists()


def test_our_own_checkpoints_load_as_weights_only(tiny, tmp_path):
    run(config(tiny, "byol", "--epochs", "1"), tmp_path / "r")
    state = torch.load(tmp_path / "r/checkpoints/last.pt", weights_only=True)
    assert {"model", "optimizer", "rng", "config"} <= state.keys()


def test_tensorboard_mirrors_the_metrics(run_cli, tiny, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["--set", "train.tensorboard=true", "--set", "train.log_every=1", "--no-eval"]
    assert run_cli("run", "simclr", *tiny, *args, "--out", tmp_path / "r")[0] == 0
    events = EventAccumulator(str(tmp_path / "r/tensorboard")).Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/lr", "monitor/knn_val_top1"} <= set(tags)
    logged = [json.loads(x) for x in (tmp_path / "r/metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logged if "loss" in r]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(losses)


def test_tensorboard_without_the_package_is_a_one_line_error(run_cli, tiny, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real(name, *a),
    )
    code, _, err = run_cli(
        "run", "simclr", *tiny, "--set", "train.tensorboard=true", "--out", tmp_path / "r"
    )
    assert code == 2 and "[tb]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_flop_count_leaves_the_run_unchanged_and_summary_has_utilisation(tiny, tmp_path):
    from ssl_bench.data.datasets import channel_stats, load_dataset
    from ssl_bench.data.views import ViewGenerator, resolve_views
    from ssl_bench.flops import flops_per_image
    from ssl_bench.method import DataInfo, build_method

    cfg = config(tiny, "dino")  # BatchNorm buffers, a loss centre, an EMA teacher
    data = load_dataset(cfg.data)
    method = build_method(cfg, DataInfo.of(data))
    views = ViewGenerator(*channel_stats(data.train.images))
    specs = resolve_views(method.views(), cfg.aug, data.image_size)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    rng = torch.get_rng_state()
    flops = flops_per_image(
        method, views, data.train.images, data.train.labels, specs, torch.device("cpu"), "fp32"
    )
    assert flops is not None and flops > 0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())
    assert all(p.grad is None for p in method.parameters())

    summary = run(config(tiny, "simclr", "--no-eval"), tmp_path / "r")
    assert summary["train_gflops_per_image"] > 0 and 0 < summary["utilisation"] < 2
    assert summary["train_steps_per_s"] > 0


def test_auto_precision_is_bf16_only_where_the_hardware_multiplies_bf16(monkeypatch):
    from ssl_bench import runtime

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert runtime.precision_name(cpu, "fp32") == "fp32"
    assert runtime.precision_name(cpu, "bf16") == "bf16"
    assert runtime.precision_name(cuda, "auto") == "bf16"
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(runtime, "cpu_has_bf16", lambda native=native: native)
        assert runtime.precision_name(cpu, "auto") == expected
        assert isinstance(runtime.autocast(cpu, "auto"), torch.autocast) is native


# Boolean-mask indexing reads the mask's count on the host: a sync per use on CUDA.
# Known, in code we take from lightly or built on its losses: lightly's NTXentLoss drops
# the self-similarities with a boolean mask (SimCLR); DetailCLIP selects its removed
# patches with one (its reconstruction loss and lightly's iBOT patch loss).
MASK_INDEXING = {"index", "index_put", "index_put_", "_index_put_impl_"}
KNOWN_SYNCS = {"simclr": MASK_INDEXING, "detailclip": MASK_INDEXING}


@pytest.mark.parametrize("method", TRAINABLE)
def test_a_training_step_makes_the_host_wait_for_no_device(tiny, tmp_path, monkeypatch, method):
    """Views, forward, backward and the EMA update of one step, with the views' accelerator
    path forced, run no op that would make the host wait for a GPU (``.item()``,
    ``nonzero``, boolean-mask indexing), so the host can queue the next step's kernels
    while the device works. Seen on the CPU with :class:`helpers.HostSyncs`; the
    optimiser and logging are left out (their scalars live on the host)."""
    monkeypatch.setattr(ops, "on_subsets", lambda device: False)
    extra = ["--set", "model.depth=1"] if method in ("clip", "detailclip") else []
    cfg = config(tiny, method, "--no-eval", *extra)
    data = load_dataset(cfg.data)
    m = build_method(cfg, DataInfo.of(data))
    views = ViewGenerator([0.5] * 3, [0.25] * 3)
    trainer = Trainer(m, data, cfg, RunFolder(tmp_path), torch.device("cpu"), views, dist_info())
    index = torch.arange(cfg.train.batch_size)

    def step(k: int) -> None:
        draws = Draws(trainer.generator, trainer.rows, cfg.train.batch_size)
        made = trainer.views(trainer.images[index], trainer.specs, draws)
        trainer.step_module(made, trainer.targets[index], k, 10)["loss"].backward()
        m.after_optimizer_step(k + 1, 10)

    step(0)  # first-call work: constants cached on the device
    with HostSyncs() as watch:
        step(1)
    assert "convolution_backward" in watch.seen or "mm" in watch.seen  # it saw the step
    assert watch.syncs <= KNOWN_SYNCS.get(method, set()), watch.syncs
