"""`ssl-bench export` and `ssl-bench eval --weights`: backbone weights out and in."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
import torchvision
from torch import nn


def _summary(path):  # noqa: ANN001, ANN202
    return json.loads((path / "summary.json").read_text())


def test_export_then_eval_weights_gives_the_runs_own_numbers(run_cli, tiny, tmp_path):
    ev = ["--set", "eval.evaluators=knn,linear"]
    assert run_cli("run", "byol", *tiny, *ev, "--out", tmp_path / "r")[0] == 0
    code, out, _ = run_cli("export", tmp_path / "r", "-o", tmp_path / "b.pt")
    assert code == 0 and "byol" in out
    saved = torch.load(tmp_path / "b.pt", weights_only=True)
    assert saved["format"] == "ssl-bench-backbone"
    meta = saved["meta"]
    assert meta["backbone"] == "small_cnn" and meta["method"] == "byol" and not meta["teacher"]
    assert meta["image_size"] == 32 and len(meta["mean"]) == len(meta["std"]) == 3
    assert all(
        not k.startswith(("projection", "prediction", "target")) for k in saved["state_dict"]
    )

    code, out, err = run_cli(
        "eval",
        "--weights",
        tmp_path / "b.pt",
        *ev[:2],
        "--out",
        tmp_path / "w",
        "--set",
        "data.train_size=64",
        "--set",
        "data.val_size=32",
        "--set",
        "data.test_size=32",
    )
    assert code == 0, err
    run, ext = _summary(tmp_path / "r")["eval"], _summary(tmp_path / "w")
    assert ext["method"] == "weights:b" and ext["weights"]["meta"]["method"] == "byol"
    assert ext["eval"]["knn"]["top1"] == run["knn"]["top1"]
    assert ext["eval"]["linear"]["top1"] == run["linear"]["top1"]
    # The written folder is a run folder like any other: it re-evaluates and tabulates.
    assert run_cli("eval", tmp_path / "w", "--only", "knn")[0] == 0
    code, out, _ = run_cli("results", tmp_path)
    assert code == 0 and "weights:b" in out


def test_teacher_export_is_the_ema_backbone(run_cli, tiny, tmp_path):
    from ssl_bench.checkpoint import load

    assert run_cli("run", "byol", *tiny, "--no-eval", "--out", tmp_path / "r")[0] == 0
    assert run_cli("export", tmp_path / "r", "-o", tmp_path / "t.pt", "--teacher")[0] == 0
    teacher = torch.load(tmp_path / "t.pt", weights_only=True)["state_dict"]
    model = load(tmp_path / "r/checkpoints/last.pt")["model"]
    for key, value in teacher.items():
        assert torch.equal(value, model[f"target_backbone.{key}"])
    assert not torch.equal(teacher["features.0.weight"], model["backbone.features.0.weight"])

    assert run_cli("run", "simclr", *tiny, "--no-eval", "--out", tmp_path / "s")[0] == 0
    code, _, err = run_cli("export", tmp_path / "s", "-o", tmp_path / "x.pt", "--teacher")
    assert code == 2 and "no EMA teacher" in err and "\n" not in err.strip()


@pytest.mark.e2e
def test_torchvision_export_loads_into_torchvision_resnet18(run_cli, tiny, tmp_path):
    i = tiny.index("model.width=8")  # resnet18 has no width
    del tiny[i - 1 : i + 1]
    tiny[tiny.index("data.train_size=64")] = "data.train_size=32"
    # 16 px: the layout does not depend on the image size, and resnet18 steps cost 4x less.
    args = ["--backbone", "resnet18", "--no-eval", "--set", "train.knn_monitor=false"]
    args += ["--set", "data.image_size=16", "--out", tmp_path / "r"]
    assert run_cli("run", "simclr", *tiny, *args)[0] == 0
    code, _, err = run_cli(
        "export", tmp_path / "r", "-o", tmp_path / "tv.pt", "--format", "torchvision"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "tv.pt.json").read_text())["cifar_stem"] is True

    # docs/weights.md's four lines.
    net = torchvision.models.resnet18()
    net.conv1, net.maxpool = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.Identity()
    net.fc = nn.Identity()
    net.load_state_dict(torch.load(tmp_path / "tv.pt", weights_only=True), strict=True)

    from ssl_bench.backbones import build_backbone
    from ssl_bench.checkpoint import load
    from ssl_bench.config import ModelConfig

    ours = build_backbone(ModelConfig(backbone="resnet18"), 32)
    model = load(tmp_path / "r/checkpoints/last.pt")["model"]
    ours.load_state_dict({k[9:]: v for k, v in model.items() if k.startswith("backbone.")})
    x = torch.randn(2, 3, 32, 32)
    net.eval(), ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), ours(x))

    # ...and evaluates from torchvision's layout, with or without a classifier.
    state = torch.load(tmp_path / "tv.pt", weights_only=True)
    state |= {"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}
    torch.save(state, tmp_path / "with_fc.pt")
    code, _, err = run_cli(
        "eval",
        "--weights",
        tmp_path / "with_fc.pt",
        "--backbone",
        "resnet18",
        "--only",
        "knn",
        "--out",
        tmp_path / "w",
        "--set",
        "data.train_size=32",
        "--set",
        "data.val_size=32",
        "--set",
        "data.test_size=32",
        "--set",
        "data.image_size=16",
    )
    assert code == 0, err
    assert _summary(tmp_path / "w")["weights"]["layout"] == "torchvision"


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (open, ("PWNED", "w"))  # would create a file if unpickled


@pytest.mark.parametrize(
    "make, needles",
    [
        (
            lambda p: torch.save({"features.0.weight": torch.zeros(1)}, p),
            ["wrong shape", "features.0.weight"],
        ),
        (lambda p: torch.save({"junk": torch.zeros(1)}, p), ["missing", "unexpected"]),
        (lambda p: p.write_bytes(b"not a torch file"), ["corrupt weights file"]),
        (lambda p: torch.save([1, 2], p), ["no state dict"]),
        (lambda p: torch.save({"x": _Evil()}, p), ["refusing to load"]),
        (lambda p: p.write_bytes(pickle.dumps(_Evil())), ["weights file"]),
    ],
)
def test_bad_weights_files_are_one_line_errors(run_cli, tmp_path, monkeypatch, make, needles):
    monkeypatch.chdir(tmp_path)
    make(tmp_path / "w.pt")
    code, _, err = run_cli(
        "eval", "--weights", tmp_path / "w.pt", "--backbone", "small_cnn", "--out", tmp_path / "o"
    )
    assert code == 2 and all(n in err for n in needles), err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "o").exists()


def test_export_and_eval_weights_reject_settings_that_cannot_apply(run_cli, tiny, tmp_path):
    assert run_cli("run", "random", *tiny, "--no-eval", "--out", tmp_path / "r")[0] == 0
    code, _, err = run_cli(
        "export", tmp_path / "r", "-o", tmp_path / "x.pt", "--format", "torchvision"
    )
    assert code == 2 and "small_cnn" in err and "resnet18" in err
    code, _, err = run_cli("export", tmp_path / "r", "-o", tmp_path / "x.pt", "--format", "onnx")
    assert code == 2 and "ssl-bench, torchvision" in err
    code, _, err = run_cli("eval", tmp_path / "r", "--backbone", "resnet18")
    assert code == 2 and "--backbone" in err and "--weights" in err
    code, _, err = run_cli("eval")
    assert code == 2 and "--weights" in err
    torch.save({"a": torch.zeros(1)}, tmp_path / "bare.pt")
    code, _, err = run_cli("eval", "--weights", tmp_path / "bare.pt")
    assert code == 2 and "--backbone" in err
    code, _, err = run_cli(
        "eval", "--weights", tmp_path / "r/checkpoints/last.pt", "--backbone", "small_cnn"
    )
    assert code == 2 and "ssl-bench export" in err
