"""Linear probes on frozen features: multinomial logistic regression in torch.

Features are standardised with training statistics. The L2 penalty is chosen on the val
split from ``WD_GRID``; the probe is then refit on train + val with that penalty and
evaluated once on test. The test split never takes part in the selection
(:func:`select_weight_decay` does not receive it). Full-batch L-BFGS: deterministic and
fast at these sizes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_bench.eval.knn import topk_accuracy

WD_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def fit_logreg(x: Tensor, y: Tensor, num_classes: int, wd: float, max_iter: int = 100) -> nn.Linear:
    """Multinomial logistic regression: cross-entropy + wd * ||W||^2, full-batch L-BFGS."""
    probe = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)
    opt = torch.optim.LBFGS(
        probe.parameters(),
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(probe(x), y) + wd * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return probe


def _standardise(train: Tensor, *others: Tensor) -> list[Tensor]:
    mean, std = train.mean(0), train.std(0).clamp(min=1e-6)
    return [(t.float() - mean) / std for t in (train, *others)]


def select_weight_decay(
    train: Tensor,
    train_y: Tensor,
    val: Tensor,
    val_y: Tensor,
    num_classes: int,
    grid: tuple[float, ...] = WD_GRID,
    max_iter: int = 100,
) -> tuple[float, dict[str, float]]:
    """The grid value with the best val top-1 (ties -> the stronger penalty)."""
    train, val = _standardise(train, val)
    scores = {}
    for wd in grid:
        probe = fit_logreg(train, train_y, num_classes, wd, max_iter)
        with torch.no_grad():
            scores[wd] = topk_accuracy(probe(val), val_y, 1)
    best = max(grid, key=lambda wd: (scores[wd], wd))
    return best, {f"{wd:g}": s for wd, s in scores.items()}


def linear_probe(
    train: Tensor,
    train_y: Tensor,
    val: Tensor,
    val_y: Tensor,
    test: Tensor,
    test_y: Tensor,
    num_classes: int,
    grid: tuple[float, ...] = WD_GRID,
    max_iter: int = 100,
    refit_with_val: bool = True,
) -> dict:
    """Select the penalty on val, refit (on train + val, or train alone for low-shot
    probes, whose label budget must not grow), report test top-1 / top-5."""
    wd, val_scores = select_weight_decay(train, train_y, val, val_y, num_classes, grid, max_iter)
    if refit_with_val:
        both, both_y = torch.cat([train, val]), torch.cat([train_y, val_y])
    else:
        both, both_y = train, train_y
    both_s, test_s = _standardise(both, test)
    probe = fit_logreg(both_s, both_y, num_classes, wd, max_iter)
    with torch.no_grad():
        scores = probe(test_s)
    return {
        "top1": topk_accuracy(scores, test_y, 1),
        "top5": topk_accuracy(scores, test_y, 5),
        "weight_decay": wd,
        "val_top1": val_scores,
        "protocol": "logistic regression (L-BFGS), wd chosen on val, refit on "
        + ("train+val" if refit_with_val else "the labelled subset"),
    }


def low_shot_indices(labels: Tensor, fraction: float, seed: int) -> Tensor:
    """A fixed, class-balanced subset: ceil(fraction * n_c) samples of each class c."""
    g = torch.Generator().manual_seed(seed)
    picked = []
    for c in labels.unique().tolist():
        idx = (labels == c).nonzero()[:, 0]
        n = max(1, int(-(-len(idx) * fraction // 1)))
        picked.append(idx[torch.randperm(len(idx), generator=g)[:n]])
    return torch.cat(picked).sort().values


def augmented_linear_probe(
    features_of: Callable[[Tensor, torch.Generator], Tensor],
    train_images: Tensor,
    train_y: Tensor,
    plain_train: Tensor,
    test: Tensor,
    test_y: Tensor,
    num_classes: int,
    wd: float,
    epochs: int = 10,
    batch_size: int = 256,
    lr: float = 0.1,
    seed: int = 0,
) -> dict:
    """The large-scale protocol: features recomputed on augmented views every epoch.

    ``features_of(uint8 batch, generator)`` returns frozen features of augmented views
    (crop + flip). The penalty ``wd`` comes from the cached-feature selection; SGD with a
    cosine schedule; standardisation uses the plain training features.
    """
    mean, std = plain_train.mean(0), plain_train.std(0).clamp(min=1e-6)
    probe = nn.Linear(plain_train.shape[1], num_classes)
    opt = torch.optim.SGD(probe.parameters(), lr=lr, momentum=0.9)
    steps = epochs * max(1, len(train_images) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(train_images), generator=g).split(batch_size):
            x = (features_of(train_images[idx], g) - mean) / std
            loss = F.cross_entropy(probe(x), train_y[idx]) + wd * probe.weight.pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        scores = probe((test - mean) / std)
    return {
        "top1": topk_accuracy(scores, test_y, 1),
        "top5": topk_accuracy(scores, test_y, 5),
        "weight_decay": wd,
        "epochs": epochs,
        "protocol": "SGD on features of crop+flip views recomputed each epoch",
    }
