"""DINO (Caron et al., 2021): self-distillation with no labels, global + local crops.

The student sees 2 global crops and ``n_local`` smaller local crops; the EMA teacher
sees the globals only. lightly's ``DINOLoss`` sums the cross-entropy over every pair of
(teacher global i, student view j != i), with a centred, sharpened teacher.
Schedules are pure functions of the step: teacher temperature (linear warm-up), EMA
momentum (cosine to 1), weight decay (cosine, via ``optim.weight_decay_end``) and the
frozen last layer during the first epoch(s).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from lightly.loss import DINOLoss
from lightly.models.modules.heads import DINOProjectionHead
from torch import Tensor

from ssl_bench.backbones import ViT
from ssl_bench.config import Config, MethodConfig, check_crop_scale, check_momentum
from ssl_bench.data.sampler import steps_per_epoch
from ssl_bench.data.views import ViewSpec
from ssl_bench.ema import ema_update, frozen_copy, momentum
from ssl_bench.errors import UserError
from ssl_bench.method import DataInfo, Method
from ssl_bench.optim import split_group
from ssl_bench.registry import METHODS


@dataclass
class DINOConfig(MethodConfig):
    VIEW_KEYS_OWNED: ClassVar[dict[str, str]] = {
        "aug.crop_min_scale": "method.global_scale and method.local_scale",
        "aug.crop_max_scale": "method.global_scale and method.local_scale",
    }
    n_local: int = 4  # local crops per image (paper: 6-10)
    local_size: int = 0  # 0 = half the image size (paper: 96 px locals for 224 px globals)
    global_scale: tuple[float, float] = (0.4, 1.0)  # FACTS
    local_scale: tuple[float, float] = (0.05, 0.4)  # FACTS
    hidden_dim: int = 512  # paper 2048; CPU scale
    bottleneck_dim: int = 128  # paper 256
    out_dim: int = 2048  # K; paper 65536
    student_temp: float = 0.1  # FACTS
    teacher_temp: float = 0.07  # FACTS: 0.04 warming to 0.07
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_epochs: int = 5  # FACTS: 30 of 100+ epochs; a quarter of ours
    center_momentum: float = 0.9  # FACTS
    momentum_base: float = 0.996  # FACTS: EMA 0.996 -> 1, cosine
    freeze_last_layer_epochs: int = 1  # FACTS: last layer frozen during the first epoch

    def validate(self) -> None:
        if self.n_local < 0:
            raise UserError(f"method.n_local must be >= 0, got {self.n_local}")
        check_momentum("method.momentum_base", self.momentum_base)
        check_crop_scale("method.global_scale", self.global_scale)
        check_crop_scale("method.local_scale", self.local_scale)


# The paper's recipe (FACTS: AdamW 5e-4 * bs/256, weight decay 0.04 -> 0.4, teacher temp
# 0.04 -> 0.07, EMA 0.996 -> 1, 2 globals + locals) ended at random level on `shapes`
# within a CPU budget. What learns (benchmarks/results/recipes.md, 2026-12-02): BYOL's
# optimiser (AdamW, no weight decay), a sharp constant teacher (0.04) and batch 64 for
# many steps, without local crops: with 4 locals, 16 epochs, kNN-on-val stayed at its
# initial ~30% for 1,250 steps (`experiments/multicrop.yaml` measures the locals).
# lr 6e-4 with the paper's EMA 0.996 (2026-12-06; it was 3e-4 with EMA 0.99): on `shapes`
# kNN 81.9 +- 0.8 against 70.4 +- 6.1 (3 seeds, same fp32 sitting, same time), and on
# `shapes_noisy` the faster 0.99 teacher left one seed of three stuck in a few prototypes.
RECIPE = {
    "optim": {
        "name": "adamw",
        "lr": 6e-4,
        "lr_scaling": "none",
        "weight_decay": 0.0,
        "weight_decay_end": None,
        "warmup_epochs": 1.0,
    },
    "method": {
        "n_local": 0,
        "teacher_temp": 0.04,
        "warmup_teacher_temp": 0.04,
    },
    # 20 epochs at the 24 px views of `shapes`: 224-235 s wall in fp32 on a 2-core AMD
    # EPYC (AVX2), within the 4-minute budget; 95 s of training in bf16 on an AMX Xeon.
    "train": {"epochs": 20, "batch_size": 64},
}


def dino_head(dim: int, hidden: int, bottleneck: int, out: int, vit: bool) -> DINOProjectionHead:
    """lightly's DINO head on ``dim`` features (BatchNorm inside for CNNs only), without
    the FutureWarning lightly's use of the deprecated weight_norm raises."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.nn.utils.weight_norm`", FutureWarning)
        return DINOProjectionHead(dim, hidden, bottleneck, out, batch_norm=not vit)


