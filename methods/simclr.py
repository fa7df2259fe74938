"""SimCLR (Chen et al., 2020): two symmetric views, NT-Xent over 2N embeddings.

``negatives: false`` keeps only NT-Xent's positive term (pull the two views together,
push nothing apart): the collapse study of question 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import SimCLRProjectionHead
from torch import Tensor

from ssl_bench.config import Config, MethodConfig
from ssl_bench.data.views import ViewSpec
from ssl_bench.errors import UserError
from ssl_bench.method import DataInfo, Method
from ssl_bench.optim import ADAMW_CPU
from ssl_bench.registry import METHODS


@dataclass
class SimCLRConfig(MethodConfig):
    temperature: float = 0.2  # FACTS: 0.1-0.5; 0.2 on CIFAR in solo-learn
    negatives: bool = True  # false: positive term only (collapses, question 5)
    proj_hidden_dim: int = 512  # paper: 2048; CPU scale
    proj_output_dim: int = 128  # paper: 128

    def validate(self) -> None:
        if self.temperature <= 0:
            raise UserError(f"method.temperature must be > 0, got {self.temperature}")


RECIPE = {
    "optim": ADAMW_CPU,
}


@METHODS.register(
    "simclr",
    "SimCLR: NT-Xent contrastive loss with in-batch negatives",
    config=SimCLRConfig,
    recipe=RECIPE,
)
class SimCLR(Method):
    def __init__(self, cfg: Config, info: DataInfo) -> None:
        super().__init__(cfg, info)
        m: SimCLRConfig = cfg.method  # type: ignore[assignment]
        self.projection_head = SimCLRProjectionHead(
            self.backbone.dim, m.proj_hidden_dim, m.proj_output_dim
        )
        # Negatives are gathered across ranks under DDP (phase 2).
        self.criterion = NTXentLoss(temperature=m.temperature, gather_distributed=True)
        self.temperature, self.negatives = m.temperature, m.negatives

    def views(self) -> list[ViewSpec]:
        return [ViewSpec(blur_p=0.5), ViewSpec(blur_p=0.5)]

    def head_of(self, pooled: Tensor) -> Tensor:
        return self.projection_head(pooled)

    def training_step(
        self, views: list[Tensor], labels: Tensor, step: int, total_steps: int
    ) -> dict[str, Tensor]:
        z0, z1 = (self.embed_head(v) for v in views)  # (B, d) each
        if self.negatives:
            loss = self.criterion(z0, z1)
        else:  # NT-Xent's numerator alone: -cos(z0, z1) / T
            loss = -F.cosine_similarity(z0, z1, dim=1).mean() / self.temperature
        return {"loss": loss}
