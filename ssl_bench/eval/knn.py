"""Weighted kNN classification by exact faiss inner-product search (DINO protocol).

Features are l2-normalised, so inner product = cosine similarity. Each of the k nearest
training samples votes for its label with weight exp(s / T). Defaults k = 20, T = 0.07
(DINO); ``LIGHTLY_PRESET`` gives lightly's benchmark protocol, k = 200, T = 0.1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_bench.blas import import_faiss

faiss = import_faiss()

LIGHTLY_PRESET = {"k": 200, "T": 0.1}


def _as_faiss(x: Tensor) -> np.ndarray:
    return np.ascontiguousarray(F.normalize(x.float(), dim=1).cpu().numpy(), dtype=np.float32)


def knn_scores(
    train: Tensor,
    train_labels: Tensor,
    query: Tensor,
    num_classes: int,
    k: int = 20,
    T: float = 0.07,
) -> Tensor:
    """Class scores (Q, C) of each query from its k nearest training features."""
    k = min(k, len(train))
    # Exact inner-product search straight on the bank's array (an IndexFlatIP would copy
    # it first): one blocked sgemm with a top-k heap per query.
    sims, idx = faiss.knn(_as_faiss(query), _as_faiss(train), k, faiss.METRIC_INNER_PRODUCT)
    weights = torch.from_numpy(sims).div(T).exp()
    votes = train_labels.cpu()[torch.from_numpy(idx)]  # (Q, k)
    return torch.zeros(len(query), num_classes).scatter_add_(1, votes, weights)


def topk_accuracy(scores: Tensor, labels: Tensor, k: int) -> float:
    k = min(k, scores.shape[1])
    hits = (scores.topk(k, dim=1).indices == labels.cpu()[:, None]).any(dim=1)
    return hits.float().mean().item()


def knn_eval(
    train: Tensor,
    train_labels: Tensor,
    query: Tensor,
    query_labels: Tensor,
    num_classes: int,
    k: int = 20,
    T: float = 0.07,
) -> dict[str, float]:
    """Top-1 / top-5 accuracy, reported with the protocol that produced them."""
    scores = knn_scores(train, train_labels, query, num_classes, k, T)
    return {
        "top1": topk_accuracy(scores, query_labels, 1),
        "top5": topk_accuracy(scores, query_labels, 5),
        "k": min(k, len(train)),
        "T": T,
    }
