"""Frozen features: extracted once per checkpoint and shared by every evaluator.

Extraction is batched on the training device with the model in eval mode. A
:class:`FeatureCache` keeps each kind of feature (``pooled`` for kNN and linear probes,
``head`` for collapse diagnostics, ``spatial`` for the segmentation probe) for the
train / val / test splits, in memory and in ``RUN/features/<key>-<kind>.pt``, where the
key names the checkpoint's content and the evaluation transform.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn

from ssl_bench.checkpoint import atomic_write_bytes
from ssl_bench.data.splits import DatasetSplits
from ssl_bench.data.views import ViewGenerator
from ssl_bench.runtime import autocast

SPLITS = ("train", "val", "test")


@torch.no_grad()
def extract_features(
    model: nn.Module,
    images: Tensor,
    views: ViewGenerator,
    device: torch.device,
    batch_size: int = 512,
    precision: str = "auto",
    spatial: bool = True,
) -> dict[str, Tensor]:
    """``model.features`` (pooled, spatial, head) of the plain view of uint8 ``images``,
    in eval mode, as CPU tensors (float16 spatial maps, float32 otherwise); kinds the model
    lacks (head None) are left out, and spatial maps too unless ``spatial``."""
    was_training = model.training
    model.eval()
    out: dict[str, list[Tensor]] = {}
    try:
        for i in range(0, len(images), batch_size):
            x = views.plain(images[i : i + batch_size].to(device, non_blocking=True))
            with autocast(device, precision):
                for kind, f in model.features(x).items():
                    if kind == "spatial" and not spatial:
                        continue
                    if f is not None:  # spatial maps are large: float16 from the start
                        f = f.half() if kind == "spatial" else f.float()
                        out.setdefault(kind, []).append(f.cpu())
    finally:
        model.train(was_training)
    return {kind: torch.cat(parts) for kind, parts in out.items()}


def checkpoint_key(path: Path, transform: str) -> str:
    """Names a checkpoint's content (not its path or time) plus the eval transform."""
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
    return f"{digest}-{transform}"


class FeatureCache:
    """Lazily extracted features of one model on one dataset, optionally on disk."""

    def __init__(
        self,
        method: nn.Module,
        data: DatasetSplits,
        views: ViewGenerator,
        device: torch.device,
        batch_size: int = 512,
        precision: str = "auto",
        folder: Path | None = None,
        key: str | None = None,
        write: bool = True,
    ) -> None:
        self.method, self.data, self.views, self.device = method, data, views, device
        self.batch_size, self.precision = batch_size, precision
        self.folder, self.key, self.write = folder, key, write
        self._mem: dict[str, dict[str, Tensor]] = {}

    def _path(self, kind: str) -> Path | None:
        if self.folder is None or self.key is None:
            return None
        return self.folder / f"{self.key}-{kind}.pt"

    def get(self, kind: str, split: str) -> Tensor:
        """Features of ``kind`` for ``split`` (spatial maps are kept in float16)."""
        if kind not in self._mem:
            path = self._path(kind)
            if path is not None and path.is_file():
                self._mem[kind] = torch.load(path, map_location="cpu", weights_only=True)
            else:
                self._extract_all()
        return self._mem[kind][split]

    def _extract_all(self) -> None:
        """Every kind for every split in one backbone pass per batch (``Method.features``),
        kept in memory and written to disk."""
        feats: dict[str, dict[str, Tensor]] = {}
        for s in SPLITS:
            for kind, f in extract_features(
                self.method,
                getattr(self.data, s).images,
                self.views,
                self.device,
                self.batch_size,
                self.precision,
            ).items():
                feats.setdefault(kind, {})[s] = f
        for kind, by_split in feats.items():
            self._mem[kind] = by_split
            path = self._path(kind)
            if path is not None and self.write:
                atomic_write_bytes(path, lambda f, v=by_split: torch.save(v, f))
