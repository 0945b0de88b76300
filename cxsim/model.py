"""CXModel: departments, the CX owner and the customers, wired into one day per step."""

import math

import mesa
import numpy as np

from cxsim import kernel, rng
from cxsim.customers import Customer, Population, followers, make_population, small_world
from cxsim.departments import Department, ServiceDepartment, reference_loads
from cxsim.domain import DEPARTMENTS, MARKETING, N_DEPT, SERVICE
from cxsim.ownership import Owner
from cxsim.schema import Scenario

# daily book-keeping beside the customer tallies
LEDGER = ("revenue", "cost", "pool", "promise", "wait_hours", "abandonment") + tuple(
    f"budget_{d}" for d in DEPARTMENTS) + tuple(f"failure_{d}" for d in DEPARTMENTS)


def parameter_vector(s: Scenario) -> np.ndarray:
    """The scenario's customer-level parameters in the kernel's layout."""
    c, j, m = s.customers, s.journey, s.market
    P = np.zeros(kernel.N_PARAMS)
    values = {
        kernel.LOSS_AVERSION: c.loss_aversion,
        kernel.EXPECTATION_LEARNING: c.expectation_learning,
        kernel.PROMISE_LEARNING: c.promise_learning,
        kernel.GAIN_LEARNING: c.gain_learning,
        kernel.LOSS_LEARNING: c.loss_learning,
        kernel.MEMORY_WEIGHT: c.memory_weight,
        kernel.MEMORY_DECAY: 0.5 ** (1.0 / c.memory_halflife_days),
        kernel.INCIDENT_DECAY: 0.5 ** (1.0 / c.incident_halflife_days),
        kernel.VOICE_FACTOR: 0.5 + m.switching_cost,  # exit vs voice: cheap exit, less voice
        kernel.WOM_POS_SLOPE: c.wom_positive_slope,
        kernel.WOM_NEG_SLOPE: c.wom_negative_slope,
        kernel.BROADCAST_SHARE: c.broadcast_share,
        kernel.SURVEY_RATE: c.survey_rate,
        kernel.SURVEY_RESPONSE: c.survey_response_rate,
        kernel.SURVEY_SELF_SELECTION: c.survey_self_selection,
        kernel.CHURN_BASE: c.base_monthly_churn * j.billing_cycle_days / 30.0 * math.exp(
            -c.churn_switching * m.switching_cost),
        kernel.CHURN_ATTITUDE: c.churn_attitude,
        kernel.CHURN_INCIDENT: c.churn_incident,
        kernel.RECOVERY_SHARE: c.recovery_share,
        kernel.HANDOFF_LOSS: c.handoff_loss,
        kernel.CONTACT_FATIGUE: c.contact_fatigue,
        kernel.RATING_ANCHOR: c.rating_anchor,
        kernel.RATING_SLOPE: c.rating_slope,
        kernel.USAGE_RATE: j.usage_per_day,
        kernel.DIGITAL_RATE: j.digital_per_day,
        kernel.ORDER_RATE: j.orders_per_day,
        kernel.ORDER_HANDOFF_SHARE: j.order_handoff_share,
        kernel.MARKETING_RATE: j.marketing_contacts_per_day,
        kernel.SUPPORT_RATE: j.support_per_day,
        kernel.BILLING_CYCLE: j.billing_cycle_days,
        kernel.DIGITAL_PURCHASE_SHARE: j.digital_purchase_share,
        kernel.WOM_AFTER_CHURN: j.wom_after_churn_days,
        kernel.MAX_ATTEMPTS: j.max_contact_attempts,
        kernel.WOM_ADOPTION: m.wom_adoption,
        kernel.WOM_DETERRENCE: m.wom_deterrence,
        kernel.INITIAL_CUSTOMERS: m.initial_customers,
        kernel.PERFORMANCE_WEIGHT: c.performance_weight,
        kernel.COMPETITOR_QUALITY: m.competitor_attractiveness,
    }
    for index, value in values.items():
        P[index] = value
    return P


