"""A finished calibration, method-independent: per parameter its estimate and 90 % interval, per target the
observed and simulated values with the simulated interval and a verdict, and the tables behind them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxsim.calibration.targets import Z90, Simulated, verdict


@dataclass
class Fit:
    method: str
    parameters: dict[str, dict]  # dotted key -> {estimate, interval, prior, ...}
    targets: dict[str, dict]  # name -> {observed, simulated, interval, verdict, ...}
    tables: dict[str, pd.DataFrame]  # trials / best / posterior / generations ...
    notes: list[str] = field(default_factory=list)  # what the report should say about how the numbers came
    runs: int = 0
    seconds: float = 0.0

    def to_dict(self, cal, calibrated: str) -> dict:
        return {
            **cal.header(),
            "parameters": self.parameters,
            "targets": self.targets,
            "calibrated": calibrated,
            "runs": self.runs,
            "seconds": round(self.seconds, 2),
            "notes": self.notes,
        }


def at_prior_bound(p, lo: float, hi: float) -> bool:
    """Does the interval [lo, hi] reach within 2 % of the prior's width (in log10 for a log prior) of a bound?"""
    f = math.log10 if p.log else float
    a, b, width = f(p.low), f(p.high), f(p.high) - f(p.low)
    return bool(f(max(lo, p.low)) <= a + 0.02 * width or f(min(hi, p.high)) >= b - 0.02 * width)


def _num(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def target_summaries(cal, estimate: dict, intervals: dict, nearest: dict, nll: dict) -> dict[str, dict]:
    """The `targets` of the JSON: `estimate` name -> Simulated (or {month: Simulated}) at the estimate;
    `intervals` and `nearest` by flat key (`name` or `name[m]`); `nll` name -> NLL at the estimate."""
    out = {}
    for t in cal.targets:
        if t.observation is not None:
            o, s = t.observation, estimate[t.name]
            lo, hi = intervals.get(t.name, (None, None))
            sd = o.sd(s)
            out[t.name] = {
                "observed": o.value,
                "simulated": _num(s.value),
                "interval": [_num(lo), _num(hi)],
                "verdict": verdict(o.value, sd, s.value, (lo, hi), nearest.get(t.name)),
                "kind": o.kind,
                "error": sd,
                "nearest": _num(nearest.get(t.name)),
                "nll": _num(nll.get(t.name)),
            }
            continue
        rows = []
        for m, o in zip(t.months, t.monthly, strict=True):
            s = estimate[t.name][m]
            key = f"{t.name}[{m}]"
            lo, hi = intervals.get(key, (None, None))
            sd = o.sd(s)
            v = verdict(o.value, sd, s.value, (lo, hi), nearest.get(key))
            rows.append((m, o.value, s.value, lo, hi, sd, v))
        fitted = set(t.fitted_months)
        inside = [r for r in rows if r[0] in fitted]
        n_fit = sum(r[6] == "fitted" for r in inside)
        n_err = sum(r[6] in ("fitted", "within error") for r in inside)
        if n_fit >= 0.9 * len(inside):
            word = "fitted"
        elif n_err >= 0.9 * len(inside):
            word = "within error"
        else:
            word = f"out of reach: {len(inside) - n_err} of {len(inside)} fitted months outside the error"
        summary = {
            "observed": [r[1] for r in rows],
            "simulated": [_num(r[2]) for r in rows],
            "interval": [[_num(r[3]), _num(r[4])] for r in rows],
            "verdict": word,
            "months": [r[0] for r in rows],
            "month_verdicts": [r[6] for r in rows],
            "kind": t.monthly[0].kind,
            "error": [r[5] for r in rows],
            "nll": _num(nll.get(t.name)),
            "rmse_fitted": _rmse([r for r in rows if r[0] in fitted]),
        }
        if t.holdout:
            held = [r for r in rows if r[0] not in fitted]
            summary["holdout"] = {
                "months": [r[0] for r in held],
                "rmse": _rmse(held),
                "within_error": sum(r[6] in ("fitted", "within error") for r in held),
                "of": len(held),
            }
        out[t.name] = summary
    return out


def _rmse(rows) -> float | None:
    d = [(r[2] - r[1]) ** 2 for r in rows if r[2] is not None]
    return float(math.sqrt(np.mean(d))) if d else None


def per_run_values(cal, runs: list[dict]) -> dict[str, list[float]]:
    """Flat key -> each run's value (counts and money scaled): the spread of the replicates."""
    from cxsim.calibration.targets import TARGETS, scale_of

    out: dict[str, list[float]] = {}
    for t in cal.targets:
        f = scale_of(TARGETS[t.name], cal.scale)
        if t.observation is not None:
            out[t.name] = [r["scalar"][t.name][0] * f for r in runs if r["scalar"][t.name][0] is not None]
        else:
            for m in t.months:
                out[f"{t.name}[{m}]"] = [
                    r["monthly"][t.name][m - 1][0] * f for r in runs if r["monthly"][t.name][m - 1][0] is not None
                ]
    return out


def mean_band(values: list[float]) -> tuple[float | None, float | None]:
    """The replicate mean +- 1.645 standard errors (a 90 % band for the model's mean at one point)."""
    if not values:
        return None, None
    m = float(np.mean(values))
    if len(values) < 2:
        return m, m
    half = Z90 * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return m - half, m + half


def nearest_of(observed: dict[str, float], table: pd.DataFrame) -> dict[str, float]:
    """Per flat key, the simulated value closest to the observed one in a table of `sim.KEY` columns."""
    out = {}
    for key, obs in observed.items():
        col = table.get(f"sim.{key}")
        if col is None:
            continue
        v = col.dropna().to_numpy(float)
        if len(v):
            out[key] = float(v[np.argmin(np.abs(v - obs))])
    return out


def flat_simulated(sims: dict) -> dict[str, Simulated]:
    out = {}
    for name, s in sims.items():
        if isinstance(s, dict):
            out |= {f"{name}[{m}]": sm for m, sm in s.items()}
        else:
            out[name] = s
    return out


def weighted_quantile(values, weights, q: float) -> float:
    """The q-quantile of a weighted sample (the inverse of its weighted CDF, mid-points interpolated)."""
    v, w = np.asarray(values, float), np.asarray(weights, float)
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return float(np.interp(q, cdf, v))
