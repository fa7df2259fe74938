"""`stl10` from the official binary files in ``data.data_dir/stl10_binary``.

Images are stored column-major (N, 3, 96, 96 transposed); labels are 1-based. The
100,000-image unlabeled split is loaded only when ``data.use_unlabeled`` is set, and is
then added to the pre-training images (never to the probes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ssl_bench.config import DataConfig
from ssl_bench.data.datasets import assemble, require_dir
from ssl_bench.data.splits import DatasetSplits, Split
from ssl_bench.errors import UserError
from ssl_bench.registry import DATASETS

SIDE = 96


def _images(path: Path) -> torch.Tensor:
    if not path.is_file():
        raise UserError(f"missing STL-10 file {path}")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % (3 * SIDE * SIDE):
        raise UserError(f"corrupt STL-10 file {path}: size is not a multiple of one image")
    # The files are column-major: swap H and W back.
    return torch.from_numpy(raw.reshape(-1, 3, SIDE, SIDE).transpose(0, 1, 3, 2).copy())


def _labels(path: Path, n: int) -> torch.Tensor:
    if not path.is_file():
        raise UserError(f"missing STL-10 file {path}")
    labels = torch.from_numpy(np.fromfile(path, dtype=np.uint8).astype(np.int64)) - 1
    if len(labels) != n:
        raise UserError(f"corrupt STL-10 file {path}: {len(labels)} labels for {n} images")
    return labels


@DATASETS.register("stl10", "STL-10 (96 px, 10 classes, 100k unlabeled) from --data-dir")
def load(cfg: DataConfig) -> DatasetSplits:
    root = require_dir(cfg, "the STL-10 binary files (stl10_binary/)")
    if cfg.download:
        import torchvision

        torchvision.datasets.STL10(str(root), split="train+unlabeled", download=True)
    folder = root / "stl10_binary" if (root / "stl10_binary").is_dir() else root
    if not (folder / "train_X.bin").is_file():
        raise UserError(
            f"stl10 not found in {root} (expected stl10_binary/train_X.bin); "
            f"pass --set data.download=true to fetch it"
        )
    names = folder / "class_names.txt"
    classes = names.read_text().split() if names.is_file() else [str(i) for i in range(10)]
    splits = {}
    for split in ("train", "test"):
        images = _images(folder / f"{split}_X.bin")
        splits[split] = Split(images, _labels(folder / f"{split}_y.bin", len(images)))
    unlabeled = None
    if cfg.use_unlabeled:
        images = _images(folder / "unlabeled_X.bin")
        unlabeled = Split(images, torch.full((len(images),), -1, dtype=torch.long))
    return assemble(cfg, classes, splits["train"], splits["test"], unlabeled=unlabeled)
