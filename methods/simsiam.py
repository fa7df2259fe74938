"""SimSiam (Chen & He, 2021): BYOL without the EMA target, from lightly's parts.

Two views through one network (backbone + projector), a predictor on one side, and a
stop-gradient on the other: ``D(p0, sg(z1)) / 2 + D(p1, sg(z0)) / 2`` with D the
negative cosine similarity. Collapse switch (FACTS: linear 67.7% with stop-grad, 0.1%
without): ``stop_gradient: false``.

The file is also the proof of issue 17's "a method is one file": it composes lightly's
heads and loss, registers itself, and the generic tests (one step, resume, features)
cover it without a line elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules.heads import SimSiamPredictionHead, SimSiamProjectionHead
from torch import Tensor

from ssl_bench.config import Config, MethodConfig
from ssl_bench.data.views import ViewSpec
from ssl_bench.method import DataInfo, Method
from ssl_bench.optim import ADAMW_CPU
from ssl_bench.registry import METHODS


@dataclass
class SimSiamConfig(MethodConfig):
    proj_dim: int = 512  # paper: 2048 (CIFAR); CPU scale
    pred_hidden_dim: int = 128  # paper: 512, a bottleneck of proj_dim / 4
    stop_gradient: bool = True  # false: the collapse arm


@METHODS.register(
    "simsiam",
    "SimSiam: predictor + stop-gradient, no negatives, no EMA target",
    config=SimSiamConfig,
    # BYOL's CPU optimiser (Adam-style lr 3e-4 without weight decay), its closest relative.
    recipe={"optim": {**ADAMW_CPU, "lr": 3e-4, "lr_scaling": "none", "weight_decay": 0.0}},
)
class SimSiam(Method):
    def __init__(self, cfg: Config, info: DataInfo) -> None:
        super().__init__(cfg, info)
        m: SimSiamConfig = cfg.method  # type: ignore[assignment]
        self.m = m
        self.projection_head = SimSiamProjectionHead(self.backbone.dim, m.proj_dim, m.proj_dim)
        self.prediction_head = SimSiamPredictionHead(m.proj_dim, m.pred_hidden_dim, m.proj_dim)
        self.criterion = NegativeCosineSimilarity()

    def views(self) -> list[ViewSpec]:
        return [ViewSpec(), ViewSpec()]  # SimSiam: the same augmentation for both views

    def head_of(self, pooled: Tensor) -> Tensor:
        return self.projection_head(pooled)

    def training_step(
        self, views: list[Tensor], labels: Tensor, step: int, total_steps: int
    ) -> dict[str, Tensor]:
        z0, z1 = (self.embed_head(v) for v in views)  # (B, d) each
        p0, p1 = self.prediction_head(z0), self.prediction_head(z1)
        if self.m.stop_gradient:
            z0, z1 = z0.detach(), z1.detach()
        # -1 when every prediction points at the other view's projection.
        loss = 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))
        return {"loss": loss}
