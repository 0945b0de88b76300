"""The model's invariants, mechanisms and one customer's path, each checked against what it must do."""

import numpy as np
import pytest
from conftest import simulate, small

from cxsim import kernel as K
from cxsim.customers import FIELDS, Population
from cxsim.departments import erlang_a
from cxsim.domain import ACTIVE, BILLING, DEPARTMENTS, DIGITAL, NO_DEPT, PRODUCT, PROSPECT
from cxsim.model import LEDGER, CXModel, kernel_params


def test_conservation_and_ranges(scenario):
    m = simulate(scenario)
    h = m.history
    n = scenario.market.population
    assert np.all(h[:, K.TALLY.prospects] + h[:, K.TALLY.active] + h[:, K.TALLY.churned] == n)
    assert np.isfinite(h).all() and np.isfinite(m.ledger).all()
    budgets = m.ledger[:, [LEDGER.index(f"budget_{d}") for d in DEPARTMENTS]]
    failures = m.ledger[:, [LEDGER.index(f"failure_{d}") for d in DEPARTMENTS]]
    assert (budgets >= 0).all() and (m.ledger[:, LEDGER.index("pool")] >= 0).all()
    assert ((failures >= 0) & (failures <= 1)).all()
    assert (0 <= m.ledger[:, LEDGER.index("abandonment")]).all() and (
        m.ledger[:, LEDGER.index("abandonment")] <= 1
    ).all()
    assert (0 <= m.ledger[:, LEDGER.index("promise")]).all() and (m.ledger[:, LEDGER.index("promise")] <= 1).all()
    # flows add up: churned customers on the last day = churn over the run (churn is absorbing)
    assert h[-1, K.TALLY.churned] == h[:, K.TALLY.churn].sum()
    # every churn is attributed to exactly one department or to none
    assert h[:, K.TALLY.churn_by : K.TALLY.churn_by + K.N_DEPT + 1].sum() == h[:, K.TALLY.churn].sum()
    assert h[:, K.TALLY.complaints_by : K.TALLY.complaints_by + K.N_DEPT].sum() == h[:, K.TALLY.complaints].sum()
    for field in ("satisfaction", "expectation", "peak", "last", "incident"):
        assert np.isfinite(getattr(m.population, field)).all()


def test_outage_raises_that_departments_failures_only_in_its_window():
    quiet = simulate(small(days=40).model_copy(update={"events": ()}))
    s = small(days=40)
    hit = simulate(s)
    digital = K.TALLY.failures + DIGITAL

    def rate(m, a, b):
        return m.history[a:b, digital].sum() / m.history[a:b, K.TALLY.encounters + DIGITAL].sum()

    assert rate(hit, 10, 15) > 0.4 > rate(quiet, 10, 15)  # outage of size 0.5 on days 10-14
    assert rate(hit, 0, 10) == rate(quiet, 0, 10)  # nothing differs before the event (common random numbers)


def test_budget_cut_cuts_the_budget_and_raises_failures():
    s = small(days=80)
    m = simulate(s)
    uncut = simulate(s.model_copy(update={"events": tuple(e for e in s.events if e.kind != "budget_cut")}))
    service_budget = m.ledger[:, LEDGER.index("budget_service")]
    assert service_budget[30] < 0.6 * service_budget[29]  # cut by half from day 30

    def failure(run):
        return run.ledger[50:, LEDGER.index("failure_service")].mean()

    assert failure(m) > failure(uncut)  # the lagged budget buys less quality (same customers, same luck)


def test_promise_event_raises_the_promise_for_its_duration(scenario):
    m = simulate(scenario)
    promise = m.ledger[:, LEDGER.index("promise")]
    assert promise[25] == pytest.approx(min(1.0, promise[19] * 1.3), rel=0.05)
    assert promise[40] < promise[25]


def test_owner_moves_budget_toward_the_department_that_fails():
    base = dict(population=3000, days=180)
    calm = simulate(small(**base))
    broken = simulate(small(overrides=["departments.billing.failure_rate=0.2"], **base))

    def share(m):
        return m.owner.shares[BILLING]

    assert share(broken) > share(calm)
    fixed = simulate(small(overrides=['ownership.objective="fixed"', "departments.billing.failure_rate=0.2"], **base))
    assert np.allclose(fixed.owner.shares, fixed.owner.base_shares)