class CXModel(mesa.Model):
    """One organisation and its market; `step()` is one day.

    Order within a day: scheduled events, budget allocation, departments (quality,
    failures, the contact-centre queue from yesterday's load), the owner's review,
    then every customer's transition, tallies, finance.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None, engine: str | None = None):
        self.seed = scenario.seed if seed is None else seed
        super().__init__(rng=self.seed)
        self.config = scenario
        self.engine = engine or scenario.engine
        self.day = 0
        self.D = np.zeros((N_DEPT, kernel.N_DCOLS))
        self.G = np.zeros(kernel.N_GLOBALS)
        self.P = parameter_vector(scenario)
        m = scenario.market
        net = scenario.customers.network
        self.population = make_population(scenario, self.seed)
        self.followers_ptr, self.followers = followers(*small_world(m.population, net.degree, net.rewire, self.seed))
        self.kernel_args = (rng.stream_key(self.seed, rng.CUSTOMERS), self.P, self.D, self.G, self.population)
        self.partial = np.zeros((kernel.n_chunks(m.population), kernel.N_TALLIES))
        self.history = np.zeros((scenario.days, kernel.N_TALLIES))
        self.ledger = np.zeros((scenario.days, len(LEDGER)))

        loads = reference_loads(scenario)
        self.departments = [
            (ServiceDepartment if name == "service" else Department)(self, name, config, loads[name])
            for name, config in scenario.departments
        ]
        self.service = self.departments[SERVICE]
        budgets = np.array([d.config.budget for d in self.departments])
        self.pool = self.initial_pool = budgets.sum()
        shares = budgets / self.pool if self.pool > 0 else np.full(N_DEPT, 1.0 / N_DEPT)
        self.owner = Owner(self, scenario.ownership, shares, m.promise)
        self.reference_revenue = m.initial_customers * m.price_per_month * 12.0
        if self.engine == "agents":
            Customer.create_agents(self, m.population, list(range(m.population)))
        self.warm_up(m.warm_up_days)

    def warm_up(self, days: int):
        """The initial customers live `days` days of their journey before day 0, so day 0 starts from memories.

        The organisation runs as planned: the departments as set up (base budgets at
        their reference loads), the initial promise, no owner reviews. Nobody churns and
        nothing is recorded, so the initial customers (the first rows) do not meet
        anyone else, and each lives its days on its own. Draws come from their own
        stream, so day 0 on meets the same random numbers whatever the warm-up.
        """
        n0 = self.config.market.initial_customers
        P = self.P.copy()
        P[kernel.CHURN_BASE] = 0.0
        G = self.G
        G[kernel.PROMISE] = self.owner.promise
        G[kernel.HANDOFF] = self.config.ownership.handoff_consistency
        args = (rng.stream_key(self.seed, rng.WARM_UP), P, self.D, G, Population(*(f[:n0] for f in self.population)))
        if self.engine == "numba":
            kernel.warm_up_population(days, *args)
            return
        run_args, self.kernel_args = self.kernel_args, args
        initial = self.agents_by_type[Customer].select(lambda a: a.row < n0)
        for t in range(days):
            self.day = t
            initial.do("step")
        self.kernel_args, self.day = run_args, 0

    def step(self):
        t = self.day
        s = self.config
        outage, cut, promise_factor = self.events_today(t)
        for k, d in enumerate(self.departments):
            d.budget = self.pool * self.owner.shares[k] * cut[k]
            d.outage = outage[k]
            d.step()
        self.owner.step()

        G, m = self.G, s.market
        previous = self.history[t - 1] if t > 0 else np.zeros(kernel.N_TALLIES)
        G[kernel.PROMISE] = min(1.0, max(0.0, self.owner.promise * promise_factor))
        G[kernel.HANDOFF] = s.ownership.handoff_consistency
        marketing = self.departments[MARKETING]
        ad_probability = min(1.0, m.advertising_rate * max(marketing.ratio, 0.0) ** m.advertising_elasticity
                             * math.exp(m.promise_pull * (G[kernel.PROMISE] - m.promise))
                             * (1.0 - self.D[MARKETING, kernel.FAILURE]))
        pos_exposure = previous[kernel.T_BROADCAST_POSITIVE] * m.broadcast_reach / m.population
        neg_exposure = previous[kernel.T_BROADCAST_NEGATIVE] * m.broadcast_reach / m.population
        G[kernel.STAY] = (1.0 - ad_probability) * math.exp(-m.wom_adoption * pos_exposure)
        G[kernel.UNDETERRED] = math.exp(-m.wom_deterrence * neg_exposure)

        if self.engine == "numba":
            kernel.step_population(t, *self.kernel_args, self.partial)
        else:
            self.agents_by_type[Customer].do("step")
            kernel.tally(self.population, self.P, self.partial)
        kernel.spread_wom(self.population, self.followers_ptr, self.followers)
        today = kernel.totals(self.partial)
        self.history[t] = today

        for k, d in enumerate(self.departments):
            d.load = today[kernel.T_ENCOUNTERS + k]
        self.service.load = today[kernel.T_CONTACTS]
        budgets = [d.budget for d in self.departments]
        revenue = today[kernel.T_BILLED_VALUE] * m.price_per_month * 12.0 * s.journey.billing_cycle_days / 365.0
        cost = (sum(budgets) + s.ownership.overhead * self.pool) / 365.0
        self.ledger[t] = (revenue, cost, self.pool, G[kernel.PROMISE], self.service.wait_hours,
                          self.service.abandonment, *budgets, *self.D[:, kernel.FAILURE])
        period = s.finance.budget_period_days
        if (t + 1) % period == 0:
            # the budget follows revenue: a share of each currency unit gained or lost is reinvested
            annual = self.ledger[t + 1 - period:t + 1, 0].sum() * 365.0 / period
            self.pool = max(0.0, self.initial_pool + s.finance.reinvestment_share * (annual - self.reference_revenue))
        self.day += 1
        self.running = self.day < s.days

    def events_today(self, t: int):
        """Per-department outage level and budget factor, and the promise factor, from `[[events]]`."""
        outage = np.zeros(N_DEPT)
        cut = np.ones(N_DEPT)
        promise = 1.0
        for ev in self.config.events:
            if not ev.day <= t < ev.day + (ev.duration or self.config.days):
                continue
            targets = range(N_DEPT) if ev.target == "all" else [DEPARTMENTS.index(ev.target)]
            for k in targets:
                if ev.kind == "outage":
                    outage[k] = max(outage[k], ev.size)
                elif ev.kind == "budget_cut":
                    cut[k] *= 1.0 - ev.size
            if ev.kind == "promise":
                promise *= 1.0 + ev.size
        return outage, cut, promise

    def run(self):
        while self.running and self.day < self.config.days:
            self.step()
        return self
