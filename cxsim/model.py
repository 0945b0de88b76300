"""CXModel: departments, the CX owner and the customers, wired into one day per step."""

import math
from typing import NamedTuple

import mesa
import numpy as np

from cxsim import finance, kernel, rng
from cxsim.customers import Customer, Population, followers, make_population, small_world
from cxsim.departments import Department, ServiceDepartment, reference_loads
from cxsim.domain import DEPARTMENTS, MARKETING, N_DEPT, SERVICE
from cxsim.kernel import TALLY
from cxsim.market import Market, MarketDay
from cxsim.ownership import Owner
from cxsim.scenario import sample_of
from cxsim.schema import Scenario

# daily book-keeping beside the customer tallies
LEDGER = (
    ("revenue", "cost", "pool", "promise", "wait_hours", "abandonment", "price", "competitor_quality")
    + tuple(f"budget_{d}" for d in DEPARTMENTS)
    + tuple(f"failure_{d}" for d in DEPARTMENTS)
)


def kernel_params(s: Scenario) -> kernel.Params:
    """The scenario's customer-level parameters as the kernel reads them."""
    c, j, m = s.customers, s.journey, s.market
    values = dict(
        loss_aversion=c.loss_aversion,
        expectation_learning=c.expectation_learning,
        promise_learning=c.promise_learning,
        gain_learning=c.gain_learning,
        loss_learning=c.loss_learning,
        memory_weight=c.memory_weight,
        memory_decay=0.5 ** (1.0 / c.memory_halflife_days),
        incident_decay=0.5 ** (1.0 / c.incident_halflife_days),
        voice_factor=0.5 + m.switching_cost,  # exit vs voice: cheap exit, less voice
        wom_positive_slope=c.wom_positive_slope,
        wom_negative_slope=c.wom_negative_slope,
        broadcast_share=c.broadcast_share,
        survey_rate=c.survey_rate,
        survey_response=c.survey_response_rate,
        survey_self_selection=c.survey_self_selection,
        churn_base=c.base_monthly_churn * j.billing_cycle_days / 30.0 * math.exp(-c.churn_switching * m.switching_cost),
        churn_attitude=c.churn_attitude,
        churn_incident=c.churn_incident,
        recovery_share=c.recovery_share,
        handoff_loss=c.handoff_loss,
        contact_fatigue=c.contact_fatigue,
        rating_anchor=c.rating_anchor,
        rating_slope=c.rating_slope,
        usage_rate=j.usage_per_day,
        digital_rate=j.digital_per_day,
        order_rate=j.orders_per_day,
        marketing_rate=j.marketing_contacts_per_day,
        support_rate=j.support_per_day,
        billing_cycle=j.billing_cycle_days,
        digital_purchase_share=j.digital_purchase_share,
        wom_after_churn=j.wom_after_churn_days,
        max_attempts=j.max_contact_attempts,
        wom_adoption=m.wom_adoption,
        wom_deterrence=m.wom_deterrence,
        initial_customers=m.initial_customers,
        performance_weight=c.performance_weight,
        order_handoff_share=j.order_handoff_share,
        choice_sensitivity=m.choice_sensitivity,
        switching_cost=m.switching_cost,
        winback_memory_decay=0.5 ** (1.0 / c.winback_memory_halflife_days),
        winback_grudge=c.winback_grudge,
    )
    return kernel.Params(**{name: float(value) for name, value in values.items()})


class Steps(NamedTuple):
    """What `[[events]]` change today: per department an outage level and a budget factor; the promise's and
    prices' factors; a step in the competitor's quality."""

    outage: np.ndarray
    cut: np.ndarray
    promise: float
    price: float
    competitor_price: float
    competitor_quality: float