def test_reinvestment_spiral_starves_budgets():
    """Revenue funds budgets: a broken product loses customers, revenue, then budget."""
    s = small(
        population=3000,
        days=270,
        overrides=[
            "departments.product.failure_rate=0.3",
            "finance.budget_policy=reinvestment",
            "finance.reinvestment_share=1.0",
        ],
    )
    ok = simulate(
        small(
            population=3000,
            days=270,
            overrides=["finance.budget_policy=reinvestment", "finance.reinvestment_share=1.0"],
        )
    )
    bad = simulate(s)
    pool = LEDGER.index("pool")
    assert bad.ledger[-1, pool] < ok.ledger[-1, pool]
    assert bad.history[-1, K.TALLY.active] < ok.history[-1, K.TALLY.active]


def test_erlang_a():
    wait, abandon = erlang_a(1.0, 10.0, 10, 0.25)
    assert wait < 1e-6 and abandon < 1e-5  # almost idle
    # overloaded twice over, the fluid limit (Garnett et al. 2002): a share 1 - 1/rho abandons, and the
    # mean time in queue over all arrivals is E[min(patience, ln(rho) / theta)] = (1 - 1/rho) / theta
    wait, abandon = erlang_a(2000.0, 10.0, 100, 0.25)
    assert abandon == pytest.approx(0.5, abs=0.03)
    assert wait == pytest.approx(0.25 * 0.5, rel=0.05)
    # nearly no abandonment: Erlang C; 2 agents, rho = 0.5 -> P(wait) = 1/3, W = P / (c mu - lambda)
    wait, _ = erlang_a(1.0, 1.0, 2, 1e6)
    assert wait == pytest.approx((1 / 3) / (2 - 1), rel=1e-3)


class OneCustomer:
    """A hand-built population of one active customer, stepped by the plain-Python transition."""

    def __init__(self):
        s = small(days=10)
        self.pop = Population(*(np.zeros(1, dtype) for dtype in FIELDS.values()))
        self.pop.state[0] = ACTIVE
        self.pop.expectation[0] = 0.75
        self.pop.complaint[0] = self.pop.blame[0] = NO_DEPT
        self.pop.complaint_propensity[0] = 1.0
        self.pop.tenure[0] = 5  # no bill in the next days
        self.P = kernel_params(s)._replace(
            usage_rate=0.0,
            digital_rate=0.0,
            order_rate=0.0,
            marketing_rate=0.0,
            support_rate=0.0,
            survey_rate=0.0,
            voice_factor=1.0,
        )
        self.D = np.zeros((K.N_DEPT, K.N_DCOLS))
        self.D[:, K.COL.quality] = 0.75
        self.D[:, K.COL.severity] = 0.5
        self.D[:, K.COL.gain_weight] = self.D[:, K.COL.loss_weight] = 1.0
        self.G = K.Today(
            promise=0.75,
            wait_value=0.0,
            abandon=0.0,
            handoff=1.0,
            stay=0.0,
            undeterred=0.0,
            competitor=0.6,
            price_value=0.0,
            offer_value=0.15,
            choice=0.5,
            expectation_shift=0.0,
        )
        self.day = 0

    def step(self):
        K.customer_day_in_python(0, self.day, np.uint64(7), self.P, self.D, self.G, self.pop)
        self.day += 1
        return int(self.pop.events[0])

    def has(self, bits, bit):
        return bool(bits & (1 << bit))


def test_one_customer_failure_complaint_recovery():
    c = OneCustomer()
    assert c.step() == 0  # nothing happens on a quiet day
    before = float(c.pop.satisfaction[0])

    c.P, c.D[PRODUCT, K.COL.failure] = c.P._replace(usage_rate=1.0), 1.0  # the product fails in use
    bits = c.step()
    assert c.has(bits, K.EVENT.failed + PRODUCT) and c.has(bits, K.EVENT.new_complaint)
    assert c.pop.complaint[0] == PRODUCT and c.pop.blame[0] == PRODUCT and c.pop.complained[0] == 1
    hurt = float(c.pop.satisfaction[0])
    assert hurt < before and c.pop.last[0] < 0 and c.pop.peak[0] == c.pop.last[0]

    c.P, c.D[PRODUCT, K.COL.failure] = c.P._replace(usage_rate=0.0), 0.0
    c.G = c.G._replace(handoff=0.0)  # the context is lost in the transfer: the customer must call again
    bits = c.step()
    assert c.has(bits, K.EVENT.contact) and c.has(bits, K.EVENT.handoff_lost) and not c.has(bits, K.EVENT.resolved)
    assert c.pop.complaint[0] == PRODUCT and c.pop.attempts[0] == 1
    repeated = float(c.pop.satisfaction[0])
    assert c.pop.last[0] < 0  # having to repeat oneself is a loss (cumulative satisfaction averages it in)

    c.G = c.G._replace(handoff=1.0)  # now service resolves it: a partial recovery
    bits = c.step()
    assert c.has(bits, K.EVENT.repeat_contact) and c.has(bits, K.EVENT.resolved)
    assert c.pop.complaint[0] == NO_DEPT
    recovered = float(c.pop.satisfaction[0])
    assert repeated < recovered < before  # better, never back to where it was
    assert c.pop.incident[0] > 0  # the incident stays in the churn hazard


