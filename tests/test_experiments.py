"""Every config file shipped under experiments/ resolves for the methods it serves."""

from pathlib import Path

import pytest

from ssl_bench.layering import load_yaml, resolve
from ssl_bench.sweep import SWEEP_KEYS, plan

ALL = sorted((Path(__file__).parent.parent / "experiments").glob("*.yaml"))
SWEEPS = [p for p in ALL if set(load_yaml(p)) <= set(SWEEP_KEYS)]
FILES = [p for p in ALL if p not in SWEEPS]  # plain config files (`--config`)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_experiment_file_resolves(path, method):
    cfg = resolve(method, file_values=load_yaml(path))
    assert cfg.method.name == method


def test_dataset_recipe_sits_under_method_and_file():
    shapes = resolve("simclr")
    assert shapes.aug.hue == 0.5 and shapes.aug.crop_min_scale == 0.3  # shapes recipe
    cifar = resolve("simclr", set_items=["data.name=cifar10"])
    assert cifar.aug.hue == 0.1 and cifar.aug.crop_min_scale == 0.08  # FACTS defaults
    override = resolve("simclr", set_items=["aug.hue=0.2"])
    assert override.aug.hue == 0.2


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_sweep_file_plans(path):
    runs = plan(path)
    assert runs and len({r.name for r in runs}) == len(runs)


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_sweep_file_report_builds_from_fake_summaries(path, tmp_path):
    """Every run the file plans gets a fake summary.json; the report its `report:`
    declares (with the file's own arm roles) must build from them."""
    import shutil

    from test_report import fake_run

    from ssl_bench.report.build import write_report

    if "report" not in load_yaml(path):
        pytest.skip("no report declared")
    folder = tmp_path / path.stem
    for i, r in enumerate(plan(path)):
        metrics = {
            "knn": 0.3 + 0.01 * i,
            "linear": 0.4 + 0.01 * i,
            "zeroshot": {"top1": 0.2},
            "removal": {"attention": 0.6, "random": 0.3, "all_patches": 0.3},
        }
        fake_run(folder / r.name, r.method, r.seed, metrics, r.config.train.batch_size)
    shutil.copy(path, folder / "sweep.yaml")
    text = write_report(folder, tmp_path / "report.md").read_text()
    assert text.startswith("# Report:") and "**Reading.**" in text
