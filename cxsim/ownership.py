"""Ownership models: presets of governance mechanisms, and the owner's budget policy.

An ownership model is nothing but a set of mechanism parameters (the
`[ownership]` section); no outcome is written down anywhere. A scenario that
sets `ownership.model` starts from that preset; keys set beside it override it.
"""

import math

import mesa
import numpy as np

from cxsim import kernel, rng
from cxsim.kernel import DEPARTMENTS

PRESETS: dict[str, dict] = {
    # A chief customer officer: reads the whole journey's operational signals,
    # moves money toward the departments whose failures hurt most, keeps the
    # promise at delivered quality, and costs an office.
    "cco_led": dict(objective="journey", review_every_days=30, listening_delay_days=14, listening_noise=0.2,
                    listening_source="operations", handoff_consistency=0.8,
                    promise_policy="delivered_plus_markup", promise_markup=0.0, overhead=0.01),
    # No owner: each department keeps its budget; context is lost between silos.
    "siloed": dict(objective="fixed", review_every_days=90, listening_delay_days=30, listening_noise=0.5,
                   listening_source="operations", handoff_consistency=0.5,
                   promise_policy="fixed", promise_markup=0.0, overhead=0.0),
}


class Owner(mesa.Agent):
    """The CX owner: every review period it reads delayed, noisy signals, moves budget shares and sets the promise.

    Signals per department come from `listening_source` over the review window
    ending `listening_delay_days` ago; departments outside `listening_scope` are
    not heard (their harm reads as zero). Each reading is multiplied by
    lognormal noise of spread `listening_noise`.

    Objectives (how the shares move):
    - "journey": toward base_share * (harm / mean harm) ** strength,
      so money follows the departments whose failures hurt customers most;
    - "fixed": shares never move (each silo keeps its budget).
    Each review closes `reallocation_rate` of the gap to the target; no share
    falls below `min_share`.
    """

    def __init__(self, model, config, base_shares: np.ndarray, promise: float):
        super().__init__(model)
        self.config = config
        self.base_shares = base_shares.copy()
        self.shares = base_shares.copy()
        self.base_promise = promise
        self.promise = promise
        self.key = rng.stream_key(model.seed, rng.OWNER)

    def step(self):
        day = self.model.day
        c = self.config
        end = day - c.listening_delay_days
        if day == 0 or day % c.review_every_days or end <= 0:
            return
        window = self.model.history[max(0, end - c.review_every_days):end]
        harm = self.listen(window)
        if c.objective == "journey" and harm.sum() > 0:
            target = self.base_shares * (harm / harm.mean()) ** c.reallocation_strength
            target /= target.sum()
            shares = (1.0 - c.reallocation_rate) * self.shares + c.reallocation_rate * target
            shares = np.maximum(shares, c.min_share)
            self.shares = shares / shares.sum()
        if c.promise_policy == "delivered_plus_markup":
            self.promise = min(1.0, max(0.0, self.delivered_quality(window) * (1.0 + c.promise_markup)))

    def listen(self, window: np.ndarray) -> np.ndarray:
        """Harm per department as the owner perceives it: delayed, noisy, limited to its scope."""
        c = self.config
        totals = window.sum(axis=0)
        if c.listening_source == "operations":
            signal = totals[kernel.T_FAILURES:kernel.T_FAILURES + kernel.N_DEPT] * self.model.D[:, kernel.SEVERITY]
        elif c.listening_source == "complaints":
            signal = totals[kernel.T_COMPLAINTS_BY:kernel.T_COMPLAINTS_BY + kernel.N_DEPT].copy()
        else:
            signal = totals[kernel.T_CHURN_BY:kernel.T_CHURN_BY + kernel.N_DEPT].copy()
        sigma = c.listening_noise
        for k in range(kernel.N_DEPT):
            heard = DEPARTMENTS[k] in c.listening_scope
            signal[k] *= math.exp(sigma * rng.normal(self.key, k, self.model.day, 0) - 0.5 * sigma * sigma) if heard else 0.0
        return signal

    def delivered_quality(self, window: np.ndarray) -> float:
        """Encounter-weighted quality net of observed failures over the window."""
        totals = window.sum(axis=0)
        met = totals[kernel.T_ENCOUNTERS:kernel.T_ENCOUNTERS + kernel.N_DEPT]
        failed = totals[kernel.T_FAILURES:kernel.T_FAILURES + kernel.N_DEPT]
        D = self.model.D
        if met.sum() == 0:
            return self.promise
        rate = np.divide(failed, met, out=np.zeros(kernel.N_DEPT), where=met > 0)
        return float(np.sum(met * (D[:, kernel.QUALITY] - D[:, kernel.SEVERITY] * rate)) / met.sum())
