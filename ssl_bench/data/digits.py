"""`digits`: scikit-learn's bundled 8x8 handwritten digits (1,797 images), offline.

Upsampled to ``data.image_size`` and replicated to RGB. With no official splits, a
seeded 70 / 10 / 20 % train / val / test split is used (sizes still capped by config).
"""

from __future__ import annotations

import torch

from ssl_bench.config import DataConfig
from ssl_bench.data.datasets import assemble
from ssl_bench.data.splits import DatasetSplits, Split
from ssl_bench.registry import DATASETS


@DATASETS.register("digits", "scikit-learn's 1,797 handwritten digits (8x8, upsampled), offline")
def load(cfg: DataConfig) -> DatasetSplits:
    # Imported here: scikit-learn costs ~1.5 s to import, and every CLI call (even
    # --print-config) loads the dataset registry.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images).float().mul(255 / 16).round().to(torch.uint8)
    images = images[:, None].expand(-1, 3, -1, -1).contiguous()  # (N, 3, 8, 8)
    labels = torch.from_numpy(bunch.target).long()
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(cfg.split_seed))
    n_test, n_val = len(perm) // 5, len(perm) // 10
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    whole = Split(images, labels)
    return assemble(
        cfg,
        [str(d) for d in range(10)],
        whole.subset(train),
        whole.subset(test),
        val=whole.subset(val),
    )
