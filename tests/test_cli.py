"""Bad input: one line naming the problem (and the valid choices), non-zero exit, no
traceback; nothing is lost. Plus the run folder contract end to end."""

import json
import subprocess
import sys

import pytest
import torch
import yaml
from PIL import Image


def assert_one_line_error(code, err, *needles):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ssl-bench: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, needles",
    [
        (["run", "byl"], ["unknown method 'byl'", "did you mean 'byol'", "simclr"]),
        (["run", "simclr", "--dataset", "cifar"], ["unknown dataset 'cifar'", "cifar10", "shapes"]),
        (["run", "simclr", "--backbone", "resnet"], ["unknown backbone 'resnet'", "resnet18"]),
        (["run", "simclr", "--set", "train.epoch=3"], ["unknown key 'train.epoch'", "'epochs'"]),
        (["run", "simclr", "--batch-size", "1"], ["train.batch_size must be >= 2"]),
        (["run", "simclr", "--epochs", "0"], ["train.epochs must be > 0"]),
        (
            ["run", "simclr", "--dataset", "cifar10", "--data-dir", "/nonexistent/x"],
            ["data directory not found: /nonexistent/x"],
        ),
        (["run", "simclr", "--config", "/nonexistent.yaml"], ["config file not found"]),
        (["run", "simclr", "--device", "tpu"], ["unknown device 'tpu'"]),
        pytest.param(
            ["run", "simclr", "--device", "cuda"],
            ["device 'cuda' requested but CUDA is not available"],
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here"),
        ),
    ],
)
def test_bad_input_before_any_work(run_cli, tmp_path, args, needles):
    code, out, err = run_cli(*args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "run").exists()  # nothing was started


def test_batch_larger_than_training_set(run_cli, tiny, tmp_path):
    code, _, err = run_cli("run", "simclr", *tiny, "--batch-size", "128", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "train.batch_size 128 is larger than the training set (64")


def test_corrupt_image_in_folder(run_cli, tiny, tmp_path):
    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (10, 10), (i * 50, 20, 0)).save(tmp_path / "imgs" / c / f"{i}.png")
    (tmp_path / "imgs" / "a" / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, _, err = run_cli(
        "run",
        "simclr",
        "--dataset",
        "imagefolder",
        "--data-dir",
        tmp_path / "imgs",
        "--out",
        tmp_path / "r",
    )
    assert_one_line_error(code, err, "cannot read image", "bad.jpg")


def test_unwritable_output_directory(run_cli, tiny, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    code, _, err = run_cli("run", "simclr", *tiny, "--out", blocker / "run")
    assert_one_line_error(code, err, "cannot write to output directory")


def test_debug_shows_the_traceback(run_cli):
    from ssl_bench.errors import UserError

    with pytest.raises(UserError):
        run_cli("run", "byl", "--debug")


@pytest.mark.e2e
def test_run_folder_contract_and_resume_rules(run_cli, tiny, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli("run", "simclr", *tiny, "--epochs", "2", "--out", out)
    assert code == 0, err
    assert "kNN top-1" in stdout
    for name in ("config.yaml", "metrics.jsonl", "checkpoints/last.pt", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "method",
        "dataset",
        "backbone",
        "batch_size",
        "epochs",
        "seed",
        "images_seen",
        "train_seconds",
        "train_images_per_s",
        "device",
        "git_sha",
        "versions",
        "eval",
    ):
        assert key in summary, key
    assert summary["eval"]["knn"]["k"] == 20 and summary["eval"]["knn"]["T"] == 0.07
    assert summary["epochs"] == 2 and summary["batch_size"] == 16
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["train"]["epochs"] == 2 and config["method"]["name"] == "simclr"
    assert config == summary["config"]

    # An existing run is never overwritten.
    before = (out / "checkpoints/last.pt").read_bytes()
    code, _, err = run_cli("run", "simclr", *tiny, "--epochs", "2", "--out", out)
    assert_one_line_error(code, err, "already holds a run", "--resume")
    # Resuming with other settings is refused and names the difference.
    code, _, err = run_cli(
        "run", "simclr", *tiny, "--epochs", "2", "--lr", "0.01", "--out", out, "--resume"
    )
    assert_one_line_error(code, err, "--resume", "optim.lr")
    assert (out / "checkpoints/last.pt").read_bytes() == before
    # Resuming a finished run with the same settings only re-evaluates.
    code, _, err = run_cli("run", "simclr", *tiny, "--epochs", "2", "--out", out, "--resume")
    assert code == 0, err


def test_resume_without_checkpoint(run_cli, tiny, tmp_path):
    code, _, err = run_cli("run", "simclr", *tiny, "--out", tmp_path / "empty", "--resume")
    assert_one_line_error(code, err, "--resume: no checkpoint")


@pytest.mark.e2e
def test_console_entry_point_runs_a_baseline(tiny, tmp_path):
    """A real process (the in-process tests cannot see what importing prints): it runs and
    its stderr stays empty, so an error in a real process is the one line tested above."""
    cmd = [sys.executable, "-m", "ssl_bench", "run", "pixels", *tiny, "--no-eval"]
    done = subprocess.run([*cmd, "--out", str(tmp_path / "px")], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads((tmp_path / "px/summary.json").read_text())["method"] == "pixels"
