"""Reports: every section from run folders, plots written and not empty, readings that
follow the numbers, the study's combined report."""

import json

import matplotlib.image
import pytest
import yaml

from ssl_bench.errors import UserError
from ssl_bench.report.build import write_report
from ssl_bench.report.kinds import kinds
from ssl_bench.report.stats import Stat
from ssl_bench.study import write_study
from ssl_bench.sweep import load_sweep


def fake_run(folder, method, seed, metrics, batch=128, config=None, backbone="small_cnn"):
    """A run folder with the summary.json fields the report reads."""
    folder.mkdir(parents=True)
    cfg = {"data": {"train_size": 500, "val_size": 100, "test_size": 100, "image_size": 32}}
    cfg.update(config or {})
    ev = {
        "knn": {"top1": metrics.get("knn", 0.3), "k": 20, "T": 0.07},
        "linear": {"top1": metrics.get("linear", 0.4)},
        "lowshot": {"10%": {"top1": 0.2}},
        "seg": {"miou": metrics.get("seg", 0.2)},
        "collapse": {"rankme": 20.0},
        "collapse_head": {
            "std": metrics.get("std", 0.08),
            "dim": 128,
            "rankme": metrics.get("rankme", 30.0),
            "alignment": 0.5,
            "uniformity": -2.0,
        },
    }
    for key in ("zeroshot", "removal"):
        if key in metrics:
            ev[key] = metrics[key]
    summary = {
        "method": method,
        "dataset": "shapes",
        "backbone": backbone,
        "batch_size": batch,
        "epochs": 5,
        "seed": seed,
        "images_seen": 1000,
        "train_seconds": 10.0,
        "device": "cpu",
        "config": cfg,
        "eval": ev,
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "metrics.jsonl").write_text(json.dumps({"loss": 1.5, "step": 10}) + "\n")


# What each kind's sweep file declares for the fake runs below (as experiments/*.yaml do).
ROLES = {
    "augmentations": {"reference": "baseline", "paper": {"no_color": "no_color"}},
    "collapse": {
        "paper": {
            "simclr": "simclr",
            "byol_no_predictor": "byol_no_predictor",
            "byol_tau0": "byol_tau0",
        }
    },
    "detailclip": {
        "reference": "detailclip",
        "paper": {"clip": "clip", "detailclip": "detailclip"},
        "removes": {"no_distillation": "distillation", "clip": "all"},
    },
    "methods": {"reference": "random"},
}
KINDS = kinds()


def sweep_dir(tmp_path, kind, runs):
    """runs: (arm, method, {metrics}, batch) -> three seeds each, jittered."""
    root = tmp_path / kind
    for arm, method, metrics, batch in runs:
        for seed in range(3):
            jitter = {k: v + 0.01 * seed if isinstance(v, float) else v for k, v in metrics.items()}
            fake_run(root / f"{arm}-seed{seed}", method, seed, jitter, batch)
    report = {"kind": kind, **ROLES.get(kind, {})}
    (root / "sweep.yaml").write_text(yaml.safe_dump({"report": report, "command": "ssl-bench x"}))
    return root


def batch_runs(byol_drop, simclr_drop):
    runs = []
    for bs in (32, 128, 512):
        frac = {32: 1.0, 128: 0.5, 512: 0.0}[bs]
        runs.append(
            (f"method=byol-batch_size={bs}", "byol", {"linear": 0.6 - byol_drop * frac}, bs)
        )
        runs.append(
            (f"method=simclr-batch_size={bs}", "simclr", {"linear": 0.6 - simclr_drop * frac}, bs)
        )
    return runs


