"""Runs the evaluators on one model and returns the ``eval`` section of summary.json.

Every number is stored beside the protocol parameters that produced it. All evaluators
read the same :class:`FeatureCache`, so features are extracted once per checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ssl_bench.config import Config
from ssl_bench.data.splits import DatasetSplits
from ssl_bench.data.views import ViewGenerator, ViewSpec, resolve_views
from ssl_bench.errors import UserError
from ssl_bench.eval.collapse import diagnostics
from ssl_bench.eval.factors import factors_eval
from ssl_bench.eval.features import FeatureCache
from ssl_bench.eval.finetune import finetune_probe
from ssl_bench.eval.knn import LIGHTLY_PRESET, knn_eval
from ssl_bench.eval.linear import augmented_linear_probe, linear_probe, low_shot_indices
from ssl_bench.eval.removal import removal_overlap, save_figures
from ssl_bench.eval.segmentation import seg_probe
from ssl_bench.eval.zeroshot import retrieval, zero_shot
from ssl_bench.method import Method
from ssl_bench.registry import DATASETS, METHODS
from ssl_bench.runtime import autocast
from ssl_bench.text import TEMPLATE, ImageTextMethod, template_captions

LOW_SHOT = {"1%": 0.01, "10%": 0.10}


def mask_datasets() -> list[str]:
    return [e.name for e in DATASETS.entries() if e.extra.get("has_masks")]


def methods_with(flag: str) -> str:
    return ", ".join(e.name for e in METHODS.entries() if e.extra.get(flag))


def _supported(ok: bool, explicit: bool, message: str) -> bool:
    """Whether to run an evaluator the method may not support: skip it quietly when it
    came from a default list, fail with ``message`` when the user asked for it."""
    if not ok and explicit:
        raise UserError(message)
    return ok


@torch.no_grad()
def _view_pairs(
    method: Method,
    data: DatasetSplits,
    cfg: Config,
    views: ViewGenerator,
    device: torch.device,
    n: int = 1000,
) -> dict[str, tuple[Tensor, Tensor]]:
    """Features (pooled, and head if any) of two augmented views (the method's first two)
    of the first n test images, for alignment: kind -> (view 0, view 1)."""
    specs = resolve_views(method.views(), cfg.aug, data.image_size)
    specs = (specs * 2)[:2]
    g = torch.Generator(device=device).manual_seed(cfg.train.seed)
    was = method.training
    method.eval()
    out: dict[str, tuple[list[Tensor], list[Tensor]]] = {}
    images = data.test.images[:n]
    for i in range(0, len(images), cfg.eval.batch_size):
        pair = views(images[i : i + cfg.eval.batch_size].to(device), specs, g)
        with autocast(device, cfg.train.precision):
            for side, v in enumerate(pair):
                for kind, f in method.features(v).items():
                    if f is not None and kind != "spatial":
                        out.setdefault(kind, ([], []))[side].append(f.float().cpu())
    method.train(was)
    return {kind: (torch.cat(a), torch.cat(b)) for kind, (a, b) in out.items()}


def _augmented_features(
    method: Method, cfg: Config, views: ViewGenerator, device: torch.device, size: int
):  # noqa: ANN202
    """features_of(uint8 batch, generator) for the augmented linear probe: crop + flip."""
    spec = resolve_views([ViewSpec(jitter_p=0.0, gray_p=0.0, blur_p=0.0)], cfg.aug, size)

    @torch.no_grad()
    def features_of(images: Tensor, g: torch.Generator) -> Tensor:
        gen = torch.Generator(device=device).manual_seed(
            int(torch.randint(0, 2**31, (1,), generator=g))
        )
        (x,) = views(images.to(device), spec, gen)
        was = method.training
        method.eval()
        with autocast(device, cfg.train.precision):
            f = method.features(x)["pooled"].float().cpu()  # the feature cache's path
        method.train(was)
        return f

    return features_of


def evaluate(
    method: Method,
    data: DatasetSplits,
    cfg: Config,
    views: ViewGenerator,
    device: torch.device,
    cache: FeatureCache,
    only: list[str],
    explicit: bool = False,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the evaluators in ``only``; ``explicit`` = the user named them (then asking for
    ``seg`` on a dataset without masks, or ``zeroshot`` of a method without a text tower,
    is an error rather than a skip). Figures go under ``out_dir`` (the run folder)."""
    e, c = cfg.eval, data.num_classes
    ys = {s: getattr(data, s).labels for s in ("train", "val", "test")}
    out: dict[str, Any] = {}

    def pooled(split: str) -> Tensor:
        return cache.get("pooled", split)

    if "knn" in only:
        out["knn"] = knn_eval(
            pooled("train"), ys["train"], pooled("test"), ys["test"], c, e.knn_k, e.knn_t
        )
        out["knn_lightly"] = knn_eval(
            pooled("train"),
            ys["train"],
            pooled("test"),
            ys["test"],
            c,
            LIGHTLY_PRESET["k"],
            LIGHTLY_PRESET["T"],
        )
    if "linear" in only:
        out["linear"] = linear_probe(
            pooled("train"), ys["train"], pooled("val"), ys["val"], pooled("test"), ys["test"], c
        )
        if e.linear_augmented:
            out["linear_augmented"] = augmented_linear_probe(
                _augmented_features(method, cfg, views, device, data.image_size),
                data.train.images,
                ys["train"],
                pooled("train"),
                pooled("test"),
                ys["test"],
                c,
                out["linear"]["weight_decay"],
                e.augmented_epochs,
                seed=cfg.train.seed,
            )
    if "lowshot" in only:
        out["lowshot"] = {}
        for name, fraction in LOW_SHOT.items():
            idx = low_shot_indices(ys["train"], fraction, cfg.train.seed)
            result = linear_probe(
                pooled("train")[idx],
                ys["train"][idx],
                pooled("val"),
                ys["val"],
                pooled("test"),
                ys["test"],
                c,
                refit_with_val=False,
            )
            result.update(fraction=fraction, labels=len(idx), subset_seed=cfg.train.seed)
            out["lowshot"][name] = result
    if "seg" in only:
        if data.has_masks:
            masks = {s: getattr(data, s).masks for s in ("train", "test")}
            out["seg"] = seg_probe(
                cache.get("spatial", "train"),
                masks["train"],
                cache.get("spatial", "test"),
                masks["test"],
                c + 1,
                e.seg_epochs,
                e.seg_lr,
                seed=cfg.train.seed,
                device=device,
            )
        elif explicit:
            raise UserError(
                f"the segmentation probe needs masks; dataset '{data.name}' has none; "
                f"datasets with masks: {', '.join(mask_datasets())}"
            )
    if "collapse" in only:
        pairs = _view_pairs(method, data, cfg, views, device)
        out["collapse"] = diagnostics(pooled("test"), *pairs["pooled"])
        out["collapse"]["note"] = "backbone features: std far below std_ref is normal after ReLU"
        if "head" in pairs:
            out["collapse_head"] = diagnostics(cache.get("head", "test"), *pairs["head"])
    if "factors" in only and _supported(
        data.test.factors is not None,
        explicit,
        f"the factors evaluator needs a dataset that records its generator factors (shapes); "
        f"'{data.name}' does not",
    ):
        out["factors"] = factors_eval(pooled("train"), pooled("test"), data.train, data.test)

    text = isinstance(method, ImageTextMethod)
    need_text = f"needs a method with a text tower ({methods_with('text')})"
    captions = data.test.captions or template_captions(ys["test"], data.classes)
    source = "dataset" if data.test.captions else f"template '{TEMPLATE}' from class names"
    if "zeroshot" in only and _supported(text, explicit, f"zeroshot {need_text}"):
        prompts = DATASETS.get(data.name).extra.get("prompts")
        out["zeroshot"] = zero_shot(
            method, cache.get("head", "test"), ys["test"], data.classes, prompts, device
        )
        out["zeroshot"]["captions"] = source
    if "retrieval" in only and _supported(text, explicit, f"retrieval {need_text}"):
        out["retrieval"] = retrieval(method, cache.get("head", "test"), captions, device)
        out["retrieval"]["captions"] = source
    if "finetune" in only:
        out["finetune"] = finetune_probe(
            method.backbone,
            data,
            cfg.aug,
            views,
            device,
            e.finetune_epochs,
            e.finetune_lrs,
            cfg.train.batch_size,
            cfg.train.seed,
            cfg.train.precision,
            e.batch_size,
        )
    removal = hasattr(method, "removal_scores")
    if "removal" in only and _supported(
        removal and data.has_masks,
        explicit,
        f"removal needs a token-removal method ({methods_with('token_removal')}) and a "
        f"dataset with masks ({', '.join(mask_datasets())})",
    ):
        out["removal"], attention, kept = removal_overlap(
            method, data.test.images, data.test.masks, views, device, seed=cfg.train.seed
        )
        if out_dir is not None:
            figures = save_figures(out_dir / "removal", data.test.images, attention, kept)
            out["removal"]["figures"] = [str(Path(f).relative_to(out_dir)) for f in figures]
    return out