class CXModel(mesa.Model):
    """One organisation and its market; `step()` is one day.

    Order within a day: scheduled events, budget allocation, departments (quality,
    failures, the contact-centre queue from yesterday's load), the owner's review,
    then every customer's transition, tallies, finance.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None, engine: str | None = None):
        scenario = sample_of(scenario)  # with market.represents: the company's customers and budgets, sampled
        self.seed = scenario.seed if seed is None else seed
        super().__init__(rng=self.seed)
        self.config = scenario
        self.engine = engine or scenario.engine
        self.day = 0
        self.D = np.zeros((N_DEPT, kernel.N_DCOLS))  # the department table, refreshed by the departments
        self.params = kernel_params(scenario)
        m = scenario.market
        net = scenario.customers.network
        self.population = make_population(scenario, self.seed)
        self.followers_ptr, self.followers = followers(*small_world(m.population, net.degree, net.rewire, self.seed))
        self.key = rng.stream_key(self.seed, rng.CUSTOMERS)
        self.kernel_args = ()  # what a customer's day reads, set every day (`Customer.step`)
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
        self.market = Market(scenario)
        self.market_day = self.market.today(0, m.promise, self.market.initial_share)
        if self.engine == "agents":
            Customer.create_agents(self, m.population, list(range(m.population)))
        self.warm_up(m.warm_up_days)

    def warm_up(self, days: int):
        """The initial customers live `days` days of their journey before day 0, so day 0 starts from memories.

        Nobody churns and nobody is won, so the initial customers (the first rows) do not
        meet anyone else. The departments work at their reference loads, as planned. With
        `ownership.settled` the owner runs the organisation through these days, reviewing
        what the customers' days show, so its budget shares and promise start where it
        keeps them (an owner whose objective reads acquisitions, which the warm-up has
        none of, only sets the promise); otherwise the budgets are as entered and the
        promise is the initial one. Draws come from their own stream, so day 0 on meets
        the same random numbers whatever the warm-up.
        """
        if not days:
            return
        n0 = self.config.market.initial_customers
        params = self.params._replace(churn_base=0.0)
        initial = Population(*(f[:n0] for f in self.population))
        key = rng.stream_key(self.seed, rng.WARM_UP)
        agents = self.agents_by_type[Customer].select(lambda a: a.row < n0) if self.engine == "agents" else None
        if not self.config.ownership.settled:
            self.kernel_args = (key, params, self.D, self.today(self.market_day, stay=1.0, undeterred=1.0), initial)
            if agents:
                for t in range(days):
                    self.day = t
                    agents.do("step")
                self.day = 0
            else:  # the organisation does not change: every day in one call
                kernel.step_population(0, days, *self.kernel_args, self.partial, False)
            return
        # settled: day by day, tallied, so that the owner can review what the customers' days show
        run_history, self.history = self.history, np.zeros((days, kernel.N_TALLIES))
        partial = np.zeros((kernel.n_chunks(n0), kernel.N_TALLIES))
        for t in range(days):
            self.day = t
            for k, d in enumerate(self.departments):
                d.budget = self.pool * self.owner.shares[k]
                d.step(planning=False)
            self.owner.step(warming_up=True)
            market = self.market.today(0, self.owner.promise, self.market.initial_share)
            self.kernel_args = (key, params, self.D, self.today(market, stay=1.0, undeterred=1.0), initial)
            if agents:
                agents.do("step")
                kernel.tally(initial, params, partial)
            else:
                kernel.step_population(t, 1, *self.kernel_args, partial, True)
            self.history[t] = kernel.totals(partial)
        self.history, self.day = run_history, 0
        self.owner.settle()

    def today(self, market: MarketDay, stay: float, undeterred: float) -> kernel.Today:
        """Today's organisation-wide state as the customers meet it: the promise, the contact centre, the handoffs,
        the pull of advertising and broadcasts on prospects, and the market (`MarketDay`)."""
        return kernel.Today(
            promise=market.promise,
            wait_value=self.service.wait_value,
            abandon=self.service.abandonment,
            handoff=self.config.ownership.handoff_consistency,
            stay=stay,
            undeterred=undeterred,
            competitor=market.competitor,
            price_value=market.price_value,
            offer_value=market.offer_value,
            choice=market.choice,
            expectation_shift=market.expectation_shift,
        )

    def step(self):
        t = self.day
        s = self.config
        steps = self.events_today(t)
        for k, d in enumerate(self.departments):
            d.budget = self.pool * self.owner.shares[k] * steps.cut[k]
            d.outage = steps.outage[k]
            d.step()
        self.owner.step()

        m = s.market
        previous = self.history[t - 1] if t > 0 else np.zeros(kernel.N_TALLIES)
        promise = min(1.0, max(0.0, self.owner.promise * steps.promise))
        share = previous[TALLY.active] / m.population if t > 0 else self.market.initial_share
        self.market_day = self.market.today(t, promise, share, steps)
        marketing = self.departments[MARKETING]
        ad_probability = min(
            1.0,
            m.advertising_rate
            * marketing.spend_ratio**m.advertising_elasticity
            * math.exp(m.promise_pull * (promise - m.promise))
            * (1.0 - self.D[MARKETING, kernel.COL.failure]),
        )
        pos_exposure = previous[TALLY.broadcast_positive] * m.broadcast_reach / m.population
        neg_exposure = previous[TALLY.broadcast_negative] * m.broadcast_reach / m.population
        today = self.today(
            self.market_day,
            stay=(1.0 - ad_probability) * math.exp(-m.wom_adoption * pos_exposure),
            undeterred=math.exp(-m.wom_deterrence * neg_exposure),
        )
        self.kernel_args = (self.key, self.params, self.D, today, self.population)

        if self.engine == "numba":
            kernel.step_population(t, 1, *self.kernel_args, self.partial, True)
        else:
            self.agents_by_type[Customer].do("step")
            kernel.tally(self.population, self.params, self.partial)
        kernel.spread_wom(self.population, self.followers_ptr, self.followers)
        tallies = kernel.totals(self.partial)
        self.history[t] = tallies

        for k, d in enumerate(self.departments):
            d.load = tallies[TALLY.encounters + k]
        self.service.load = tallies[TALLY.contacts]
        budgets = [d.budget for d in self.departments]
        revenue = self.revenue_of(tallies[TALLY.billed_value])
        cost = (sum(budgets) + s.ownership.overhead * self.pool) / 365.0
        self.ledger[t] = (
            revenue,
            cost,
            self.pool,
            promise,
            self.service.wait_hours,
            self.service.abandonment,
            self.market_day.price,
            self.market_day.competitor,
            *budgets,
            *self.D[:, kernel.COL.failure],
        )
        period = s.finance.budget_period_days
        if (t + 1) % period == 0:
            annual = self.ledger[t + 1 - period : t + 1, 0].sum() * 365.0 / period
            self.pool = finance.next_pool(
                s.finance, annual, self.initial_pool, s.ownership.overhead, self.reference_revenue
            )
        self.day += 1
        self.running = self.day < s.days

    def revenue_of(self, billed_value: float) -> float:
        """The revenue of bills of this total value at today's price (a customer's value is its bill's multiplier,
        mean 1)."""
        return billed_value * self.market_day.price * 12.0 * self.config.journey.billing_cycle_days / 365.0

    def events_today(self, t: int) -> Steps:
        """What `[[events]]` change on day t."""
        outage, cut = np.zeros(N_DEPT), np.ones(N_DEPT)
        factors = {"promise": 1.0, "price": 1.0, "competitor_price": 1.0}
        quality_step = 0.0
        for ev in self.config.events:
            if not ev.day <= t < ev.day + (ev.duration or self.config.days):
                continue
            if ev.kind in ("outage", "budget_cut"):
                for k in range(N_DEPT) if ev.aim == "all" else [DEPARTMENTS.index(ev.aim)]:
                    if ev.kind == "outage":
                        outage[k] = max(outage[k], ev.size)
                    else:
                        cut[k] *= 1.0 - ev.size
            elif ev.kind == "competitor" and ev.aim == "quality":
                quality_step += ev.size
            else:  # a factor: the promise, the firm's price or the competitor's
                factors["competitor_price" if ev.kind == "competitor" else ev.kind] *= 1.0 + ev.size
        return Steps(outage, cut, competitor_quality=quality_step, **factors)

    def run(self):
        while self.running and self.day < self.config.days:
            self.step()
        return self
