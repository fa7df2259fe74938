"""Zero-shot classification and image-text retrieval (image-text methods)."""

from __future__ import annotations

from typing import Any

from ssl_bench.evaluators import EvalContext, pct
from ssl_bench.registry import DATASETS, EVALUATORS


def _captions(ctx: EvalContext) -> tuple[list[str], str]:
    from ssl_bench.text import TEMPLATE, template_captions

    test = ctx.data.test
    if test.captions:
        return test.captions, "dataset"
    return template_captions(
        test.labels, ctx.data.classes
    ), f"template '{TEMPLATE}' from class names"


def zeroshot_summary(ev: dict[str, Any]) -> list[tuple[str, str]]:
    z = ev["zeroshot"]
    return [("zero-shot top-1", f"{pct(z['top1'])} (chance {100 * z['chance']:.0f}%)")]


@EVALUATORS.register(
    "zeroshot",
    "zero-shot top-1: nearest class-prompt embedding (image-text methods)",
    order=50,
    needs=("text",),
    headline={"eval.zeroshot.top1": "zero-shot top-1"},
    summary=zeroshot_summary,
    protocol="Zero-shot: nearest class-prompt embedding.",
)
def zeroshot(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.zeroshot import zero_shot

    prompts = DATASETS.get(ctx.data.name).extra.get("prompts")
    out = zero_shot(
        ctx.method,
        ctx.cache.get("head", "test"),
        ctx.labels("test"),
        ctx.data.classes,
        prompts,
        ctx.device,
    )
    out["captions"] = _captions(ctx)[1]
    return {"zeroshot": out}


def retrieval_summary(ev: dict[str, Any]) -> list[tuple[str, str]]:
    r = {k: pct(v) for k, v in ev["retrieval"].items() if "_r" in k}
    return [
        (
            "retrieval R@1 / R@5",
            f"image->text {r['image_to_text_r1']} / {r['image_to_text_r5']}, "
            f"text->image {r['text_to_image_r1']} / {r['text_to_image_r5']}",
        )
    ]


@EVALUATORS.register(
    "retrieval",
    "image->text and text->image recall@1/@5 on the test captions (image-text methods)",
    order=55,
    needs=("text",),
    summary=retrieval_summary,
)
def retrieval(ctx: EvalContext) -> dict[str, Any]:
    from ssl_bench.eval.zeroshot import retrieval as recall

    captions, source = _captions(ctx)
    out = recall(ctx.method, ctx.cache.get("head", "test"), captions, ctx.device)
    out["captions"] = source
    return {"retrieval": out}
