"""LoGo (Zhang et al., CVPR 2022): pull local crops to the global view, push locals apart.

Each image gives 2 global and ``n_local`` local crops. Three terms:

- global-global: each global embedding predicts the other global (InfoNCE over the batch);
- local-global: each local embedding predicts both globals, the global side as target;
- local-local *dissimilarity*: an affinity network ``a(z_i, z_j)`` learns, on detached
  embeddings, to score two local crops of the same image above two crops of different
  images; the encoder then minimises the affinity of its same-image local pairs (weight
  ``local_weight``, the paper's lambda), so local crops keep what makes them different.

Targets are the stop-gradient embeddings of the globals: from the online network itself
by default (``momentum_base: 0``), or from a momentum encoder (``momentum_base > 0``).
The affinity network only receives gradients from its own loss (its parameters are
detached in the encoder's term) and has its own learning rate and no weight decay
(``affinity_lr_scale``): in effect its own optimiser, while the trainer stays a single
generic loop. ``local_repulsion: false`` drops the third term: the plain multi-crop arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from lightly.models.modules.heads import SimCLRProjectionHead
from torch import Tensor, nn
from torch.func import functional_call

from ssl_bench.config import Config, MethodConfig, check_crop_scale, check_momentum
from ssl_bench.data.views import ViewSpec
from ssl_bench.ema import ema_update, frozen_copy, momentum
from ssl_bench.errors import UserError
from ssl_bench.method import DataInfo, Method
from ssl_bench.optim import ADAMW_CPU, split_group
from ssl_bench.registry import METHODS


@dataclass
class LoGoConfig(MethodConfig):
    VIEW_KEYS_OWNED: ClassVar[dict[str, str]] = {
        "aug.crop_min_scale": "method.global_scale and method.local_scale",
        "aug.crop_max_scale": "method.global_scale and method.local_scale",
    }
    n_local: int = 2  # FACTS: 2 global + 2 local crops
    # 0 = half the image size, as DINO's locals. FACTS has 32 px locals on CIFAR; at 16 px a
    # step costs 2.5 instead of 4 global-view units, and 10-epoch runs matched (kNN val
    # 35.8% at 16 px with stop-gradient targets).
    local_size: int = 0
    global_scale: tuple[float, float] = (0.4, 1.0)  # FACTS: scales as DINO
    local_scale: tuple[float, float] = (0.05, 0.4)
    temperature: float = 0.2  # InfoNCE temperature of the similarity terms
    proj_hidden_dim: int = 512
    proj_output_dim: int = 128  # the affinity network reads a pair: 2 x 128 = 256 inputs
    affinity_hidden_dim: int = 256  # FACTS: 256 -> 256 -> 256 -> 1, BN + ReLU
    local_repulsion: bool = True  # false: plain multi-crop (the ablation arm)
    local_weight: float = 1e-4  # FACTS: lambda = 1e-4 (SimSiam variant)
    affinity_lr_scale: float = 1.0  # affinity network lr = this x the encoder's lr
    # 0 = the stop-gradient online network (LoGo's SimSiam variant); > 0 = an EMA target
    # (its MoCo variant), cosine to 1. At CPU scale (~600 steps) an EMA target barely leaves
    # its random init: 10-epoch runs reached kNN val 24.8% with 0.99 against 35.8% with 0.
    momentum_base: float = 0.0

    def validate(self) -> None:
        if self.n_local < 2 and self.local_repulsion:
            raise UserError(
                f"method.n_local must be >= 2 for local_repulsion (pairs of local crops), "
                f"got {self.n_local}"
            )
        if self.temperature <= 0:
            raise UserError(f"method.temperature must be > 0, got {self.temperature}")
        if self.local_weight < 0:
            raise UserError(f"method.local_weight must be >= 0, got {self.local_weight}")
        check_momentum("method.momentum_base", self.momentum_base)
        check_crop_scale("method.global_scale", self.global_scale)
        check_crop_scale("method.local_scale", self.local_scale)


RECIPE = {
    "optim": ADAMW_CPU,
    # Two 32 px globals + two 16 px locals cost 1.25x SimCLR's two views per image: 16 epochs
    # keep the default run within 4 minutes on 2 CPU cores.
    "train": {"epochs": 16},
}


class Affinity(nn.Module):
    """a(z_i, z_j): a scalar logit for "these two local crops come from the same image"."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, a: Tensor, b: Tensor) -> Tensor:  # (B, d), (B, d) -> (B,)
        return self.net(torch.cat([a, b], dim=1)).squeeze(1)


def info_nce(query: Tensor, key: Tensor, temperature: float) -> Tensor:
    """Cross-entropy of each query against its own key among the batch's keys."""
    logits = F.normalize(query, dim=1) @ F.normalize(key, dim=1).T / temperature  # (B, B)
    return F.cross_entropy(logits, torch.arange(len(query), device=query.device))


