"""What the targets say about the parameters near a point: optimize's 90 % intervals and its approximate posterior.

The targets' means m(θ) are differentiated by central differences at the estimate (each parameter in units of
its prior's width, log10 for a log prior), on the same fresh seeds as the estimate's own re-run. With J the
Jacobian and Σ the variance of an observation minus a trial's replicate mean (σ² + v / R: σ its stated error,
v the sample's run-to-run variance, R the replicates per trial), the targets' likelihood near the estimate u0
is a normal in the parameters with precision F = J'Σ⁻¹J (their Fisher information). Times the uniform priors,
the approximate posterior is that normal truncated to the priors' box:

    p(u) ∝ exp(-(u - u0)'F(u - u0) / 2)  on [0, 1]^q.

Along a direction no target moves it is flat, so it spans the box there (the parameter is not identified),
and a ridge ends where the box does. It is sampled by importance: proposals from the normal of precision
F + I (as wide as the box where F is flat), kept inside the box, weighted by exp(|u - u0|² / 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxsim.calibration.fit import flat_simulated, per_run_values
from cxsim.calibration.targets import simulated

POSTERIOR_STREAM = 0x6C6170  # "lap": the draws' own stream of the calibration's seed
STEP = 0.05  # the central difference's half-step, as a share of the prior's width (log10 for a log prior)


@dataclass
class Information:
    """The targets' Fisher information about the parameters at the estimate, in units of the priors."""

    centre: np.ndarray  # the estimate u0
    fisher: np.ndarray  # F = J'Σ⁻¹J
    runs: int  # the runs it took

    def posterior(self, parameters, n: int, seed: int) -> pd.DataFrame:
        """`n` weighted draws of the approximate posterior (the dotted keys and `weight`, summing to 1): a pure
        function of (this, n, seed)."""
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), POSTERIOR_STREAM])))
        q = len(self.centre)
        cov = np.linalg.inv(self.fisher + np.eye(q))
        kept = np.empty((0, q))
        for _ in range(1000):  # at worst about a third of the proposals per flat parameter lies in the box
            x = rng.multivariate_normal(self.centre, cov, size=max(n, 10_000), method="eigh")
            kept = np.vstack([kept, x[np.all((x >= 0.0) & (x <= 1.0), axis=1)]])
            if len(kept) >= n:
                break
        u = kept[:n]
        w = np.exp(0.5 * ((u - self.centre) ** 2).sum(axis=1))
        frame = pd.DataFrame({p.key: [p.from_unit(x) for x in u[:, i]] for i, p in enumerate(parameters)})
        frame["weight"] = w / w.sum()
        return frame


def _observations(cal) -> list[tuple[str, object]]:
    """(flat key, Observation) of every fitted observation: a scalar target, or each fitted month of a series."""
    out = []
    for t in cal.targets:
        if t.observation is not None:
            out.append((t.name, t.observation))
        else:
            fitted = set(t.fitted_months)
            out += [(f"{t.name}[{m}]", o) for m, o in zip(t.months, t.monthly, strict=True) if m in fitted]
    return out


def run_to_run_variance(cal, groups: list[list[dict]]) -> dict[str, float]:
    """Per flat key, the pooled within-point variance of single runs over groups of runs (each group one point)."""
    sums: dict[str, float] = {}
    dof: dict[str, int] = {}
    for runs in groups:
        for key, values in per_run_values(cal, runs or []).items():
            if len(values) >= 2:
                sums[key] = sums.get(key, 0.0) + float(np.var(values, ddof=1)) * (len(values) - 1)
                dof[key] = dof.get(key, 0) + len(values) - 1
    return {k: sums[k] / dof[k] for k in sums}


def information(cal, runner, estimate: dict, runs: list[dict], seeds: list[int], variance: dict) -> Information:
    """Differentiate the targets' means at `estimate` (whose runs on `seeds` are `runs`) and form the covariance."""
    params = cal.parameters
    centre = np.array([p.unit(estimate[p.key]) for p in params])
    points, steps = [], []
    for i, p in enumerate(params):
        lo, hi = max(centre[i] - STEP, 0.0), min(centre[i] + STEP, 1.0)
        a, b = p.from_unit(lo), p.from_unit(hi)  # rounded for a whole-number key
        points += [{**estimate, p.key: a}, {**estimate, p.key: b}]
        steps.append(p.unit(b) - p.unit(a))
    runner.expect(len(points) * len(seeds))
    results = runner.evaluate(points, seeds)
    at = flat_simulated(simulated(cal.targets, cal.scale, runs))
    obs = _observations(cal)
    J = np.zeros((len(obs), len(params)))
    for i in range(len(params)):
        minus, plus = (flat_simulated(simulated(cal.targets, cal.scale, r)) for r in results[2 * i : 2 * i + 2])
        for j, (key, _) in enumerate(obs):
            a, b = minus[key].value, plus[key].value
            J[j, i] = (b - a) / steps[i] if steps[i] > 0 and a is not None and b is not None else 0.0
    sd = np.array([o.sd(at[key]) for key, o in obs])
    v = np.array([variance.get(key, 0.0) for key, _ in obs])
    sigma = sd**2 + v / cal.file.replicates
    return Information(centre, J.T @ (J / sigma[:, None]), len(points) * len(seeds))
