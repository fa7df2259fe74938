"""Shared fixtures: tiny settings so that every CLI run in the tests takes a second."""

from __future__ import annotations

import pytest

# Few images, a narrow CNN, one short epoch: the smallest run that exercises every part.
TINY = [
    "--set",
    "data.train_size=64",
    "--set",
    "data.val_size=32",
    "--set",
    "data.test_size=32",
    "--set",
    "model.width=8",
    "--set",
    "train.knn_monitor_size=64",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--no-progress",
]


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


@pytest.fixture
def run_cli(capsys):  # noqa: ANN001, ANN201
    """Run ``ssl-bench ARGS`` in-process; return (exit code, stdout, stderr)."""
    from ssl_bench.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return _run
