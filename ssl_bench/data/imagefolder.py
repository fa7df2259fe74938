"""`imagefolder`: any folder of class sub-folders, read with PIL into memory.

Layout: ``DIR/train/<class>/*.jpg`` (+ optional ``DIR/val``, ``DIR/test``), or just
``DIR/<class>/*`` which is then split 80 / 20 into train / test with ``data.split_seed``.
Any image size and mode is converted to RGB, resized (shorter side) and centre-cropped
to ``data.image_size``. A file PIL cannot read is reported by its path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from tqdm import tqdm

from ssl_bench.config import DataConfig
from ssl_bench.data.datasets import assemble, require_dir
from ssl_bench.data.splits import DatasetSplits, Split
from ssl_bench.errors import UserError
from ssl_bench.registry import DATASETS


def fit(img: Image.Image, size: int, resample: int = Image.BILINEAR) -> np.ndarray:
    """Resize the shorter side to ``size`` and centre-crop to a square."""
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), resample)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _read(path: str, size: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return fit(img.convert("RGB"), size)
    except UnidentifiedImageError:
        raise UserError(f"cannot read image {path}: not a valid image file") from None
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read image {path}: {getattr(err, 'strerror', None) or err}"
        ) from None


def _folder(root: Path, classes: list[str], size: int, desc: str) -> Split:
    index = {c: i for i, c in enumerate(classes)}
    try:
        samples = make_dataset(str(root), index, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as err:
        raise UserError(f"imagefolder {root}: {err}") from None
    images = np.stack(
        [_read(p, size) for p, _ in tqdm(samples, desc=desc, leave=False, disable=None)]
    )
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)
    return Split(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels)


@DATASETS.register("imagefolder", "class sub-folders of images (any size/mode) from --data-dir")
def load(cfg: DataConfig) -> DatasetSplits:
    root = require_dir(cfg, "class sub-folders of images")
    has_splits = (root / "train").is_dir()
    base = root / "train" if has_splits else root
    try:
        classes, _ = find_classes(str(base))
    except FileNotFoundError as err:
        raise UserError(f"imagefolder {base}: {err}") from None
    size = cfg.image_size
    if has_splits:
        train = _folder(root / "train", classes, size, "train")
        val = _folder(root / "val", classes, size, "val") if (root / "val").is_dir() else None
        if not (root / "test").is_dir():
            raise UserError(f"imagefolder {root} has train/ but no test/ folder")
        test = _folder(root / "test", classes, size, "test")
        return assemble(cfg, classes, train, test, val=val)
    whole = _folder(root, classes, size, "images")
    perm = torch.randperm(len(whole), generator=torch.Generator().manual_seed(cfg.split_seed))
    n_test = max(1, len(whole) // 5)
    return assemble(cfg, classes, whole.subset(perm[n_test:]), whole.subset(perm[:n_test]))
