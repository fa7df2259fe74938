"""Collapse diagnostics: std vs 1/sqrt(d), RankMe, alignment and uniformity, on the
backbone's features and on the method's embedding head."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssl_bench.evaluators import EvalContext
from ssl_bench.registry import EVALUATORS


@torch.no_grad()
def view_pairs(ctx: EvalContext, n: int = 1000) -> dict[str, tuple[Tensor, Tensor]]:
    """Features (pooled, and head if any) of two augmented views (the method's first two)
    of the first n test images, for alignment: kind -> (view 0, view 1)."""
    from ssl_bench.data.views import training_views
    from ssl_bench.runtime import autocast

    method, cfg, device = ctx.method, ctx.cfg, ctx.device
    specs = training_views(method.views(), cfg.aug, ctx.data.image_size)
    specs = (specs * 2)[:2]
    g = torch.Generator(device=device).manual_seed(cfg.train.seed)
    was = method.training
    method.eval()
    out: dict[str, tuple[list[Tensor], list[Tensor]]] = {}
    images = ctx.data.test.images[:n]
    for i in range(0, len(images), cfg.eval.batch_size):
        pair = ctx.views(images[i : i + cfg.eval.batch_size].to(device), specs, g)
        with autocast(device, cfg.train.precision):
            for side, v in enumerate(pair):
                for kind, f in method.features(v).items():
                    if f is not None and kind != "spatial":
                        out.setdefault(kind, ([], []))[side].append(f.float().cpu())
    method.train(was)
    return {kind: (torch.cat(a), torch.cat(b)) for kind, (a, b) in out.items()}


def summary(ev: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, label in (("collapse", "backbone"), ("collapse_head", "head")):
        if key in ev:
            d = ev[key]
            rows.append(
                (
                    f"{label}: std / 1/sqrt(d), RankMe",
                    f"{d['std']:.3f} / {d['std_ref']:.3f}, {d['rankme']:.1f} of {d['dim']}",
                )
            )
    return rows


@EVALUATORS.register(
    "collapse",
    "std vs 1/sqrt(d), RankMe, alignment, uniformity on backbone and head features",
    order=60,
    headline={
        "eval.collapse.rankme": "RankMe (backbone)",
        "eval.collapse_head.std": "head std",
        "head_std_reference": "1/sqrt(d)",
        "eval.collapse_head.rankme": "RankMe (head)",
    },
    summary=summary,
    protocol="Head std and RankMe: the method's projection-head output on the test split.",
)
def run(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.collapse import diagnostics

    pairs = view_pairs(ctx)
    out = {"collapse": diagnostics(ctx.pooled("test"), *pairs["pooled"])}
    out["collapse"]["note"] = "backbone features: std far below std_ref is normal after ReLU"
    if "head" in pairs:
        out["collapse_head"] = diagnostics(ctx.cache.get("head", "test"), *pairs["head"])
    return out
