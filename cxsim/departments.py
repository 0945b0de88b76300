"""Departments: budget -> quality, failure probability and capacity; service's contact-centre queue."""

import math

import mesa
import numpy as np

from cxsim.domain import DEPARTMENTS
from cxsim.kernel import COL
from cxsim.market import Market

KANO_WEIGHTS = {  # (gain weight, loss weight): how much exceeding / falling short counts
    "must_be": (0.1, 1.0),
    "one_dimensional": (1.0, 1.0),
    "attractive": (1.0, 0.1),
}


def erlang_a(arrivals_per_hour: float, service_per_hour: float, agents: int, patience_hours: float):
    """Mean wait (hours) and abandonment probability of an M/M/c+M queue (Erlang-A), exactly.

    The stationary distribution of the birth-death chain is summed in log space
    until its tail is negligible (Garnett, Mandelbaum & Reiman 2002).
    """
    lam, mu, c, theta = arrivals_per_hour, service_per_hour, max(1, agents), 1.0 / patience_hours
    if lam <= 0.0:
        return 0.0, 0.0
    n_max = c + int(max(50.0, 10.0 * lam / theta, 10.0 * math.sqrt(lam / theta)))
    n = np.arange(1, n_max + 1)
    death = np.minimum(n, c) * mu + np.maximum(n - c, 0) * theta
    log_p = np.concatenate(([0.0], np.cumsum(np.log(lam / death))))
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    queue = float(np.sum(np.maximum(np.arange(n_max + 1) - c, 0) * p))
    return queue / lam, min(1.0, theta * queue / lam)


# How a department estimates the represented market's load from the sample's (`Department.observe`, docs/MODEL.md
# §4.21): its slow level averages about k days (then the sample's counting noise weighs no more than one day of the
# market's own), at most LEVEL_DAYS; its fast level averages FAST_DAYS; a departure of the fast level from the slow one
# by more than CHANGE_SD standard deviations of the sample's counting noise is a change in load, passed on at once
LEVEL_DAYS = 30.0
FAST_DAYS = 3.0
CHANGE_SD = 3.0


class Department(mesa.Agent):
    """A department: its budget pays for capacity and buys quality, with a lag and diminishing returns.

    At its reference budget b0 it is staffed for its reference load with
    `capacity_headroom` to spare (capacity C0) and has its configured quality q0
    and failure rate f0. Every `planning_days` it plans capacity for the
    period's typical day (its median load: a one-off incident is not staffed
    for) with the same headroom, at most what its effective budget
    b pays for (C0 b/b0); the plan is in place `hiring_lead_days` later. The
    budget spread over the load planned for L (at first the reference load L0),
    r = (b/b0) / (L/L0), gives q = q0 r^eq and f = f0 r^-ef: growth on the same
    budget thins it, a cut bites at once and, at the next plan, through capacity.
    Load beyond capacity fails.
    """

    def __init__(self, model, name: str, config, reference_load: float):
        super().__init__(model)
        self.name = name
        self.index = DEPARTMENTS.index(name)
        self.config = config
        self.budget = config.budget  # this year's allocation (currency per year)
        self.effective_budget = config.budget  # what the budget has bought so far (lagged)
        self.reference_load = self.planned_load = reference_load  # encounters per day it is planned for
        self.capacity = config.capacity_headroom * reference_load  # encounters per day it is staffed for
        self.plans: list[tuple[int, float, float]] = []  # (day in place, capacity, load) of plans to come
        self.period_loads: list[float] = []  # each day's encounters since the last plan
        self.load = reference_load  # yesterday's encounters
        self.slow = self.fast = reference_load  # at a represented scale: mean loads over a month and a few days
        self.market_load = reference_load  # yesterday's load as the represented market has it, per sample person
        self.outage = 0.0
        self.spend_ratio = 1.0  # r: the budget per unit of load planned for, against the reference
        gain, loss = KANO_WEIGHTS[config.kano]
        row = model.D[self.index]
        row[COL.severity], row[COL.gain_weight], row[COL.loss_weight] = config.severity, gain, loss
        self.step()

    @property
    def ratio(self) -> float:
        """The effective budget against the reference budget, b/b0."""
        return self.effective_budget / self.config.reference_budget

    def step(self, planning: bool = True):
        """Today's quality and failure rate; with `planning`, capacity is planned (not in the warm-up)."""
        self.effective_budget += (self.budget - self.effective_budget) / self.config.lag_days
        c = self.config
        load = self.market_load = self.observe(self.load)
        if planning:
            self.plan_capacity(self.model.day)
        r = self.spend_ratio = max(self.ratio * self.reference_load / self.planned_load, 1e-6)
        quality = min(1.0, c.quality * r**c.quality_elasticity)
        failure = min(0.95, c.failure_rate * r**-c.failure_elasticity)
        overload = max(0.0, 1.0 - self.capacity / load) if load > 0 else 0.0
        failure = max(failure + (1.0 - failure) * overload, self.outage)
        row = self.model.D[self.index]
        row[COL.quality], row[COL.failure] = quality, failure

    def observe(self, load: float) -> float:
        """Yesterday's load `load` (the sample's encounters) as the represented market has it, in the sample's
        units (per k people, k = market.scale); without `market.represents` it is `load` itself.

        The sample's count is its expected load plus counting noise of variance about the load; the market's is k
        times the expected load plus noise of variance k times it. k times the sample's count would carry k times
        the market's variance, which a convex queue turns into waits that grow as the sample shrinks. So the
        expected load is estimated without the counting noise and scaled by k, and the day's deviation from it by
        sqrt(k) only. The estimate is a slow level (an exponentially weighted mean over (k + 1) / 2 days, at most
        LEVEL_DAYS: about k days' weight, so that its counting noise is no larger than one day's of the market),
        unless a fast level (FAST_DAYS) departs from it by more than CHANGE_SD standard deviations of the fast
        level's counting noise: then the load has changed, and the departure beyond that threshold counts at once
        (soft thresholding). Both levels take in `load`.
        """
        k = self.model.config.market.scale
        if k == 1.0:
            return load
        slow_days = min(LEVEL_DAYS, (k + 1.0) / 2.0)  # an EWMA over T days weighs about 2T - 1 days
        fast_days = min(FAST_DAYS, slow_days)
        self.slow += (load - self.slow) / slow_days
        self.fast += (load - self.fast) / fast_days
        gain = 1.0 / fast_days
        threshold = CHANGE_SD * math.sqrt(max(self.slow, 0.0) * gain / (2.0 - gain))
        departure = self.fast - self.slow
        level = self.slow + math.copysign(max(0.0, abs(departure) - threshold), departure)
        return max(0.0, level + (load - level) / math.sqrt(k))

    def plan_capacity(self, day: int):
        """Yesterday's load joins the period's; at the period's end a plan is made; plans due today arrive."""
        c = self.config
        if day > 0:
            self.period_loads.append(self.market_load)
            if day % c.planning_days == 0:
                typical = max(float(np.median(self.period_loads)), 1e-9)
                affordable = c.capacity_headroom * self.reference_load * max(self.ratio, 0.0)
                self.plans.append((day + c.hiring_lead_days, min(c.capacity_headroom * typical, affordable), typical))
                self.period_loads = []
        while self.plans and self.plans[0][0] <= day:
            _, self.capacity, self.planned_load = self.plans.pop(0)


