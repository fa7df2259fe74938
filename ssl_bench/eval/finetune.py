"""Fine-tuning probe: a copy of the backbone trained end to end with a linear head.

The protocol peers report beside linear probing (SimCLR, BYOL: "fine-tuned" rows): the
pre-trained backbone and a fresh linear classifier are trained together on the labelled
train split with crop + flip views, AdamW and a cosine schedule, for a fixed small budget
(``eval.finetune_epochs``). Each learning rate of ``eval.finetune_lrs`` trains one model
from the same start; the one with the best val top-1 is scored once on test. The run's own
model is never changed (the probe trains a deep copy).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_bench.data.views import ViewGenerator, ViewSpec, resolve_views
from ssl_bench.eval.features import extract_features
from ssl_bench.eval.knn import topk_accuracy
from ssl_bench.runtime import autocast
from ssl_bench.schedules import warmup_cosine

PROTOCOL = (
    "backbone + linear head trained end to end on the train split (crop + flip views, "
    "AdamW, weight decay {wd}, cosine lr over {epochs} epochs at batch {batch}), lr chosen "
    "on val from {lrs}, test top-1 of that model"
)
WEIGHT_DECAY = 0.05


class _Classifier(nn.Module):
    """Backbone + linear head with the ``features`` interface of a method (pooled only)."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, C) logits
        return self.head(self.backbone(x))

    def features(self, x: Tensor) -> dict[str, Tensor | None]:
        return {"pooled": self(x), "spatial": None, "head": None}


def _top1(
    model: _Classifier, images: Tensor, labels: Tensor, views: ViewGenerator, **kw: Any
) -> float:
    logits = extract_features(model, images, views, spatial=False, **kw)["pooled"]
    return topk_accuracy(logits, labels, 1)


def finetune_probe(
    backbone: nn.Module,
    data: Any,  # DatasetSplits
    aug: Any,  # AugConfig: the crop and flip of the run
    views: ViewGenerator,
    device: torch.device,
    epochs: int,
    lrs: tuple[float, ...],
    batch_size: int,
    seed: int,
    precision: str = "auto",
    eval_batch: int = 512,
) -> dict[str, Any]:
    """Fine-tune a copy of ``backbone`` once per lr; return val/test top-1 and the protocol."""
    specs = resolve_views([ViewSpec(jitter_p=0.0, gray_p=0.0, blur_p=0.0)], aug, data.image_size)
    images, labels = data.train.images, data.train.labels
    n = len(images)
    steps_per_epoch = max(1, n // batch_size)
    total = epochs * steps_per_epoch
    kw = {"device": device, "batch_size": eval_batch, "precision": precision}
    val_top1: dict[str, float] = {}
    best: tuple[float, float, _Classifier] | None = None
    for lr in lrs:
        torch.manual_seed(seed)  # the same head init and batch order for every lr
        model = _Classifier(copy.deepcopy(backbone), data.num_classes).to(device).train()
        for p in model.parameters():
            p.requires_grad_(True)  # an EMA teacher's copy may have been frozen
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
        g = torch.Generator(device=device).manual_seed(seed)
        order_g = torch.Generator().manual_seed(seed)
        step = 0
        for _ in range(epochs):
            order = torch.randperm(n, generator=order_g)
            for i in range(steps_per_epoch):
                idx = order[i * batch_size : (i + 1) * batch_size]
                (x,) = views(images[idx].to(device), specs, g)
                for group in opt.param_groups:
                    group["lr"] = warmup_cosine(step, total, steps_per_epoch, lr, 0.0)
                with autocast(device, precision):
                    loss = F.cross_entropy(model(x).float(), labels[idx].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
        score = _top1(model, data.val.images, data.val.labels, views, **kw)
        val_top1[f"{lr:g}"] = score
        if best is None or score > best[0]:
            best = (score, lr, model)
    assert best is not None
    _, lr, model = best
    return {
        "top1": _top1(model, data.test.images, data.test.labels, views, **kw),
        "lr": lr,
        "val_top1": val_top1,
        "epochs": epochs,
        "protocol": PROTOCOL.format(
            wd=WEIGHT_DECAY, epochs=epochs, batch=batch_size, lrs=", ".join(f"{x:g}" for x in lrs)
        ),
    }
