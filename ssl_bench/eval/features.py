"""Frozen features: extracted once per checkpoint and shared by every evaluator.

Extraction is batched on the training device with the model in eval mode. A
:class:`FeatureCache` keeps each kind of feature (``pooled`` for kNN and linear probes,
``head`` for collapse diagnostics, ``spatial`` for the segmentation probe) for the
train / val / test splits, in memory and in ``RUN/features/<key>-<kind>.pt``, where the
key names the checkpoint's content and the evaluation transform.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from ssl_bench.checkpoint import atomic_write_bytes
from ssl_bench.data.splits import DatasetSplits
from ssl_bench.data.views import ViewGenerator
from ssl_bench.runtime import autocast

SPLITS = ("train", "val", "test")


@torch.no_grad()
def extract(
    model: nn.Module,
    fn: Callable[[Tensor], Tensor],
    images: Tensor,
    views: ViewGenerator,
    device: torch.device,
    batch_size: int = 512,
    precision: str = "auto",
) -> Tensor:
    """``fn`` applied to the plain (whole-image, normalised) view of uint8 ``images``.

    ``model`` is put in eval mode for the pass (BatchNorm running statistics, no
    dropout) and restored afterwards. Returns float32 features on the CPU.
    """
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = views.plain(images[i : i + batch_size].to(device, non_blocking=True))
            with autocast(device, precision):
                out.append(fn(x).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


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

    def _fn(self, kind: str) -> Callable[[Tensor], Tensor]:
        return {
            "pooled": self.method.embed,
            "head": self.method.embed_head,
            "spatial": self.method.embed_spatial,
        }[kind]

    def _path(self, kind: str) -> Path | None:
        if self.folder is None or self.key is None:
            return None
        return self.folder / f"{self.key}-{kind}.pt"

    def get(self, kind: str, split: str) -> Tensor:
        """Features of ``kind`` for ``split`` (spatial maps are kept in float16)."""
        if kind not in self._mem:
            path = self._path(kind)
            if path is not None and path.is_file():
                self._mem[kind] = torch.load(path, map_location="cpu")
            else:
                fn = self._fn(kind)
                feats = {}
                for s in SPLITS:
                    f = extract(
                        self.method,
                        fn,
                        getattr(self.data, s).images,
                        self.views,
                        self.device,
                        self.batch_size,
                        self.precision,
                    )
                    feats[s] = f.half() if kind == "spatial" else f
                self._mem[kind] = feats
                if path is not None and self.write:
                    atomic_write_bytes(path, lambda f: torch.save(feats, f))
        return self._mem[kind][split]

    def has_head(self) -> bool:
        with torch.no_grad():
            probe = self.views.plain(self.data.test.images[:2].to(self.device))
            was = self.method.training
            self.method.eval()
            out = self.method.embed_head(probe)
            self.method.train(was)
        return out is not None
