"""Mean ± std over seeds, formatting, and the honest comparison used in readings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Stat:
    """A metric over the seeds of one setting."""

    mean: float
    std: float  # sample std (ddof 1); 0 for a single seed
    n: int

    def fmt(self, percent: bool = True, digits: int = 1) -> str:
        if math.isnan(self.mean):
            return "-"
        k = 100.0 if percent else 1.0
        text = f"{k * self.mean:.{digits}f}"
        return text + (f" ± {k * self.std:.{digits}f}" if self.n > 1 else "")

    def beats(self, other: Stat) -> str:
        """'above', 'below' or 'within seed noise' of ``other``: a difference counts only
        when it exceeds the sum of the two standard deviations."""
        gap = self.mean - other.mean
        if abs(gap) <= self.std + other.std or math.isnan(gap):
            return "within seed noise of"
        return "above" if gap > 0 else "below"


NAN = Stat(math.nan, math.nan, 0)


def stat(values: pd.Series) -> Stat:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return NAN
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return Stat(float(values.mean()), std, len(values))


def by(df: pd.DataFrame, keys: list[str]) -> dict[tuple, pd.DataFrame]:
    """Groups of runs that share ``keys`` (the seeds of one setting), in first-seen order."""
    groups = df.groupby(keys, sort=False, dropna=False)  # a missing key is a group too
    return {k if isinstance(k, tuple) else (k,): g for k, g in groups}


def points(a: Stat, b: Stat) -> str:
    """a - b in percentage points, signed."""
    if math.isnan(a.mean) or math.isnan(b.mean):
        return "-"
    return f"{100 * (a.mean - b.mean):+.1f}"