class ServiceDepartment(Department):
    """Service also runs the contact centre: complaints from everywhere queue here."""

    def step(self, planning: bool = True):
        super().step(planning)
        cc = self.model.config.contact_centre
        hours = cc.hours_per_day
        k = self.model.config.market.scale  # the queue of the represented market: its contacts and its agents
        self.staff = max(1, round(k * self.capacity / (cc.contacts_per_agent_hour * hours)))
        self.wait_hours, self.abandonment = erlang_a(
            k * self.market_load / hours, cc.contacts_per_agent_hour, self.staff, cc.patience_minutes / 60.0
        )
        tolerance = cc.wait_tolerance_minutes / 60.0
        # what the wait is worth to a customer: a loss for every tolerated wait beyond the tolerated one
        self.wait_value = -self.model.config.customers.wait_loss * max(0.0, self.wait_hours - tolerance) / tolerance


def reference_loads(scenario) -> dict[str, float]:
    """Expected encounters per day of each department at the start: what capacity is sized for."""
    m, j, c, d = scenario.market, scenario.journey, scenario.customers, scenario.departments
    n0, net = m.initial_customers, c.network
    prospects = m.population - n0
    # purchase attempts: advertising plus word of mouth from the initial customers' share of each prospect's links
    wom_per_prospect = (
        net.degree * n0 / max(1, m.population) * c.wom_propensity * (1.0 - c.broadcast_share) * m.wom_adoption
    )
    # those reached who pick the firm over the competitor at day 0's offer
    choice = Market(scenario).today(0, m.promise, m.initial_customers / m.population).choice
    purchases = prospects * (m.advertising_rate + wom_per_prospect) * choice
    voice = c.complaint_propensity * (0.5 + m.switching_cost) * 2.0
    rates = {
        "product": j.usage_per_day,
        "digital": j.digital_per_day,
        "fulfilment": j.orders_per_day,
        "marketing": j.marketing_contacts_per_day,
        "billing": 1.0 / j.billing_cycle_days,
    }
    complaints = n0 * sum(
        r * getattr(d, k).failure_rate * min(1.0, voice * getattr(d, k).severity) for k, r in rates.items()
    )
    resolve = max(0.05, 1.0 - d.service.failure_rate)  # not the handoff: capacity must not depend on governance
    loads = {k: n0 * r for k, r in rates.items()}
    loads["sales"] = purchases * (1.0 - j.digital_purchase_share)
    loads["digital"] += purchases * j.digital_purchase_share
    loads["service"] = n0 * j.support_per_day + complaints * min(j.max_contact_attempts, 1.0 / resolve)
    least = 1.0 / m.scale  # at least one encounter a day in the represented market
    return {k: max(least, v) for k, v in loads.items()}
