"""Collapse and representation-quality diagnostics (FACTS.md, "Representation diagnostics").

- ``std``: per-dimension std of l2-normalised embeddings, averaged; 0 when collapsed,
  about 1/sqrt(d) when the embeddings spread over the sphere (SimSiam). Meant for the
  *head* output: backbone features after ReLU and pooling are all-positive and sit far
  below 1/sqrt(d) even when healthy, so a low backbone std is not collapse.
- ``rankme``: exp(entropy) of the normalised singular values (Garrido et al., 2023),
  the effective number of dimensions used.
- ``alignment`` / ``uniformity`` (Wang & Isola, 2020) on l2-normalised features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def embedding_std(z: Tensor) -> float:
    """Mean over dimensions of the std of l2-normalised embeddings (N, d)."""
    return F.normalize(z.float(), dim=1).std(dim=0).mean().item()


def rankme(z: Tensor, eps: float = 1e-7) -> float:
    """exp(-sum p_k log p_k), p_k = sigma_k / sum(sigma) + eps, sigma = singular values."""
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum() + eps
    return math.exp(-(p * p.log()).sum().item())


def alignment(z1: Tensor, z2: Tensor) -> float:
    """E ||f(x) - f(x+)||^2 over positive pairs (rows of z1 and z2), l2-normalised."""
    return (
        (F.normalize(z1.float(), dim=1) - F.normalize(z2.float(), dim=1))
        .pow(2)
        .sum(1)
        .mean()
        .item()
    )


def uniformity(z: Tensor, t: float = 2.0, max_samples: int = 2000) -> float:
    """log E exp(-t ||f(x) - f(y)||^2) over distinct pairs (first ``max_samples`` rows)."""
    zn = F.normalize(z[:max_samples].float(), dim=1)
    sq = torch.pdist(zn).pow(2)
    return torch.logsumexp(-t * sq, dim=0).item() - math.log(len(sq))


def diagnostics(z: Tensor, z1: Tensor | None = None, z2: Tensor | None = None) -> dict:
    """All diagnostics of embeddings ``z`` (N, d); alignment if two views are given."""
    d = z.shape[1]
    out = {
        "std": embedding_std(z),
        "std_ref": 1 / math.sqrt(d),
        "dim": d,
        "rankme": rankme(z),
        "uniformity": uniformity(z),
    }
    if z1 is not None and z2 is not None:
        out["alignment"] = alignment(z1, z2)
    return out
