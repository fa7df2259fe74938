"""BYOL (Grill et al., 2020): online network + predictor regress an EMA target network.

Collapse switches for question 6: ``predictor: false`` removes the predictor;
``momentum_base`` sets the target's EMA rate, from 0 (target = online network, stop-grad)
to 1 (target frozen at its random init). ``momentum_schedule: cosine`` raises it to 1
over training as in the paper; ``constant`` holds it at ``momentum_base``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules.heads import BYOLPredictionHead, BYOLProjectionHead
from torch import Tensor, nn

from ssl_bench.config import Config, MethodConfig, check_momentum
from ssl_bench.data.views import ViewSpec
from ssl_bench.ema import SCHEDULES, ema_update, frozen_copy, momentum, scaled_momentum
from ssl_bench.errors import UserError, unknown
from ssl_bench.method import DataInfo, Method
from ssl_bench.optim import ADAMW_CPU, split_group
from ssl_bench.registry import METHODS


@dataclass
class BYOLConfig(MethodConfig):
    proj_hidden_dim: int = 1024  # paper: 4096; CPU scale
    proj_output_dim: int = 256  # paper: 256
    predictor: bool = True  # false: no predictor (collapses, BYOL Table 5b)
    momentum_base: float = 0.99  # FACTS: tau_base = 0.99
    # cosine: tau_base -> 1 (paper) | constant (lightly's CIFAR-10 benchmark, byol-pytorch;
    # the setting of every screen that kept the head alive, benchmarks/results/recipes.md)
    momentum_schedule: str = "constant"
    # The EMA scaling rule (Busbridge et al. 2023), opt-in: the train.batch_size at which
    # momentum_base holds; at batch B the rate is momentum_base ** (B / momentum_batch), so
    # the target moves as far per epoch at any batch (64: `--batch-size 256` gets
    # 0.99 ** 4). 0 (default): momentum_base at every batch. Not the default: at batch 256
    # it did not make BYOL learn in 16 epochs (kNN 37.7 against 37.3 without; with the
    # sqrt lr rule 39.1; benchmarks/results/recipes.md, 2026-12-06).
    momentum_batch: int = 0
    # lr multiplier of the predictor (Tian et al. 2021; SimSiam, DirectPred: 10). 30 on the
    # shapes_easy testbed, 5 epochs, seeds 0-2: kNN 69.3 / 69.9 / 69.9 against 53.6 / 50.0 /
    # 58.5 at 1 (benchmarks/results/recipes.md); on `shapes` it changes nothing (21.7 vs 21.5).
    predictor_lr_scale: float = 30.0
    # true: both views go through the networks as one batch of 2B, so BatchNorm normalises
    # them together (byol-pytorch, solo-learn); false: one batch per view (lightly's example)
    joint_views: bool = True

    def validate(self) -> None:
        check_momentum("method.momentum_base", self.momentum_base)
        if self.momentum_batch < 0:
            raise UserError(f"method.momentum_batch must be >= 0, got {self.momentum_batch}")
        if self.momentum_schedule not in SCHEDULES:
            raise unknown("method.momentum_schedule", self.momentum_schedule, SCHEDULES)


# The shared CPU AdamW recipe (lr 3e-3 at batch 256) collapsed BYOL's projector to ~5 of
# 128 dimensions on `shapes` and lost 15 kNN points on the digits testbed; Adam at 3e-4
# without weight decay (byol-pytorch's setting; byol-pytorch #44: BYOL wants ~3e-4 with
# Adam) keeps it at ~32 of 256 (benchmarks/results/recipes.md).
RECIPE = {
    "optim": {**ADAMW_CPU, "lr": 3e-4, "lr_scaling": "none", "weight_decay": 0.0},
    # Batch 64 x 20 epochs (1,560 steps): at batch 128 the same images in half the steps
    # gained 8 kNN points over the untrained backbone, at batch 64 22 (15 epochs) and 29
    # (20 epochs) (benchmarks/results/recipes.md, `shapes` = the notebook's v_wide_big).
    # 16 epochs since the 24 px views of `shapes` (fp32 Ice Lake, seeds 0-2: 60.7 / 65.3 /
    # 55.9 kNN, 83.4 / 86.0 / 80.1 linear, 139-169 s): 20 epochs gain ~6 kNN points but run
    # past the 3-minute budget of a default run on CPUs without bf16.
    "train": {"epochs": 16, "batch_size": 64},
    # No solarisation (the paper solarises the second view with p 0.2): on `shapes_noisy`
    # BYOL without it gained +3.7 +- 2.5 kNN points paired over 6 seeds, every seed up
    # (linear +3.1 +- 2.8; fp32 AMD EPYC, benchmarks/results/recipes.md, 2026-12-07). A
    # paper-faithful run at GPU scale sets `--set aug.solarize=true`.
    "aug": {"solarize": False},
}


@METHODS.register(
    "byol", "BYOL: predictor + EMA target network, no negatives", config=BYOLConfig, recipe=RECIPE
)
class BYOL(Method):
    def __init__(self, cfg: Config, info: DataInfo) -> None:
        super().__init__(cfg, info)
        m: BYOLConfig = cfg.method  # type: ignore[assignment]
        self.projection_head = BYOLProjectionHead(
            self.backbone.dim, m.proj_hidden_dim, m.proj_output_dim
        )
        self.prediction_head: nn.Module = (
            BYOLPredictionHead(m.proj_output_dim, m.proj_hidden_dim, m.proj_output_dim)
            if m.predictor
            else nn.Identity()
        )
        self.target_backbone = frozen_copy(self.backbone)
        self.target_projection_head = frozen_copy(self.projection_head)
        self.criterion = NegativeCosineSimilarity()
        self.m = m
        # The EMA rate this batch size gets from momentum_base (the scaling rule).
        self.tau_base = scaled_momentum(m.momentum_base, cfg.train.batch_size, m.momentum_batch)

    def param_groups(self) -> list[dict]:
        groups = super().param_groups()
        if self.m.predictor_lr_scale == 1.0 or not self.m.predictor:
            return groups
        return split_group(
            groups,
            self.prediction_head.parameters(),
            "_predictor",
            lr_scale=self.m.predictor_lr_scale,
        )

    def ema_backbone(self) -> nn.Module:
        return self.target_backbone

    def views(self) -> list[ViewSpec]:
        # FACTS: view 1 blur p=1.0, solarise p=0; view 2 blur p=0.1, solarise p=0.2.
        return [ViewSpec(blur_p=1.0, solarize_p=0.0), ViewSpec(blur_p=0.1, solarize_p=0.2)]

    def head_of(self, pooled: Tensor) -> Tensor:
        return self.projection_head(pooled)

    def momentum(self, step: int, total_steps: int) -> float:
        return momentum(step, total_steps, self.tau_base, self.m.momentum_schedule)

    def training_step(
        self, views: list[Tensor], labels: Tensor, step: int, total_steps: int
    ) -> dict[str, Tensor]:
        if self.m.joint_views:
            x = torch.cat(views)  # (2B, 3, s, s)
            p0, p1 = self.prediction_head(self.embed_head(x)).chunk(2)  # (B, d) each
            with torch.no_grad():
                z0, z1 = self.target_projection_head(self.target_backbone(x)).chunk(2)
        else:
            p0, p1 = (self.prediction_head(self.embed_head(v)) for v in views)  # (B, d) each
            with torch.no_grad():
                z0, z1 = (self.target_projection_head(self.target_backbone(v)) for v in views)
        # Symmetric 2 - 2 cos, averaged over the two directions: 0 when aligned.
        loss = 2 + self.criterion(p0, z1) + self.criterion(p1, z0)
        return {"loss": loss, "tau": torch.tensor(self.momentum(step, total_steps))}

    @torch.no_grad()
    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        pairs = [
            (self.backbone, self.target_backbone),
            (self.projection_head, self.target_projection_head),
        ]
        ema_update(pairs, self.momentum(step, total_steps))
