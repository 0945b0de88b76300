"""The Owner agent: the CX owner's budget policy and promise, under the ownership model's preset (`cxsim.presets`)."""

import math

import mesa
import numpy as np

from cxsim import kernel, rng
from cxsim.domain import DEPARTMENTS, N_DEPT, SERVICE
from cxsim.presets import FUNNELS

# what each listening source but `operations` (failures, weighted by harm) hears: a per-department tally block
HEARD = {
    "complaints": "complaints_by",
    "churn": "churn_by",
    "surveys": "survey_detractors_by",
    "social": "posts_negative_by",
}


class Owner(mesa.Agent):
    """The CX owner: every review period it reads delayed, noisy signals, moves budget shares and sets the promise.

    Each objective turns what the owner hears over the review window (ending
    `listening_delay_days` ago) into a need per department, 1 meaning "as
    planned" (see `needs`). The heard departments keep their total share: each
    gets its floor, `min_budget_fraction` of its base share, and the rest is
    split in proportion to base_share * (need / mean need) ** reallocation_strength.
    Departments outside `listening_scope` keep their shares. Each review closes
    `reallocation_rate` of the gap to that target. Every reading carries
    lognormal noise of spread `listening_noise`. The first review's readings
    are the owner's reference ("last period's numbers") for the growth and
    service objectives.
    """

    def __init__(self, model, config, base_shares: np.ndarray, promise: float):
        super().__init__(model)
        self.config = config
        self.base_shares = base_shares.copy()
        self.shares = base_shares.copy()
        self.base_promise = promise
        self.promise = promise
        self.reference: dict[str, float] = {}
        self.heard = np.array([d in config.listening_scope for d in DEPARTMENTS])
        self.key = rng.stream_key(model.seed, rng.OWNER)

    def step(self, warming_up: bool = False):
        """A review, on review days. In the warm-up (no prospects) an objective that reads acquisitions holds the
        shares."""
        day = self.model.day
        c = self.config
        end = day - c.listening_delay_days
        if day == 0 or day % c.review_every_days or end <= 0:
            return
        start = max(0, end - c.review_every_days)
        # per review period: the first window may be shorter
        window = self.model.history[start:end].sum(axis=0) * c.review_every_days / (end - start)
        if c.objective != "fixed" and not (warming_up and c.objective in FUNNELS):
            self.reallocate(self.needs(window) * self.cost_factor())
        if c.promise_policy == "delivered_plus_markup":
            self.promise = min(1.0, max(0.0, self.delivered_quality(window) * (1.0 + c.promise_markup)))

    def settle(self):
        """After the warm-up: the first review of the run sets the reference readings again."""
        self.reference = {}

    def reallocate(self, need: np.ndarray):
        """Move the heard departments' shares toward base * (need / mean need) ** strength."""
        c, heard = self.config, self.heard
        if not heard.any() or not np.all(np.isfinite(need)) or need[heard].sum() <= 0:
            return
        target = self.shares.copy()
        tilt = self.base_shares[heard] * (need[heard] / need[heard].mean()) ** c.reallocation_strength
        floor = c.min_budget_fraction * self.base_shares[heard]
        target[heard] = floor + (self.shares[heard].sum() - floor.sum()) * tilt / tilt.sum()
        self.shares = (1.0 - c.reallocation_rate) * self.shares + c.reallocation_rate * target

    def needs(self, t: np.ndarray) -> np.ndarray:
        """Each department's need for money under the owner's objective, from window totals `t`.

        - journey: heard harm per unit of base budget (harm from `listening_source`:
          failures x severity x Kano loss weight, or the complaints, churners, surveyed
          detractors or negative posts blamed on each department);
        - acquisition / conversion: the funnel's departments need reference / observed
          acquisitions (resp. conversion rate, acquisitions per purchase attempt), at
          least 1; the rest need 1;
        - service: the contact centre needs observed / reference contacts (or, with another listening source than
          operations, what that source hears in all), at least 1;
        - own_kpi: each department's observed failure rate over its own standard;
        - consensus: the geometric mean of the journey and own_kpi needs.
        """
        o = self.config.objective
        if o == "journey":
            return self.harm_per_budget(t)
        if o == "own_kpi":
            return self.own_failure(t)
        if o == "consensus":
            return np.sqrt(self.harm_per_budget(t) * self.own_failure(t))
        need = np.ones(N_DEPT)
        if o == "service":
            need[SERVICE] = max(1.0, self.heard_ratio("service", self.service_reading(t)))
        else:
            acquired = t[kernel.TALLY.acquisitions]
            reading = acquired if o == "acquisition" else acquired / max(1.0, acquired + t[kernel.TALLY.lost_sales])
            need[list(FUNNELS[o])] = max(1.0, 1.0 / max(self.heard_ratio(o, reading), 1e-9))
        return need

    def service_reading(self, t: np.ndarray) -> float:
        """What the service objective reads: contacts (operations), or all that its listening source hears (what is
        blamed on no department is not heard)."""
        source = self.config.listening_source
        if source == "operations":
            return t[kernel.TALLY.contacts]
        start = getattr(kernel.TALLY, HEARD[source])
        return t[start : start + N_DEPT].sum()

    def cost_factor(self) -> np.ndarray:
        """(spend per unit of load against plan) ** -cost_weight per department: an owner that weighs cost sees
        less need where a unit of work costs more than planned (the departments' `spend_ratio`)."""
        w = self.config.cost_weight
        if w == 0.0:
            return np.ones(N_DEPT)
        return np.array([d.spend_ratio for d in self.model.departments]) ** -w

    def harm_per_budget(self, t: np.ndarray) -> np.ndarray:
        """Harm per department as heard through `listening_source`, noisy, per unit of base budget share."""
        c, D = self.config, self.model.D
        if c.listening_source == "operations":
            signal = (
                t[kernel.TALLY.failures : kernel.TALLY.failures + N_DEPT]
                * D[:, kernel.COL.severity]
                * D[:, kernel.COL.loss_weight]
            )
        else:
            start = getattr(kernel.TALLY, HEARD[c.listening_source])
            signal = t[start : start + N_DEPT]  # what is blamed on no department is not heard
        harm = signal * self.noise(N_DEPT, slot=0)
        return np.divide(harm, self.base_shares, out=np.zeros(N_DEPT), where=self.base_shares > 0)

    def own_failure(self, t: np.ndarray) -> np.ndarray:
        """Each department's observed failure rate relative to its configured standard, noisy."""
        met = t[kernel.TALLY.encounters : kernel.TALLY.encounters + N_DEPT]
        failed = t[kernel.TALLY.failures : kernel.TALLY.failures + N_DEPT]
        standard = np.array([d.config.failure_rate for d in self.model.departments])
        rate = np.divide(failed, met, out=standard.copy(), where=met > 0)
        return np.divide(rate, standard, out=np.ones(N_DEPT), where=standard > 0) * self.noise(N_DEPT, slot=N_DEPT)

    def heard_ratio(self, name: str, value: float) -> float:
        """A noisy reading relative to the first review's reading of the same signal (1 on the first review)."""
        reading = value * self.noise(1, slot=2 * N_DEPT)[0]
        if self.reference.get(name, 0.0) <= 0.0:
            self.reference[name] = reading
        return reading / self.reference[name] if reading > 0 else 0.0

    def noise(self, n: int, slot: int) -> np.ndarray:
        """Multiplicative lognormal listening noise with mean 1: one factor per reading, slots apart per signal."""
        sigma, day = self.config.listening_noise, self.model.day
        return np.array(
            [math.exp(sigma * rng.normal(self.key, slot + k, day, 0) - 0.5 * sigma * sigma) for k in range(n)]
        )

    def delivered_quality(self, t: np.ndarray) -> float:
        """Encounter-weighted quality net of observed failures over the window."""
        met = t[kernel.TALLY.encounters : kernel.TALLY.encounters + N_DEPT]
        failed = t[kernel.TALLY.failures : kernel.TALLY.failures + N_DEPT]
        D = self.model.D
        if met.sum() == 0:
            return self.promise
        rate = np.divide(failed, met, out=np.zeros(N_DEPT), where=met > 0)
        return float(np.sum(met * (D[:, kernel.COL.quality] - D[:, kernel.COL.severity] * rate)) / met.sum())