@METHODS.register(
    "logo",
    "LoGo: local-global multi-crop with learned local-local repulsion",
    config=LoGoConfig,
    recipe=RECIPE,
)
class LoGo(Method):
    def __init__(self, cfg: Config, info: DataInfo) -> None:
        super().__init__(cfg, info)
        m: LoGoConfig = cfg.method  # type: ignore[assignment]
        self.m = m
        self.projection_head = SimCLRProjectionHead(
            self.backbone.dim, m.proj_hidden_dim, m.proj_output_dim
        )
        self.ema = m.momentum_base > 0
        if self.ema:  # a momentum encoder; none when the targets come from the online network
            self.target_backbone = frozen_copy(self.backbone)
            self.target_projection_head = frozen_copy(self.projection_head)
        # Built only when used, so the plain multi-crop arm has no idle parameters.
        self.affinity = (
            Affinity(m.proj_output_dim, m.affinity_hidden_dim) if m.local_repulsion else None
        )
        self.local_size = m.local_size or max(8, info.image_size // 2)

    def ema_backbone(self) -> nn.Module | None:
        return self.target_backbone if self.ema else None

    def views(self) -> list[ViewSpec]:
        m = self.m
        globals_ = [ViewSpec(crop_scale=m.global_scale, blur_p=0.5)] * 2
        local = ViewSpec(size=self.local_size, crop_scale=m.local_scale, blur_p=0.5)
        return globals_ + [local] * m.n_local

    def param_groups(self) -> list[dict[str, Any]]:
        """The affinity network is its own group: own lr scale, no weight decay."""
        if self.affinity is None:
            return super().param_groups()
        return split_group(
            super().param_groups(),
            self.affinity.parameters(),
            "_affinity",
            weight_decay=0.0,
            lr_scale=self.m.affinity_lr_scale,
        )

    def head_of(self, pooled: Tensor) -> Tensor:
        return self.projection_head(pooled)

    def momentum(self, step: int, total_steps: int) -> float:
        return momentum(step, total_steps, self.m.momentum_base)

    @torch.no_grad()
    def targets(self, globals_: list[Tensor], g0: Tensor, g1: Tensor) -> tuple[Tensor, Tensor]:
        """Stop-gradient embeddings of the globals, from the momentum encoder if any."""
        if not self.ema:
            return g0.detach(), g1.detach()
        t0, t1 = (self.target_projection_head(self.target_backbone(v)) for v in globals_)
        return t0, t1

    def affinity_terms(self, l0: Tensor, l1: Tensor) -> tuple[Tensor, Tensor]:
        """(affinity network loss, encoder repulsion) for two local crops per image.

        The network's loss reads detached embeddings: same-image pairs (l0[i], l1[i]) are
        positives, (l0[i], l1[i+1]) negatives (softplus = logistic loss). The encoder's term
        calls the network with detached parameters, so it moves only the embeddings.
        """
        assert self.affinity is not None
        l0_d, l1_d = l0.detach(), l1.detach()
        pos = self.affinity(l0_d, l1_d)  # (B,)
        neg = self.affinity(l0_d, l1_d.roll(1, dims=0))  # (B,)
        net_loss = F.softplus(-pos).mean() + F.softplus(neg).mean()
        frozen = {k: v.detach() for k, v in self.affinity.named_parameters()}
        repulsion = functional_call(self.affinity, frozen, (l0, l1)).mean()
        return net_loss, repulsion

    def training_step(
        self, views: list[Tensor], labels: Tensor, step: int, total_steps: int
    ) -> dict[str, Tensor]:
        m = self.m
        g0, g1 = (self.embed_head(v) for v in views[:2])  # (B, d) each
        locals_ = list(self.embed_head(torch.cat(views[2:])).chunk(m.n_local)) if m.n_local else []
        t0, t1 = self.targets(views[:2], g0, g1)
        global_global = (info_nce(g0, t1, m.temperature) + info_nce(g1, t0, m.temperature)) / 2
        local_global = torch.zeros((), device=g0.device)
        for z in locals_:
            local_global = local_global + (
                info_nce(z, t0, m.temperature) + info_nce(z, t1, m.temperature)
            ) / (2 * len(locals_))
        out = {"global_global": global_global.detach(), "local_global": local_global.detach()}
        loss = global_global + local_global
        if m.local_repulsion:
            net_loss, repulsion = self.affinity_terms(locals_[0], locals_[1])
            loss = loss + m.local_weight * repulsion + net_loss
            out |= {"affinity_loss": net_loss.detach(), "local_affinity": repulsion.detach()}
        return {"loss": loss, **out}

    @torch.no_grad()
    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        if not self.ema:
            return
        pairs = [
            (self.backbone, self.target_backbone),
            (self.projection_head, self.target_projection_head),
        ]
        ema_update(pairs, self.momentum(step, total_steps))
