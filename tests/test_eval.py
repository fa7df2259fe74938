"""Evaluators against references on tiny data, and `ssl-bench eval` end to end."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
import yaml

from ssl_bench.eval.collapse import alignment, embedding_std, rankme, uniformity
from ssl_bench.eval.linear import linear_probe, low_shot_indices, select_weight_decay
from ssl_bench.eval.segmentation import confusion, miou, seg_probe, upsampling_matrix


def _blobs(n, d=16, classes=4, seed=0, spread=0.3):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g) * 3
    y = torch.arange(n) % classes
    return centres[y] + spread * torch.randn(n, d, generator=g), y


def test_linear_probe_separable_and_shuffled():
    x, y = _blobs(360, seed=4)  # one draw, so the splits share their class centres
    tr, ytr, va, yva, te, yte = x[:200], y[:200], x[200:280], y[200:280], x[280:], y[280:]
    good = linear_probe(tr, ytr, va, yva, te, yte, 4)
    assert good["top1"] > 0.98
    g = torch.Generator().manual_seed(0)
    bad = linear_probe(
        tr,
        ytr[torch.randperm(200, generator=g)],
        va,
        yva[torch.randperm(80, generator=g)],
        te,
        yte,
        4,
    )
    assert bad["top1"] < 0.45  # chance is 0.25


def test_selection_never_reads_the_test_split():
    x, y = _blobs(300, seed=5, spread=2.0)
    tr, ytr, va, yva, te, yte = x[:150], y[:150], x[150:225], y[150:225], x[225:], y[225:]
    chosen, _ = select_weight_decay(tr, ytr, va, yva, 4)
    a = linear_probe(tr, ytr, va, yva, te, yte, 4)
    garbage = linear_probe(tr, ytr, va, yva, torch.full_like(te, float("nan")), yte.flip(0), 4)
    assert a["weight_decay"] == garbage["weight_decay"] == chosen
    assert a["val_top1"] == garbage["val_top1"]


def test_low_shot_subsets_are_fixed_and_balanced():
    y = torch.arange(1000) % 10
    a, b = low_shot_indices(y, 0.01, seed=3), low_shot_indices(y, 0.01, seed=3)
    assert torch.equal(a, b) and len(a) == 10 and set(y[a].tolist()) == set(range(10))
    assert not torch.equal(a, low_shot_indices(y, 0.01, seed=4))
    assert len(low_shot_indices(y, 0.1, seed=0)) == 100


def test_miou_hand_computed():
    target = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0], [2, 0, 2, 1]])
    conf = confusion(pred, target, 3)
    # class 0: tp 3, fp 2 (pred 0 where 1 and 2), fn 1 -> 3/6; class 1: tp 3, fp 1, fn 1 -> 3/5;
    # class 2: tp 1, fp 0, fn 1 -> 1/2. Ignored pixels (255) do not count.
    value, iou = miou(conf)
    torch.testing.assert_close(iou, torch.tensor([3 / 6, 3 / 5, 1 / 2], dtype=torch.float64))
    assert value == pytest.approx((0.5 + 0.6 + 0.5) / 3)


def test_the_seg_probes_upsampling_matrix_is_bilinear_interpolation():
    # The probe upsamples its logits by one matmul; it must be F.interpolate's function.
    maps = torch.randn(6, 11, 4, 3)
    up = upsampling_matrix(4, 3, (32, 24))
    expected = F.interpolate(maps, size=(32, 24), mode="bilinear", align_corners=False)
    torch.testing.assert_close((maps.flatten(2) @ up).view(6, 11, 32, 24), expected)


def test_seg_probe_segments_features_that_carry_the_masks():
    # Spatial features that say, at each of 4x4 cells, which class covers it: the probe
    # must paint the upsampled 16x16 masks far better than the background-only guess.
    g = torch.Generator().manual_seed(0)
    cells = torch.randint(0, 3, (96, 4, 4), generator=g)
    masks = cells.repeat_interleave(4, 1).repeat_interleave(4, 2).to(torch.uint8)
    feats = F.one_hot(cells, 3).permute(0, 3, 1, 2).float() + 0.1 * torch.randn(96, 3, 4, 4)
    res = seg_probe(feats[:64], masks[:64], feats[64:], masks[64:], 3, epochs=30, lr=0.05)
    assert res["miou"] > 0.8 and res["pixel_acc"] > 0.9


def test_rankme_of_rank_r_matrix():
    g = torch.Generator().manual_seed(0)
    for r in (1, 5, 20):
        z = (
            torch.randn(500, r, generator=g)
            @ torch.linalg.qr(torch.randn(64, 64, generator=g))[0][:r]
        )
        assert abs(rankme(z) - r) < 0.25 * r + 0.5


def test_collapse_std_constant_and_gaussian():
    assert embedding_std(torch.ones(100, 32) * 3) == pytest.approx(0.0, abs=1e-6)
    d = 64
    z = torch.randn(5000, d, generator=torch.Generator().manual_seed(0))
    assert embedding_std(z) == pytest.approx(1 / math.sqrt(d), rel=0.05)
    assert alignment(z, z) == pytest.approx(0.0, abs=1e-6)
    assert uniformity(torch.ones(50, 8)) == pytest.approx(0.0, abs=1e-5)  # all identical: log 1
    assert uniformity(z) < -2.0  # spread out


@pytest.mark.e2e
def test_eval_command_fills_every_entry_and_caches(run_cli, tiny, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli("run", "simclr", *tiny, "--no-eval", "--out", out)
    assert code == 0, err
    assert "eval" not in json.loads((out / "summary.json").read_text())
    code, stdout, err = run_cli("eval", out)
    assert code == 0, err
    ev = json.loads((out / "summary.json").read_text())["eval"]
    for key in ("knn", "knn_lightly", "linear", "lowshot", "seg", "collapse", "collapse_head"):
        assert key in ev, key
    assert ev["knn"]["k"] == 20 and ev["knn_lightly"]["k"] == 64  # k capped at the bank size
    assert set(ev["lowshot"]) == {"1%", "10%"}
    assert 0 <= ev["seg"]["miou"] <= 1 and ev["collapse"]["dim"] == 64
    assert ev["collapse_head"]["std_ref"] == pytest.approx(1 / math.sqrt(128))
    cached = sorted(p.name for p in (out / "features").iterdir())
    assert [n.split("-")[-1] for n in cached] == ["head.pt", "pooled.pt", "spatial.pt"]
    stamps = [p.stat().st_mtime_ns for p in sorted((out / "features").iterdir())]
    code, _, err = run_cli("eval", out / "checkpoints" / "last.pt", "--only", "knn")
    assert code == 0, err
    assert stamps == [p.stat().st_mtime_ns for p in sorted((out / "features").iterdir())]


def test_eval_bad_input(run_cli, tiny, tmp_path):
    code, _, err = run_cli("eval", tmp_path)
    assert code == 2 and "no checkpoint in" in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "run"
    assert run_cli("run", "random", *tiny, "--out", out, "--no-eval")[0] == 0
    code, _, err = run_cli("eval", out, "--only", "knn,probe")
    assert code == 2 and "unknown evaluator 'probe'" in err and "lowshot" in err
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["model"]["backbone"] = "resnet18"
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli("eval", out)
    assert code == 2 and "'small_cnn' backbone" in err and "resnet18" in err


def test_seg_on_dataset_without_masks_names_those_with_masks(run_cli, tiny, tmp_path):
    out = tmp_path / "digits"
    args = ["run", "pixels", "--dataset", "digits", "--set", "data.image_size=16", "--no-eval"]
    assert run_cli(*args, "--out", out)[0] == 0
    code, _, err = run_cli("eval", out, "--only", "seg")
    assert code == 2 and "needs masks" in err and "shapes" in err


def test_augmented_probe_mode(run_cli, tiny, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli(
        "run",
        "simclr",
        *tiny,
        "--set",
        "eval.linear_augmented=true",
        "--set",
        "eval.augmented_epochs=2",
        "--set",
        "eval.evaluators=linear",
        "--out",
        out,
    )
    assert code == 0, err
    ev = json.loads((out / "summary.json").read_text())["eval"]
    assert set(ev) == {"linear", "linear_augmented"}
    assert ev["linear_augmented"]["weight_decay"] == ev["linear"]["weight_decay"]
    assert 0 <= ev["linear_augmented"]["top1"] <= 1


def test_eval_of_an_interrupted_run_writes_a_summary(run_cli, tiny, tmp_path):
    out = tmp_path / "run"
    assert run_cli("run", "simclr", *tiny, "--no-eval", "--out", out)[0] == 0
    (out / "summary.json").unlink()  # as if the run had stopped after its last checkpoint
    code, _, err = run_cli("eval", out, "--only", "knn")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "simclr" and summary["epochs"] == 1
    assert summary["images_seen"] == 64 and "knn" in summary["eval"]


def test_finetune_probe_learns_and_leaves_the_run_untouched(run_cli, tiny, tmp_path):
    """`--only finetune` trains a copy of the backbone with a head: on digits a few epochs
    from a random backbone go far above chance; the run's checkpoint does not change."""
    args = [*tiny, "--dataset", "digits", "--set", "data.train_size=600", "--no-eval"]
    args += ["--set", "eval.finetune_epochs=3", "--out", tmp_path / "r"]
    assert run_cli("run", "random", *args)[0] == 0
    ckpt = (tmp_path / "r/checkpoints/last.pt").read_bytes()
    code, out, err = run_cli("eval", tmp_path / "r", "--only", "finetune")
    assert code == 0, err
    ft = json.loads((tmp_path / "r/summary.json").read_text())["eval"]["finetune"]
    assert set(ft["val_top1"]) == {"0.0003", "0.001"} and ft["lr"] in (3e-4, 1e-3)
    assert ft["top1"] > 0.25 and "fine-tuned top-1" in out and "lr chosen on val" in ft["protocol"]
    assert (tmp_path / "r/checkpoints/last.pt").read_bytes() == ckpt


