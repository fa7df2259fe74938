"""Image-text evaluators for CLIP-type methods: zero-shot classification from class-name
prompts and image<->text retrieval on the test captions.

Both read the image embeddings from the feature cache (``head`` = the method's image
embedding, unit norm) and encode texts with the method's own tokenizer and text tower.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_bench.text import TEMPLATE, ImageTextMethod


@torch.no_grad()
def encode_texts(method: ImageTextMethod, texts: list[str], device: torch.device) -> Tensor:
    """(T,) texts -> (T, E) unit-norm embeddings on the CPU, in eval mode, batched."""
    was = method.training
    method.eval()
    ids = method.tokenizer.encode(texts)
    out = [
        method.encode_text(ids[i : i + 1024].to(device)).float().cpu()
        for i in range(0, len(ids), 1024)
    ]
    method.train(was)
    return torch.cat(out)


def class_prompts(
    classes: list[str], prompts: Callable[[str], list[str]] | None
) -> list[list[str]]:
    """Prompts per class: the dataset's own (shapes: every caption that names the class),
    else the CLIP template."""
    return [prompts(c) if prompts else [TEMPLATE.format(c)] for c in classes]


def zero_shot(
    method: ImageTextMethod,
    images: Tensor,
    labels: Tensor,
    classes: list[str],
    prompts: Callable[[str], list[str]] | None,
    device: torch.device,
) -> dict[str, float | int | str]:
    """Top-1 / top-5 of the nearest class embedding (CLIP's prompt ensemble: the mean of
    a class's prompt embeddings, renormalised). ``images``: (N, E) unit-norm."""
    per_class = class_prompts(classes, prompts)
    weights = torch.stack(
        [F.normalize(encode_texts(method, p, device).mean(0), dim=0) for p in per_class]
    )  # (C, E)
    logits = images @ weights.T  # (N, C)
    top = logits.topk(min(5, len(classes)), dim=1).indices
    hit = top == labels[:, None]
    return {
        "top1": hit[:, 0].float().mean().item(),
        "top5": hit.any(1).float().mean().item(),
        "prompts_per_class": len(per_class[0]),
        "prompt_example": per_class[0][0],
        "chance": 1 / len(classes),
    }


def retrieval(
    method: ImageTextMethod, images: Tensor, captions: list[str], device: torch.device
) -> dict[str, float | int | str]:
    """Image->text and text->image recall@1/@5 among the test pairs. Captions may repeat
    (``shapes`` has ~800 distinct ones), so a retrieved caption (or the image of a
    retrieved caption) counts as a hit when its text equals the query's own caption."""
    texts = encode_texts(method, captions, device)  # (N, E)
    sim = images @ texts.T  # (N images, N captions)
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    cap = torch.tensor([ids[c] for c in captions])  # caption identity per pair
    out: dict[str, float | int | str] = {}
    for name, s in (("image_to_text", sim), ("text_to_image", sim.T)):
        top = s.topk(min(5, len(captions)), dim=1).indices  # (N, 5)
        hit = cap[top] == cap[:, None]
        out[f"{name}_r1"] = hit[:, 0].float().mean().item()
        out[f"{name}_r5"] = hit.any(1).float().mean().item()
    out.update(pairs=len(captions), distinct_captions=len(ids), match="same caption text")
    return out
