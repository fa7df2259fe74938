import subprocess
import sys

import pytest

from ssl_bench.errors import UserError
from ssl_bench.registry import BACKBONES, DATASETS, METHODS


@pytest.mark.parametrize(
    "registry, name", [(METHODS, "byl"), (BACKBONES, "resnet"), (DATASETS, "cifar")]
)
def test_unknown_names_list_choices(registry, name):
    with pytest.raises(UserError) as err:
        registry.get(name)
    message = str(err.value)
    assert f"unknown {registry.kind} '{name}'" in message
    for valid in registry.names():
        assert valid in message


def test_expected_entries_registered():
    assert {"simclr", "byol", "random", "pixels", "supervised"} <= set(METHODS.names())
    assert {"small_cnn", "resnet18", "resnet50", "vit_tiny", "vit_small"} <= set(BACKBONES.names())
    assert {"shapes", "digits", "cifar10", "cifar100", "stl10", "imagefolder"} <= set(
        DATASETS.names()
    )


def test_methods_are_installed_under_ssl_bench_not_top_level(tmp_path):
    # From a folder outside the repository: ssl_bench.methods imports, a bare
    # `methods` package does not exist in the environment.
    code = (
        "import importlib.util, ssl_bench.methods as m; "
        "assert importlib.util.find_spec('methods') is None, 'bare methods package installed'; "
        "print(m.__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ssl_bench.methods"


def test_list_command(run_cli):
    code, out, _ = run_cli("list")
    assert code == 0
    for name in ["simclr", "byol", "small_cnn", "vit_tiny", "shapes", "imagefolder"]:
        assert name in out
