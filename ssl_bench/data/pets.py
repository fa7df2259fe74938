"""`pets`: Oxford-IIIT Pet with its segmentation trimaps, read through torchvision.

``data.data_dir`` holds ``oxford-iiit-pet/`` (``images/``, ``annotations/``) as
torchvision lays it out; ``data.download: true`` fetches it there. Labels are the 37
breeds. Masks follow the suite's convention: 0 = background, breed + 1 = pet, and the
trimap's uncertain border = 255 (ignored by the segmentation probe).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import OxfordIIITPet
from tqdm import tqdm

from ssl_bench.config import DataConfig
from ssl_bench.data.datasets import assemble, require_dir
from ssl_bench.data.imagefolder import fit
from ssl_bench.data.splits import DatasetSplits, Split
from ssl_bench.errors import UserError
from ssl_bench.registry import DATASETS

TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3


def _split(root: str, split: str, size: int, download: bool) -> tuple[Split, list[str]]:
    try:
        ds = OxfordIIITPet(
            root, split=split, target_types=("category", "segmentation"), download=download
        )
    except RuntimeError as err:
        raise UserError(
            f"pets not found in {root} (expected oxford-iiit-pet/images and "
            f"annotations/); pass --set data.download=true to fetch it ({err})"
        ) from None
    images, masks, labels = [], [], []
    for i in tqdm(range(len(ds)), desc=f"pets {split}", leave=False, disable=None):
        try:
            image, (label, trimap) = ds[i]
        except Exception as err:  # PIL: a missing, truncated or foreign file
            raise UserError(f"cannot read pets sample {ds._images[i]}: {err}") from None
        t = fit(trimap, size, Image.NEAREST)
        mask = np.where(t == TRIMAP_PET, label + 1, np.where(t == TRIMAP_BACKGROUND, 0, 255))
        images.append(fit(image.convert("RGB"), size))
        masks.append(mask.astype(np.uint8))
        labels.append(label)
    split_data = Split(
        torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
        torch.tensor(labels, dtype=torch.long),
        torch.from_numpy(np.stack(masks)),
    )
    return split_data, list(ds.classes)


@DATASETS.register(
    "pets", "Oxford-IIIT Pet (37 breeds) with trimap masks, from --data-dir", has_masks=True
)
def load(cfg: DataConfig) -> DatasetSplits:
    root = require_dir(cfg, "the Oxford-IIIT Pet folder (oxford-iiit-pet/)")
    train, classes = _split(str(root), "trainval", cfg.image_size, cfg.download)
    test, _ = _split(str(root), "test", cfg.image_size, False)
    n = max(int(train.labels.max()), int(test.labels.max())) + 1
    names = (classes + [str(i) for i in range(len(classes), n)])[:n]
    return assemble(cfg, names, train, test)
