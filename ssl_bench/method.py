"""The interface between a method and the generic trainer and evaluator.

A method is an ``nn.Module`` that owns its backbone and heads, declares the views it
wants, and computes its own loss: the trainer only calls these hooks and never asks
which method it runs (MAE style). Register a subclass with ``METHODS.register``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from lightly.models.utils import get_weight_decay_parameters
from torch import Tensor, nn

from ssl_bench.backbones import Backbone, build_backbone
from ssl_bench.config import Config
from ssl_bench.data.views import ViewSpec
from ssl_bench.registry import METHODS


@dataclass
class DataInfo:
    """What a method may know about its data when it is built."""

    num_classes: int
    image_size: int
    classes: list[str]
    num_train: int = 0  # images the method pre-trains on (0 = unknown)
    # Captions of the pre-training images, aligned with them; None = the dataset has
    # none (image-text methods then template them from the class names).
    captions: list[str] | None = None

    @staticmethod
    def of(data: Any, use_unlabeled: bool = False) -> DataInfo:
        """The info of a :class:`DatasetSplits`."""
        n = len(data.pretrain_images(use_unlabeled))
        parts = [data.train] + ([data.unlabeled] if use_unlabeled and data.unlabeled else [])
        captions = None
        if all(p.captions is not None for p in parts):
            captions = [c for p in parts for c in p.captions]
        return DataInfo(data.num_classes, data.image_size, data.classes, n, captions)


class Method(nn.Module):
    """Base class of every method and baseline.

    Subclasses set ``trainable = False`` when there is nothing to train (the ``random``
    and ``pixels`` baselines); the trainer then skips straight to evaluation.
    ``capabilities`` names the interfaces beyond this one a method offers, which
    evaluators may need: ``text`` (:class:`ssl_bench.text.ImageTextMethod`) and
    ``token_removal`` (:class:`ssl_bench.token_removal.TokenRemoval`).
    """

    trainable: bool = True
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, cfg: Config, info: DataInfo) -> None:
        super().__init__()
        self.cfg = cfg
        self.info = info
        self.backbone: Backbone = build_backbone(cfg.model, info.image_size)

    # ---- what the trainer calls ------------------------------------------------
    def views(self) -> list[ViewSpec]:
        """The views made from each batch, in the order ``training_step`` receives them."""
        return [ViewSpec(), ViewSpec()]

    def training_step(
        self, views: list[Tensor], labels: Tensor, step: int, total_steps: int
    ) -> dict[str, Tensor]:
        """Return ``{"loss": scalar, **other terms to log}`` for one batch.

        ``views`` are (B, 3, s, s) normalised floats; ``labels`` (B,) are -1 where unknown.
        ``step`` counts optimiser steps, so schedules are pure functions of it.
        """
        raise NotImplementedError

    def training_targets(self, labels: Tensor) -> Tensor:
        """What ``training_step`` receives as ``labels`` for each pre-training image, given
        their class labels (N,). The labels themselves by default; image-text methods
        return their captions' token ids (N, L)."""
        return labels

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Runs after each real optimiser step (after accumulation): EMA updates go here."""

    def param_groups(self) -> list[dict[str, Any]]:
        """Parameter groups for the optimiser: no weight decay on norms and biases."""
        decay, no_decay = get_weight_decay_parameters([self])
        return [
            {"name": "decay", "params": [p for p in decay if p.requires_grad]},
            {
                "name": "no_decay",
                "params": [p for p in no_decay if p.requires_grad],
                "weight_decay": 0.0,
            },
        ]

    # ---- what the evaluator calls ----------------------------------------------
    def embed(self, x: Tensor) -> Tensor:
        """Frozen features for kNN and linear probes: (B, 3, H, W) -> (B, D)."""
        return self.backbone(x)

    def embed_spatial(self, x: Tensor) -> Tensor:
        """Frozen dense features for the segmentation probe: (B, D, h, w)."""
        return self.backbone.forward_spatial(x)

    def embed_head(self, x: Tensor) -> Tensor | None:
        """Output of the embedding head the loss compares (collapse diagnostics), if any."""
        return self.head_of(self.backbone(x))

    def head_of(self, pooled: Tensor) -> Tensor | None:
        """The embedding head on pooled features (B, D) -> (B, d); None = no head."""
        return None

    def ema_backbone(self) -> Backbone | None:
        """The EMA teacher's backbone (what ``ssl-bench export --teacher`` writes), if any."""
        return None

    def features(self, x: Tensor) -> dict[str, Tensor | None]:
        """Every kind of frozen feature from one backbone pass (what the feature cache
        stores): ``pooled`` (B, D), ``spatial`` (B, D, h, w) and ``head`` (B, d) or None."""
        pooled, spatial = self.backbone.forward_features(x)
        return {"pooled": pooled, "spatial": spatial, "head": self.head_of(pooled)}


MethodFactory = Callable[[Config, DataInfo], Method]


def build_method(cfg: Config, info: DataInfo) -> Method:
    return METHODS.get(cfg.method.name).factory(cfg, info)
