"""Linear probe on frozen features (and, on request, on augmented views)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ssl_bench.evaluators import EvalContext, pct
from ssl_bench.registry import EVALUATORS


def _augmented_features(ctx: EvalContext):  # noqa: ANN202
    """features_of(uint8 batch, generator) for the augmented linear probe: crop + flip."""
    from ssl_bench.data.views import ViewSpec, resolve_views
    from ssl_bench.runtime import autocast

    method, device = ctx.method, ctx.device
    spec = resolve_views(
        [ViewSpec(jitter_p=0.0, gray_p=0.0, blur_p=0.0)], ctx.cfg.aug, ctx.data.image_size
    )

    @torch.no_grad()
    def features_of(images: Tensor, g: torch.Generator) -> Tensor:
        gen = torch.Generator(device=device).manual_seed(
            int(torch.randint(0, 2**31, (1,), generator=g))
        )
        (x,) = ctx.views(images.to(device), spec, gen)
        was = method.training
        method.eval()
        with autocast(device, ctx.cfg.train.precision):
            f = method.features(x)["pooled"].float().cpu()  # the feature cache's path
        method.train(was)
        return f

    return features_of


@EVALUATORS.register(
    "linear",
    "linear probe (L-BFGS logistic regression), L2 penalty chosen on val",
    order=20,
    headline={"eval.linear.top1": "linear top-1"},
    summary=lambda ev: [("linear probe top-1", pct(ev["linear"]["top1"]))],
    protocol="Linear: multinomial logistic regression (L-BFGS) on frozen features, L2 "
    "penalty chosen on the val split, refit on train+val, the test split scored once.",
)
def run(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.linear import augmented_linear_probe, linear_probe

    e, c, p, y = ctx.cfg.eval, ctx.data.num_classes, ctx.pooled, ctx.labels
    out = {
        "linear": linear_probe(p("train"), y("train"), p("val"), y("val"), p("test"), y("test"), c)
    }
    if e.linear_augmented:
        out["linear_augmented"] = augmented_linear_probe(
            _augmented_features(ctx),
            ctx.data.train.images,
            y("train"),
            p("train"),
            p("test"),
            y("test"),
            c,
            out["linear"]["weight_decay"],
            e.augmented_epochs,
            seed=ctx.cfg.train.seed,
        )
    return out
