"""`cifar10` and `cifar100` from the official python-pickle files in ``data.data_dir``.

The folder holds ``cifar-10-batches-py/`` (or ``cifar-100-python/``), as extracted from
the official archive; ``data.download: true`` fetches it there with torchvision first.
We read the pickles ourselves so that partial or tiny copies (tests) load too.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ssl_bench.config import DataConfig
from ssl_bench.data.datasets import assemble, require_dir
from ssl_bench.data.splits import DatasetSplits, Split
from ssl_bench.errors import UserError
from ssl_bench.registry import DATASETS

LAYOUT = {
    # name: (folder, train files, test files, meta file, label key, class-name key)
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "batches.meta",
        b"labels",
        b"label_names",
    ),
    "cifar100": (
        "cifar-100-python",
        ["train"],
        ["test"],
        "meta",
        b"fine_labels",
        b"fine_label_names",
    ),
}


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"missing CIFAR file {path}")
    try:
        with path.open("rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as err:  # a truncated or foreign file
        raise UserError(f"corrupt CIFAR file {path}: {err}") from None


def _split(folder: Path, files: list[str], label_key: bytes) -> Split:
    images, labels = [], []
    for name in files:
        batch = _unpickle(folder / name)
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch[label_key])
    return Split(torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long))


def _load(cfg: DataConfig) -> DatasetSplits:
    folder_name, train_files, test_files, meta_file, label_key, names_key = LAYOUT[cfg.name]
    root = require_dir(cfg, f"the {cfg.name} python-pickle files ({folder_name}/)")
    if cfg.download:
        import torchvision

        cls = (
            torchvision.datasets.CIFAR10 if cfg.name == "cifar10" else torchvision.datasets.CIFAR100
        )
        cls(str(root), download=True)
    folder = root / folder_name if (root / folder_name).is_dir() else root
    if not (folder / meta_file).is_file():
        raise UserError(
            f"{cfg.name} not found in {root} (expected {folder_name}/{meta_file}); "
            f"pass --set data.download=true to fetch it"
        )
    classes = [c.decode() for c in _unpickle(folder / meta_file)[names_key]]
    train = _split(folder, train_files, label_key)
    test = _split(folder, test_files, label_key)
    return assemble(cfg, classes, train, test)


DATASETS.register("cifar10", "CIFAR-10 (32 px, 10 classes) from --data-dir")(_load)
DATASETS.register("cifar100", "CIFAR-100 (32 px, 100 fine classes) from --data-dir")(_load)