SWEEPS = {
    "batch_size": batch_runs(0.02, 0.2),
    "augmentations": [
        (f"{arm}-method={m}", m, {"linear": 0.6 - d}, 128)
        for arm, d in (("baseline", 0.0), ("no_color", 0.2), ("crop_only", 0.3))
        for m in ("simclr", "byol")
    ],
    "collapse": [
        ("simclr", "simclr", {"std": 0.085}, 128),
        ("byol_no_predictor", "byol", {"std": 0.01, "rankme": 2.0}, 128),
        ("simclr_positive_only", "simclr", {"std": 0.085, "rankme": 2.0}, 128),
        ("byol_tau0", "byol", {"std": 0.08, "rankme": 40.0}, 128),  # healthy, unlike the paper
    ],
    "multicrop": [
        ("global_only", "logo", {"knn": 0.3}, 128),
        ("logo", "logo", {"knn": 0.5}, 128),
    ],
    "detailclip": [
        ("clip", "clip", {"seg": 0.2, "zeroshot": {"top1": 0.5}}, 128),
        (
            "detailclip",
            "detailclip",
            {
                "seg": 0.4,
                "zeroshot": {"top1": 0.5},
                "removal": {"attention": 0.6, "random": 0.3, "all_patches": 0.3},
            },
            128,
        ),
        ("no_distillation", "detailclip", {"seg": 0.25}, 128),
    ],
    "methods": [
        ("random", "random", {"knn": 0.25}, 128),
        ("simclr", "simclr", {"knn": 0.5}, 128),
        ("byol", "byol", {"knn": 0.26}, 128),
    ],
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_section_writes_a_table_and_a_plot(tmp_path, kind):
    folder = sweep_dir(tmp_path, kind, SWEEPS[kind])
    out = write_report(folder, tmp_path / "out" / f"{kind}.md")
    text = out.read_text()
    assert text.startswith(f"# Report: {KINDS[kind]}")
    assert "**Setup.** Dataset `shapes` (500 train" in text and "3 seeds per row" in text
    assert "device cpu, fp32." in text  # records without a precision trained in fp32
    assert "**Protocol.**" in text and "**Reading.**" in text and "| ---" not in text
    assert " ± " in text  # mean ± std over the seeds
    png = tmp_path / "out" / f"{kind}.png"
    assert f"]({png.name})" in text
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 100 and image[..., :3].std() > 0.05  # drawn, not blank


def test_readings_follow_the_numbers(tmp_path):
    agree = write_report(
        sweep_dir(tmp_path / "a", "batch_size", batch_runs(0.02, 0.2)), tmp_path / "a.md"
    ).read_text()
    assert "BYOL's change is above SimCLR's" in agree and "agree with the paper" in agree
    disagree = write_report(
        sweep_dir(tmp_path / "b", "batch_size", batch_runs(0.2, 0.02)), tmp_path / "b.md"
    ).read_text()
    assert "below SimCLR's" in disagree and "do not reproduce the paper's ordering" in disagree
    text = write_report(
        sweep_dir(tmp_path / "c", "collapse", SWEEPS["collapse"]), tmp_path / "c.md"
    ).read_text()
    assert "`byol_no_predictor`: complete collapse" in text
    assert (
        "`simclr_positive_only`: dimensional collapse" in text and "`simclr`: no collapse" in text
    )
    assert "Against the paper: `byol_no_predictor`, `simclr` agree" in text
    assert "disagree: `byol_tau0` does not collapse here, the paper's row collapsed (0.3%" in text
    text = write_report(
        sweep_dir(tmp_path / "d", "detailclip", SWEEPS["detailclip"]), tmp_path / "d.md"
    ).read_text()
    assert "`detailclip` seg mIoU 41.0 ± 1.0 is above `no_distillation`'s" in text
    assert "37.3" in text  # the paper's number beside ours
    assert "they find DetailCLIP above CLIP on seg mIoU (37.3 vs 34.2), here `detailclip`" in text
    assert "is above `clip` (agrees)" in text  # seg 40 vs 20
    assert "is within seed noise of `clip` (disagrees)" in text  # zero-shot 50 vs 50


def test_methods_are_compared_with_the_untrained_backbone_of_their_architecture(tmp_path):
    root = sweep_dir(tmp_path, "methods", SWEEPS["methods"])
    for arm, method, knn, backbone in (
        ("random_vit", "random", 0.10, "vit_tiny"),
        ("clip", "clip", 0.20, "vit_tiny"),  # below the CNN's untrained 25%, above its own
    ):
        for seed in range(3):
            fake_run(root / f"{arm}-seed{seed}", method, seed, {"knn": knn}, backbone=backbone)
    text = write_report(root, tmp_path / "m.md").read_text()
    assert "by more than the seeds' spread: clip (vs `random_vit`), simclr;" in text
    assert "not clearly above it: byol." in text


def test_batch_size_at_a_fixed_update_batch_reads_the_loss_batch(tmp_path):
    """The paper's design: the update batch fixed, smaller loss batches accumulated."""
    root = tmp_path / "bs"
    for method, lins in (("simclr", (0.60, 0.55, 0.45)), ("byol", (0.60, 0.59, 0.58))):
        for accum, lin in zip((1, 2, 4), lins):
            for seed in range(3):
                fake_run(
                    root / f"{method}-accum{accum}-seed{seed}",
                    method,
                    seed,
                    {"linear": lin + 0.002 * seed},
                    batch=64,
                    config={"train": {"accum_steps": accum}},
                )
    (root / "sweep.yaml").write_text(yaml.safe_dump({"report": {"kind": "batch_size"}}))
    text = write_report(root, tmp_path / "bs.md").read_text()
    assert "| simclr | 16 | 15 |" in text  # loss batch 64 / 4, 1000 images / 64 per step
    assert "simclr: -15.0 ± 0.3 points from batch 64 to 16" in text
    assert "BYOL's change is above SimCLR's" in text
    assert "Every row took the same 15 optimiser steps of 64 images" in text


def test_stat_calls_a_difference_only_beyond_the_spread():
    assert Stat(0.50, 0.02, 3).beats(Stat(0.47, 0.02, 3)) == "within seed noise of"
    assert Stat(0.50, 0.01, 3).beats(Stat(0.47, 0.01, 3)) == "above"
    assert Stat(0.40, 0.0, 1).beats(Stat(0.47, 0.0, 1)) == "below"


def test_bad_report_input(tmp_path):
    with pytest.raises(UserError, match="no runs under"):
        (tmp_path / "empty").mkdir()
        write_report(tmp_path / "empty", tmp_path / "x.md", "methods")
    folder = sweep_dir(tmp_path, "methods", SWEEPS["methods"])
    (folder / "sweep.yaml").unlink()
    with pytest.raises(UserError, match="pass --kind"):
        write_report(folder, tmp_path / "x.md")
    with pytest.raises(UserError, match="unknown report kind 'speed'"):
        write_report(folder, tmp_path / "x.md", "speed")


@pytest.mark.parametrize(
    "report, message",
    [
        ("speed", "unknown report kind 'speed'"),
        ("{kind: methods, reference: rnd}", "unknown arm in report.reference"),
        ("{kind: augmentations}", "needs report.reference"),
        ("{kind: collapse, paper: {a: byol_tau2}}", "unknown report.paper entry"),
        (
            "{kind: detailclip, reference: a, removes: {a: colour}}",
            "removes entry .* 'colour'; valid choices: all, attention",
        ),
        ("{kind: multicrop, reference: a}", "reads no report.reference"),
        ("{kind: methods, arms: [a]}", "unknown key under report"),
    ],
)
def test_sweep_files_declare_a_known_kind_and_arms_that_exist(tmp_path, report, message):
    """The report's declarations are checked when the sweep file is read: an arm renamed
    without its report role fails there, instead of dropping a sentence from the report."""
    path = tmp_path / "s.yaml"
    path.write_text(f"arms: {{a: {{method: simclr}}}}\nreport: {report}\n")
    with pytest.raises(UserError, match=message):
        load_sweep(path)


def test_readings_name_what_the_sweep_file_does_not_declare(tmp_path):
    folder = sweep_dir(tmp_path, "detailclip", SWEEPS["detailclip"])
    text = write_report(folder, tmp_path / "d.md").read_text()
    assert "to remove: `attention`, `reconstruction`, `removal`." in text
    # renamed arms, roles following them: the same sentences come out
    runs = [(a.replace("no_distillation", "no_distil"), *rest) for a, *rest in SWEEPS["detailclip"]]
    folder = sweep_dir(tmp_path / "renamed", "detailclip", runs)
    info = yaml.safe_load((folder / "sweep.yaml").read_text())
    info["report"]["removes"] = {"no_distil": "distillation", "clip": "all"}
    (folder / "sweep.yaml").write_text(yaml.safe_dump(info))
    renamed = write_report(folder, tmp_path / "r.md").read_text()
    assert "is above `no_distil`'s" in renamed
    methods = sweep_dir(tmp_path / "m", "methods", SWEEPS["methods"])
    (methods / "sweep.yaml").unlink()  # --kind alone declares no reference arm
    text = write_report(methods, tmp_path / "m.md", "methods").read_text()
    assert "declares no reference arm" in text


def test_study_report_has_every_question_and_names_missing_sweeps(tmp_path):
    runs = tmp_path / "runs"
    for kind in ("collapse", "methods"):
        sweep_dir(runs, kind, SWEEPS[kind])
    names = ["detailclip", "collapse", "methods"]
    out = write_study(runs, names, tmp_path / "reports" / "study.md", "ssl-bench study")
    text = out.read_text()
    for name in names:
        assert KINDS[name] in text
    assert "Not run yet: `ssl-bench sweep experiments/detailclip.yaml`" in text
    assert (tmp_path / "reports" / "study_collapse.png").stat().st_size > 1000
    assert "Generated by `ssl-bench study`" in text


def test_study_command_reports_existing_runs_and_rejects_unknown_sweeps(run_cli, tmp_path):
    runs = tmp_path / "runs"
    sweep_dir(runs, "collapse", SWEEPS["collapse"])
    out = tmp_path / "study.md"
    args = ["study", "--report-only", "--runs", runs, "-o", out, "--only", "collapse,methods"]
    code, stdout, err = run_cli(*args)
    assert code == 0, err
    text = out.read_text()
    # The command that made it, with the folders it read and wrote.
    assert f"ssl-bench study --only collapse,methods --runs {runs} -o {out} --report-only" in text
    assert "`byol_no_predictor`: complete collapse" in text and "Not run yet" in text
    code, _, err = run_cli("study", "--only", "collapse,speed", "--report-only")
    assert code == 2 and "unknown study sweep 'speed'" in err and "batch_size" in err
    code, _, err = run_cli("study", "--only", "collapse", "--experiments", tmp_path)
    assert code == 2 and "no sweep file" in err


def test_detailclip_reading_flags_a_budget_too_small_to_separate_arms(tmp_path):
    near_chance = {"seg": 0.1, "zeroshot": {"top1": 0.12, "chance": 0.1}}
    runs = [("clip", "clip", near_chance, 64), ("detailclip", "detailclip", near_chance, 64)]
    text = write_report(sweep_dir(tmp_path, "detailclip", runs), tmp_path / "r.md").read_text()
    assert "Every arm's zero-shot is below twice chance (10%)" in text
    text = write_report(
        sweep_dir(tmp_path / "ok", "detailclip", SWEEPS["detailclip"]), tmp_path / "ok.md"
    ).read_text()
    assert "below twice chance" not in text and "(attention above random)" in text


def test_batch_reading_follows_the_papers_ordering_over_a_64x_range(tmp_path):
    # 512 -> 8 is 64x: the paper (4096 -> 64) has BYOL losing MORE than SimCLR
    runs = []
    for bs, frac in ((8, 1.0), (64, 0.5), (512, 0.0)):
        runs.append((f"method=byol-batch_size={bs}", "byol", {"linear": 0.6 - 0.3 * frac}, bs))
        runs.append((f"method=simclr-batch_size={bs}", "simclr", {"linear": 0.6 - 0.1 * frac}, bs))
    text = write_report(sweep_dir(tmp_path, "batch_size", runs), tmp_path / "b.md").read_text()
    assert "(4096 -> 64) has BYOL -12.8 and SimCLR -8.7" in text
    assert "BYOL's change is below SimCLR's" in text and "agree with the paper" in text


def test_augmentation_report_needs_sweep_arms(tmp_path):
    root = tmp_path / "plain"
    fake_run(root / "simclr", "simclr", 0, {})
    with pytest.raises(UserError, match="augmentations report needs arm"):
        write_report(root, tmp_path / "x.md", "augmentations")


def test_rows_follow_the_sweep_files_arm_order_and_multicrop_reads_each_added_term(tmp_path):
    runs = [
        ("dino", "dino", {"knn": 0.2, "linear": 0.3, "seg": 0.1}, 128),
        ("global_only", "logo", {"knn": 0.3, "linear": 0.4, "seg": 0.2}, 128),
        ("local_global", "logo", {"knn": 0.5, "linear": 0.41, "seg": 0.3}, 128),
    ]
    folder = sweep_dir(tmp_path, "multicrop", runs)
    info = yaml.safe_load((folder / "sweep.yaml").read_text())
    info["arms"] = {"global_only": {}, "local_global": {}, "dino": {}}  # not alphabetical
    (folder / "sweep.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    text = write_report(folder, tmp_path / "m.md").read_text()
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["| global_only", "| local_global", "| dino"]
    reading = text.split("**Reading.**")[1]
    assert "`local_global` against `global_only`: kNN +20.0 (above), linear +1.0" in reading
    assert "`dino` against `local_global`: kNN -30.0 (below)" in reading  # the best LoGo arm


def test_single_run_report_writes_its_table_and_plots(run_cli, tiny, tmp_path):
    assert (
        run_cli(
            "run", "byol", *tiny, "--set", "eval.evaluators=knn,collapse", "--out", tmp_path / "r"
        )[0]
        == 0
    )
    code, out, err = run_cli("report", tmp_path / "r", "-o", tmp_path / "rep/byol.md")
    assert code == 0, err
    text = (tmp_path / "rep/byol.md").read_text()
    assert "| kNN top-1 (k=20, T=0.07) |" in text and "| head: std / 1/sqrt(d), RankMe |" in text
    for name in ("training", "monitor", "embedding"):
        png = tmp_path / f"rep/byol-{name}.png"
        assert f"({png.name})" in text
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "the right panel colours them by" in text  # shapes: the strongest nuisance
    code, _, err = run_cli("report", tmp_path / "r", "-o", tmp_path / "x.md", "--kind", "methods")
    assert code == 2 and "run folder" in err


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for p in __import__("pathlib").Path("experiments").glob("*.yaml")
        if "report" in (yaml.safe_load(p.read_text()) or {})
    ),
    ids=lambda p: p.stem,
)
def test_every_experiment_files_report_builds_from_fake_runs(tmp_path, path):
    """Each sweep file's planned runs, as fake run folders with their real configs: its
    report section builds, with a table row per arm (renaming an arm cannot drop it)."""
    from ssl_bench.sweep import plan

    root = tmp_path / path.stem
    runs = plan(path)
    for i, r in enumerate(runs):
        extra = {}
        if r.method in ("clip", "detailclip"):
            extra = {"zeroshot": {"top1": 0.4}}
        if r.method == "detailclip":
            extra["removal"] = {"attention": 0.6, "random": 0.3, "all_patches": 0.3}
        metrics = {"knn": 0.3 + 0.01 * (i % 7), "linear": 0.4 + 0.01 * (i % 5), **extra}
        fake_run(
            root / r.name,
            r.method,
            r.seed,
            metrics,
            r.config.train.batch_size,
            config=r.config.to_dict(),
        )
    info = yaml.safe_load(path.read_text())
    (root / "sweep.yaml").write_text(yaml.safe_dump({**info, "command": f"ssl-bench sweep {path}"}))
    text = write_report(root, tmp_path / "out" / f"{path.stem}.md").read_text()
    assert "**Protocol.**" in text and "| ---" not in text
    for arm in info.get("arms") or {}:
        assert arm in text, f"arm {arm} of {path} is missing from its report"


def test_kind_names_listed_without_imports_are_the_registered_kinds():
    from ssl_bench.registry import REPORTS
    from ssl_bench.report.kinds import kind_names

    assert kind_names() == sorted(REPORTS.names())
