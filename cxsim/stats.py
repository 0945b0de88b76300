"""Replicate statistics: means with 95% intervals, and whether a paired effect is shown."""

import math

import numpy as np
from scipy.special import stdtrit  # Student's t quantile (what scipy.stats.t.ppf calls), a lighter import


def interval(values) -> dict:
    """Mean and t-based 95% confidence interval of replicate values (None where undefined)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    clean = [None if math.isnan(x) else x for x in values]
    if len(v) == 0:
        return {"mean": None, "ci95": [None, None], "values": clean}
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "ci95": [None, None], "values": clean}
    half = float(stdtrit(len(v) - 1, 0.975) * v.std(ddof=1) / math.sqrt(len(v)))
    return {"mean": mean, "ci95": [mean - half, mean + half], "values": clean}


def unpaired_interval(a, b) -> list:
    """Welch 95% interval of mean(b) - mean(a), treating the replicates as independent samples."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if min(len(a), len(b)) < 2:
        return [None, None]
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return [float(b.mean() - a.mean())] * 2
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stdtrit(dof, 0.975) * se)
    return [float(b.mean() - a.mean()) - half, float(b.mean() - a.mean()) + half]


def shown(ci, direction: str) -> bool:
    """Is the effect shown `direction` ("higher" or "lower")? Its paired 95% interval excludes zero on that side."""
    lo, hi = ci
    if lo is None:
        return False
    return lo > 0 if direction == "higher" else hi < 0


def verdict(ci) -> str:
    """ "clear" when the paired 95% interval excludes zero, "noise" when it straddles it, "n/a" when undefined."""
    if ci[0] is None:
        return "n/a"
    return "clear" if shown(ci, "higher") or shown(ci, "lower") else "noise"
