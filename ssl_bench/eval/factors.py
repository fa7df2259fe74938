"""What frozen features encode, read against a generated dataset's own factors.

`shapes` records, per image, the nuisance variables its generator drew (colour,
background pattern and level, position, size, rotation, noise). Two readings:

- a linear probe per factor (fit on train, scored on test): accuracy for categorical
  factors, R^2 for continuous ones. Shape (the class) is probed alongside, on the same
  footing;
- the top principal components of the l2-normalised test features, which is what
  cosine kNN compares: each one's share of the variance and the factor that explains
  most of it (R^2 of a linear regression of the component on the factor).

A feature space whose first component is the background's grey level, for example, will
match images by background first, whatever the linear probe can still decode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from ssl_bench.data.splits import Split
from ssl_bench.errors import UserError

CATEGORICAL = ("shape", "colour", "pattern", "dark_background")
PROTOCOL = (
    "probe: logistic regression (C=0.1, accuracy) or ridge (alpha=10, R^2) on standardised "
    "train features, scored on test; components: PCA of l2-normalised test features"
)


def _values(split: Split) -> dict[str, np.ndarray]:
    """Each factor's per-image values (N,), the class as ``shape`` first."""
    if split.factors is None:
        raise UserError(
            "the factors evaluator needs generator factors, and only the `shapes` datasets "
            "record them"
        )
    return {k: v.double().numpy() for k, v in {"shape": split.labels, **split.factors}.items()}


def factor_table(split: Split) -> dict[str, np.ndarray]:
    """Each factor as an (N, k) design matrix: one-hot for categorical factors, the value
    for continuous ones, and harmonics of the angle for the rotation (the shapes have 2-
    and 4-fold symmetries, so the angle itself is not what a feature can encode)."""
    out: dict[str, np.ndarray] = {}
    for name, v in _values(split).items():
        if name in CATEGORICAL:
            out[name] = np.eye(int(v.max()) + 1)[v.astype(int)]
        elif name == "rotation":
            out[name] = np.stack([f(k * v) for k in (1, 2, 4) for f in (np.cos, np.sin)], 1)
        else:
            out[name] = v[:, None]
    return out


def probe(train: np.ndarray, test: np.ndarray, tr: Split, te: Split) -> dict[str, float]:
    """Linear probe per factor: test accuracy (categorical) or R^2 (continuous). A factor
    that does not vary over the training split (e.g. `shapes`' pattern) is left out."""
    scaler = StandardScaler().fit(train)
    xtr, xte = scaler.transform(train), scaler.transform(test)
    ytr, yte = _values(tr), _values(te)
    design_tr, design_te = factor_table(tr), factor_table(te)  # rotation as its harmonics
    scores = {}
    for name, y in ytr.items():
        if np.ptp(y) == 0:
            continue
        if name in CATEGORICAL:
            clf = LogisticRegression(max_iter=1000, C=0.1).fit(xtr, y.astype(int))
            scores[name] = float(clf.score(xte, yte[name].astype(int)))
        else:
            ridge = Ridge(alpha=10.0).fit(xtr, design_tr[name])
            scores[name] = float(ridge.score(xte, design_te[name]))
    return scores


def components(test: np.ndarray, te: Split, n: int) -> list[dict[str, Any]]:
    """The top ``n`` principal components of the l2-normalised features (N, D): share of
    variance and each factor's R^2, best first."""
    x = test / np.linalg.norm(test, axis=1, keepdims=True).clip(1e-12)
    x = x - x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)  # (N, r), (r,)
    share = s**2 / (s**2).sum()
    table = factor_table(te)
    out = []
    for i in range(min(n, len(s))):
        pc = u[:, i] * s[i]  # (N,)
        r2 = {k: float(LinearRegression().fit(f, pc).score(f, pc)) for k, f in table.items()}
        ranked = dict(sorted(r2.items(), key=lambda kv: -kv[1]))
        out.append({"share": float(share[i]), "factor": next(iter(ranked)), "r2": ranked})
    return out


def factors_eval(train: Tensor, test: Tensor, tr: Split, te: Split, pcs: int = 3) -> dict:
    """Both readings for pooled features of the train and test splits."""
    xtr, xte = train.double().numpy(), test.double().numpy()
    return {
        "probe": probe(xtr, xte, tr, te),
        "components": components(xte, te, pcs),
        "protocol": PROTOCOL,
    }
