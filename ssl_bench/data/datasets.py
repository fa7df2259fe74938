"""Dataset loading: the registry lookup, split sizes, resizing and channel statistics.

Every loader returns :class:`DatasetSplits` with uint8 images. Sizes in the config are
upper bounds for real datasets (``0`` = all) and exact for the generated ``shapes``.
Real datasets with no official validation split get one carved from their training
split with ``data.split_seed``, so the test split never takes part in model selection.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_bench.config import DataConfig
from ssl_bench.data.splits import DatasetSplits, Split
from ssl_bench.errors import UserError
from ssl_bench.registry import DATASETS


def load_dataset(cfg: DataConfig) -> DatasetSplits:
    """The dataset named by ``cfg.name``, split and resized as configured."""
    return DATASETS.get(cfg.name).factory(cfg)


def require_dir(cfg: DataConfig, what: str) -> Path:
    """``cfg.data_dir`` as a Path, or a UserError saying how to provide the data."""
    if not cfg.data_dir:
        raise UserError(
            f"dataset '{cfg.name}' reads {what} from a local folder: pass --data-dir DIR "
            f"(add --set data.download=true to fetch it there)"
        )
    path = Path(cfg.data_dir).expanduser()
    if not path.is_dir() and not cfg.download:
        raise UserError(f"data directory not found: {path}")
    return path


def resize(images: Tensor, size: int, chunk: int = 2048) -> Tensor:
    """Resize uint8 images (N, 3, H, W) to size x size with antialiasing, in chunks."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = [
        F.interpolate(
            images[i : i + chunk].float(),
            size=(size, size),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        .round()
        .clamp(0, 255)
        .to(torch.uint8)
        for i in range(0, len(images), chunk)
    ]
    return torch.cat(out)


def _take(split: Split, n: int) -> Split:
    return split if n <= 0 or n >= len(split) else split.subset(slice(0, n))


def assemble(
    cfg: DataConfig,
    classes: list[str],
    train: Split,
    test: Split,
    val: Split | None = None,
    unlabeled: Split | None = None,
    notes: dict[str, str] | None = None,
) -> DatasetSplits:
    """Carve a val split from train if needed, apply size limits and resize."""
    if val is None:
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(cfg.split_seed))
        n_val = min(cfg.val_size, len(train) // 5)  # never more than a fifth of train
        val, train = train.subset(perm[:n_val]), train.subset(perm[n_val:])
    parts = [_take(train, cfg.train_size), _take(val, cfg.val_size), _take(test, cfg.test_size)]
    if unlabeled is not None:
        parts.append(unlabeled)
    for p in parts:
        p.images = resize(p.images, cfg.image_size)
        if p.masks is not None and p.masks.shape[-1] != cfg.image_size:
            p.masks = F.interpolate(
                p.masks[:, None].float(), size=(cfg.image_size,) * 2, mode="nearest"
            )[:, 0].to(torch.uint8)
    for name, p in zip(("train", "val", "test"), parts):
        if len(p) == 0:
            raise UserError(
                f"dataset '{cfg.name}' has an empty {name} split; check data.{name}_size"
            )
    return DatasetSplits(cfg.name, classes, *parts[:3], unlabeled=unlabeled, notes=notes or {})


def channel_stats(images: Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units."""
    total = torch.zeros(3, dtype=torch.float64)
    sq = torch.zeros(3, dtype=torch.float64)
    for i in range(0, len(images), chunk):
        x = images[i : i + chunk].double().div(255)
        total += x.sum(dim=(0, 2, 3))
        sq += (x * x).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / n
    std = (sq / n - mean**2).clamp(min=1e-8).sqrt()
    return mean.tolist(), std.tolist()


# Importing the loaders registers them.
from ssl_bench.data import cifar, digits, imagefolder, pets, shapes, stl10  # noqa: E402,F401
