"""The in-memory dataset format every loader produces and every consumer reads.

Images are uint8 tensors ``(N, 3, H, W)`` so that a whole small dataset sits on the
training device and views are made there in batches (airbench style).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Split:
    """One split: images (N, 3, H, W) uint8, labels (N,) int64 (-1 = unlabeled),
    optional masks (N, H, W) uint8 (0 = background, c + 1 = object of class c) and
    optional captions (one string per image) and optional generator factors (a generated
    dataset's per-image nuisance variables, e.g. colour or position, each (N,))."""

    images: Tensor
    labels: Tensor
    masks: Tensor | None = None
    captions: list[str] | None = None
    factors: dict[str, Tensor] | None = None

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, "images: (N,3,H,W) uint8"
        assert self.labels.shape == (n,), "labels: (N,)"
        assert self.masks is None or self.masks.shape == (n, *self.images.shape[2:])
        assert self.captions is None or len(self.captions) == n
        assert self.factors is None or all(f.shape == (n,) for f in self.factors.values())

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: Tensor | slice) -> Split:
        """The samples at ``index`` (a slice or an index tensor)."""
        if isinstance(index, slice):
            caps = self.captions[index] if self.captions is not None else None
        else:
            caps = [self.captions[i] for i in index.tolist()] if self.captions is not None else None
        return Split(
            self.images[index],
            self.labels[index],
            self.masks[index] if self.masks is not None else None,
            caps,
            {k: f[index] for k, f in self.factors.items()} if self.factors is not None else None,
        )


@dataclass
class DatasetSplits:
    """Train / val / test splits plus what evaluators need to know about them.

    ``unlabeled`` holds extra images for pre-training only (STL-10's unlabeled split).
    """

    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    unlabeled: Split | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])

    @property
    def has_masks(self) -> bool:
        return self.train.masks is not None

    def pretrain_images(self, use_unlabeled: bool) -> Tensor:
        """The images the SSL method trains on: train, plus unlabeled if asked."""
        if use_unlabeled and self.unlabeled is not None:
            return torch.cat([self.train.images, self.unlabeled.images])
        return self.train.images

    def pretrain_labels(self, use_unlabeled: bool) -> Tensor:
        """Labels aligned with :meth:`pretrain_images` (-1 for unlabeled images)."""
        if use_unlabeled and self.unlabeled is not None:
            return torch.cat([self.train.labels, self.unlabeled.labels])
        return self.train.labels