def resolve_one_complaint(recovery_share: float) -> tuple[float, float]:
    """A product failure, then a complaint resolved at the first contact: (cs, peak) after the resolution."""
    c = OneCustomer()
    c.P = c.P._replace(recovery_share=recovery_share)
    c.P, c.D[PRODUCT, K.COL.failure] = c.P._replace(usage_rate=1.0), 1.0
    c.step()
    c.P, c.D[PRODUCT, K.COL.failure] = c.P._replace(usage_rate=0.0), 0.0
    assert c.has(c.step(), K.EVENT.resolved)
    return float(c.pop.satisfaction[0]), float(c.pop.peak[0])


def test_recovery_repairs_a_share_of_the_harm_and_nothing_without_recovery():
    P = kernel_params(small())
    harm = P.loss_aversion * 1.0 * 0.5  # lambda x Kano loss weight x severity of OneCustomer's product
    none_cs, none_peak = resolve_one_complaint(0.0)
    half_cs, half_peak = resolve_one_complaint(0.5)
    assert half_cs - none_cs == pytest.approx(P.loss_learning * 0.5 * harm, rel=1e-5)
    assert half_peak == pytest.approx(none_peak + 0.5 * harm, rel=1e-5)
    assert none_peak < half_peak < 0  # the worst moment is softened, not forgotten


def test_warm_start_settles_memories_without_churn_or_acquisition():
    s = small(days=5)
    cold = CXModel(s.model_copy(update={"market": s.market.model_copy(update={"warm_up_days": 0})}))
    warm = CXModel(s)
    n0 = s.market.initial_customers
    for m in (cold, warm):
        assert m.day == 0 and (m.population.state[:n0] == ACTIVE).all()
        assert (m.population.state[n0:] == PROSPECT).all()
        assert not m.history.any()  # nothing recorded before day 0
    assert not cold.population.satisfaction.any()
    active = warm.population.state == ACTIVE
    assert np.all(warm.population.tenure[active] == cold.population.tenure[active] + s.market.warm_up_days)
    assert (warm.population.satisfaction[active] != 0).mean() > 0.9  # they remember their journey
    assert (warm.population.incident[active] > 0).any()


def test_a_settled_owner_runs_the_warm_up_an_unsettled_one_takes_over_on_day_0():
    s = small(days=5)
    settled = CXModel(s)
    entered = CXModel(s.model_copy(update={"ownership": s.ownership.model_copy(update={"settled": False})}))
    assert (entered.owner.shares == entered.owner.base_shares).all() and entered.owner.promise == s.market.promise
    assert (settled.owner.shares != settled.owner.base_shares).any() and settled.owner.promise != s.market.promise
    assert settled.owner.reference == {}  # the run's first review sets the growth objectives' reference
    # the customers' memories differ only through the organisation they met
    assert (settled.population.state == entered.population.state).all()


def test_unresolved_complaint_is_given_up_after_max_attempts():
    c = OneCustomer()
    c.P, c.D[PRODUCT, K.COL.failure] = c.P._replace(usage_rate=1.0), 1.0
    c.step()
    c.P, c.D[PRODUCT, K.COL.failure] = c.P._replace(usage_rate=0.0), 0.0
    c.G = c.G._replace(abandon=1.0)  # nobody gets through
    bits = [c.step() for _ in range(int(c.P.max_attempts))]
    assert all(c.has(b, K.EVENT.abandoned) for b in bits)
    assert c.has(bits[-1], K.EVENT.gave_up) and not any(c.has(b, K.EVENT.gave_up) for b in bits[:-1])
    assert c.pop.complaint[0] == NO_DEPT


def test_loss_looms_larger_than_an_equal_gain():
    s = small()
    P, rival = kernel_params(s), s.market.competitor_attractiveness

    def value(x):
        return K.encounter_value(x, 0.75, 0.0, 1.0, 1.0, rival, P)

    gain = value(0.85) - value(0.75)
    loss = value(0.75) - value(0.65)
    assert loss > gain > 0