@METHODS.register(
    "dino",
    "DINO: EMA teacher self-distillation, global + local crops",
    config=DINOConfig,
    recipe=RECIPE,
)
class DINO(Method):
    def __init__(self, cfg: Config, info: DataInfo) -> None:
        super().__init__(cfg, info)
        m: DINOConfig = cfg.method  # type: ignore[assignment]
        self.m = m
        self.head = self.make_head()
        self.teacher_backbone = frozen_copy(self.backbone)
        # weight_norm modules cannot be deep-copied: build a twin and copy the weights.
        self.teacher_head = frozen_copy(self.head, make=self.make_head)
        self.criterion = DINOLoss(
            m.out_dim,
            teacher_temp=m.teacher_temp,
            student_temp=m.student_temp,
            center_momentum=m.center_momentum,
        )
        self.local_size = m.local_size or max(8, info.image_size // 2)
        # Epoch-based settings become step counts (schedules are functions of the step).
        # The trainer's own count (optimiser steps; accumulation does not change it).
        self.steps_per_epoch = max(1, steps_per_epoch(info.num_train, cfg.train.batch_size))

    def make_head(self) -> DINOProjectionHead:
        m = self.m
        vit = isinstance(self.backbone, ViT)  # lightly/DINO: no BatchNorm in a ViT's head
        return dino_head(self.backbone.dim, m.hidden_dim, m.bottleneck_dim, m.out_dim, vit)

    def ema_backbone(self) -> torch.nn.Module:
        return self.teacher_backbone

    def views(self) -> list[ViewSpec]:
        m = self.m
        globals_ = [
            ViewSpec(crop_scale=m.global_scale, blur_p=1.0),
            ViewSpec(crop_scale=m.global_scale, blur_p=0.1, solarize_p=0.2),
        ]
        local = ViewSpec(size=self.local_size, crop_scale=m.local_scale, blur_p=0.5)
        return globals_ + [local] * m.n_local

    def param_groups(self) -> list[dict[str, Any]]:
        """The head's last layer is frozen (lr 0) for ``freeze_last_layer_epochs``."""
        freeze = self.m.freeze_last_layer_epochs * self.steps_per_epoch
        last = self.head.last_layer.parameters()
        return split_group(super().param_groups(), last, "_last_layer", freeze_until_step=freeze)

    def head_of(self, pooled: Tensor) -> Tensor:
        return self.head(pooled)

    def teacher_temp(self, step: int) -> float:
        warmup = self.m.warmup_teacher_temp_epochs * self.steps_per_epoch
        if step >= warmup:
            return self.m.teacher_temp
        return self.m.warmup_teacher_temp + (self.m.teacher_temp - self.m.warmup_teacher_temp) * (
            step / warmup
        )

    def training_step(
        self, views: list[Tensor], labels: Tensor, step: int, total_steps: int
    ) -> dict[str, Tensor]:
        globals_, locals_ = views[:2], views[2:]
        with torch.no_grad():  # the teacher sees the global crops only
            teacher_out = [self.teacher_head(self.teacher_backbone(v)) for v in globals_]
        student_out = [self.embed_head(v) for v in globals_]
        if locals_:  # all local crops share a size: one backbone pass
            student_out += list(self.embed_head(torch.cat(locals_)).chunk(len(locals_)))
        temp = self.teacher_temp(step)
        loss = self.criterion(teacher_out, student_out, teacher_temp=temp)
        return {"loss": loss, "teacher_temp": torch.tensor(temp)}

    @torch.no_grad()
    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        pairs = [(self.backbone, self.teacher_backbone), (self.head, self.teacher_head)]
        ema_update(pairs, momentum(step, total_steps, self.m.momentum_base))