def test_the_readmes_evaluator_plugs_in_with_one_file(run_cli, tmp_path, monkeypatch):
    """The README's "Adding an evaluator" example, as a file of its own: it runs from
    `--only`, shows in the terminal summary and becomes a results-table column. In this
    process, on a copy of the registry that the test then drops (a real process per
    command costs ~10 s of imports on a slow CI CPU)."""
    import re
    import runpy
    from pathlib import Path

    from ssl_bench.registry import EVALUATORS

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```python\n(# ssl_bench/evaluators/centroid.py\n.*?)```", readme, re.S)
    (tmp_path / "centroid.py").write_text(block.group(1))
    EVALUATORS.names()  # the built-in evaluators first, then the copy the file adds to
    monkeypatch.setattr(EVALUATORS, "_entries", dict(EVALUATORS._entries))
    runpy.run_path(str(tmp_path / "centroid.py"))
    tiny = "data.train_size=64 data.val_size=32 data.test_size=32 model.width=8 train.batch_size=16"
    sets = [x for s in tiny.split() for x in ("--set", s)]
    only = ["--set", "eval.evaluators=knn,centroid", "--no-progress"]
    code, out, err = run_cli("run", "random", *sets, *only, "--out", tmp_path / "r")
    assert code == 0, err
    assert "centroid top-1" in out
    summary = json.loads((tmp_path / "r/summary.json").read_text())
    assert 0 <= summary["eval"]["centroid"]["top1"] <= 1
    code, table, err = run_cli("results", tmp_path)
    assert code == 0 and "centroid top-1" in table, err
