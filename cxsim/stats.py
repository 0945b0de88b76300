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


def variance_split(diffs, central) -> dict:
    """How much of a paired difference's variance comes from parameter uncertainty (docs/CALIBRATION.md).

    `diffs[r]` is replicate r's paired difference with the parameters drawn from the posterior (draw r, seed r),
    `central[r]` the same pair on the same seed with the parameters at the posterior's centre. By the law of total
    variance, Var(diff) = Var_θ(E[diff | θ]) + E_θ[Var(diff | θ)]: the sample variance of `diffs` estimates the
    total; the simulation's own noise E_θ[Var(diff | θ)] is estimated by the sample variance of `central` (the noise
    at the centre, on the same seeds), capped at the total; the parameters' part is the rest. The parts sum to the
    total, and so do their shares of the interval's variance (total / n for the mean). Pairs with a missing value
    on either side are left out; None where fewer than two pairs remain (no variance) or the total is zero (no
    share)."""
    d, c = np.asarray(diffs, float), np.asarray(central, float)
    keep = ~(np.isnan(d) | np.isnan(c))
    d, c = d[keep], c[keep]
    if len(d) < 2:
        return {"total": None, "parameters": None, "noise": None, "noise_at_centre": None, "parameter_share": None}
    total, at_centre = float(d.var(ddof=1)), float(c.var(ddof=1))
    noise = min(at_centre, total)
    return {
        "total": total,
        "parameters": total - noise,
        "noise": noise,
        "noise_at_centre": at_centre,
        "parameter_share": (total - noise) / total if total > 0 else None,
    }
