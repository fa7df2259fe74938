"""Every config file shipped under experiments/ resolves for the methods it serves."""

from pathlib import Path

import pytest

from ssl_bench.config import load_yaml, resolve

FILES = sorted((Path(__file__).parent.parent / "experiments").glob("*.yaml"))


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
