"""The text side of image-caption methods: captions, a word-level tokenizer, a text tower,
and :class:`ImageTextMethod`, the base of CLIP-type methods.

Captions come from the dataset when it has them (``shapes``); class-labelled datasets get
the CLIP template ``"a photo of a {class}"`` from their class names, and every summary
says which (``caption_source``). The tokenizer's vocabulary is built from the training
captions and saved in the checkpoint (the method's extra state), so a run is evaluated
with the vocabulary it was trained with.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_bench import distributed
from ssl_bench.config import Config
from ssl_bench.method import DataInfo, Method

TEMPLATE = "a photo of a {}"
PAD, SOS, EOS, UNK = "<pad>", "<sos>", "<eos>", "<unk>"
SPECIALS = (PAD, SOS, EOS, UNK)


def template_captions(labels: Tensor, classes: list[str]) -> list[str]:
    """``"a photo of a {class}"`` for each label (-1 = unlabeled: no class to name)."""
    return [TEMPLATE.format(classes[y]) if y >= 0 else "a photo" for y in labels.tolist()]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class Tokenizer:
    """Word-level tokenizer: ``<sos> w1 ... wn <eos> <pad>...``, unknown words -> ``<unk>``."""

    def __init__(self, vocab: list[str], length: int) -> None:
        self.vocab = list(vocab)
        self.length = length  # tokens per caption, <sos> and <eos> included
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @staticmethod
    def fit(captions: list[str], max_length: int = 32) -> Tokenizer:
        """The vocabulary of ``captions``; the length fits the longest (at most max_length)."""
        seen = sorted({w for c in captions for w in words(c)})
        longest = max((len(words(c)) for c in captions), default=0)
        return Tokenizer([*SPECIALS, *seen], min(max_length, longest + 2))

    def encode(self, texts: list[str]) -> Tensor:
        """(N,) texts -> (N, length) int64 ids; over-long texts are cut before ``<eos>``."""
        out = torch.full((len(texts), self.length), self.index[PAD], dtype=torch.long)
        unk = self.index[UNK]
        for i, text in enumerate(texts):
            ids = [self.index.get(w, unk) for w in words(text)][: self.length - 2]
            ids = [self.index[SOS], *ids, self.index[EOS]]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: Tensor) -> str:
        """(length,) ids -> the words between ``<sos>`` and ``<eos>``."""
        out = []
        for i in ids.tolist():
            if self.vocab[i] == EOS:
                break
            if self.vocab[i] not in (SOS, PAD):
                out.append(self.vocab[i])
        return " ".join(out)

    def state(self) -> dict[str, Any]:
        return {"vocab": self.vocab, "length": self.length}


class TextTower(nn.Module):
    """Token + position embeddings -> pre-norm transformer -> LayerNorm -> the feature at
    ``<eos>`` (CLIP) -> linear projection. Padding is masked out of attention."""

    def __init__(self, vocab_size: int, length: int, width: int, depth: int, heads: int) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab_size, width)
        self.pos = nn.Parameter(torch.randn(1, length, width) * 0.01)
        layer = nn.TransformerEncoderLayer(
            width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.width = width

    def forward(self, ids: Tensor) -> Tensor:  # (B, L) int64 -> (B, width)
        pad = ids == 0  # <pad> is id 0
        x = self.encoder(self.token(ids) + self.pos[:, : ids.shape[1]], src_key_padding_mask=pad)
        eos = (~pad).sum(1) - 1  # the last real token is <eos>
        return self.norm(x[torch.arange(len(ids), device=ids.device), eos])


def clip_loss(img: Tensor, txt: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE over a batch of matched pairs; img, txt (B, E) l2-normalised.

    Under torchrun each rank's rows are scored against the pairs of every rank (the
    global batch, gathered with gradients), so the loss is the one-process loss of the
    global batch, split by rows over the ranks.
    """
    img_all, txt_all = distributed.gather(img), distributed.gather(txt)  # (W*B, E)
    target = torch.arange(len(img), device=img.device) + distributed.rank_offset(len(img))
    per_image = logit_scale * img @ txt_all.T  # (B, W*B): row i's positive is target[i]
    per_text = logit_scale * txt @ img_all.T
    return (F.cross_entropy(per_image, target) + F.cross_entropy(per_text, target)) / 2


class ImageTextMethod(Method):
    """Base of CLIP-type methods: image tower (the backbone) and text tower projected into
    one embedding space, with a learnable logit scale (init 1/0.07, clamped at 100).

    What the trainer hands ``training_step`` as ``labels`` are the captions' token ids
    (N, length), from :meth:`targets`. The evaluator's zero-shot and retrieval read
    :meth:`encode_image` (through ``embed_head``) and :meth:`encode_text`.
    """

    capabilities = frozenset({"text"})

    def __init__(
        self, cfg: Config, info: DataInfo, embed_dim: int, width: int, depth: int, heads: int
    ) -> None:
        super().__init__(cfg, info)
        self.tokenizer = Tokenizer.fit(info.captions or template_captions_of(info))
        self.text = TextTower(len(self.tokenizer.vocab), self.tokenizer.length, width, depth, heads)
        self.text_proj = nn.Linear(width, embed_dim, bias=False)
        self.image_proj = nn.Linear(self.backbone.dim, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    # ---- the tokenizer travels in the checkpoint ---------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer.state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        saved = state["tokenizer"]
        self.tokenizer = Tokenizer(saved["vocab"], saved["length"])

    def training_targets(self, labels: Tensor) -> Tensor:
        """Token ids (N, length) of the pre-training captions, aligned with the images."""
        return self.tokenizer.encode(self.info.captions or template_captions_of(self.info, labels))

    def param_groups(self) -> list[dict[str, Any]]:
        """As every method, and the logit scale is never decayed (CLIP, OpenCLIP)."""
        groups = super().param_groups()
        for g in groups:
            g["params"] = [p for p in g["params"] if p is not self.logit_scale]
        groups.append({"name": "logit_scale", "params": [self.logit_scale], "weight_decay": 0.0})
        return groups

    # ---- the shared embedding space ----------------------------------------------
    def scale(self) -> Tensor:
        return self.logit_scale.clamp(max=math.log(100)).exp()

    def project_image(self, pooled: Tensor) -> Tensor:  # (B, D) -> (B, E), unit norm
        return F.normalize(self.image_proj(pooled), dim=-1)

    def encode_image(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, E)
        return self.project_image(self.backbone(x))

    def encode_text(self, ids: Tensor) -> Tensor:  # (B, L) -> (B, E), unit norm
        return F.normalize(self.text_proj(self.text(ids)), dim=-1)

    def head_of(self, pooled: Tensor) -> Tensor:
        return self.project_image(pooled)


def template_captions_of(info: DataInfo, labels: Tensor | None = None) -> list[str]:
    """Templated captions: for ``labels`` if given, else one per class (the vocabulary)."""
    if labels is None:
        labels = torch.arange(len(info.classes))
    return template_captions(labels, info.classes)
