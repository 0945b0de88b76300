"""One semantics, two engines: same seed, bit-identical results for both engines and any thread count."""

import numba
import numpy as np
import pytest
from conftest import simulate, small

from cxsim import kernel as K
from cxsim.domain import DEPARTMENTS
from cxsim.model import CXModel

# Two organisations that between them make every event happen and fill every tally column: a troubled one
# (failures everywhere, a short-staffed contact centre, customers who give up) and a calm one (nothing
# fails, so some churners and detractors have no department to blame).
TROUBLED = [f"departments.{d}.failure_rate=0.04" for d in DEPARTMENTS] + [
    "departments.sales.failure_rate=0.3",
    "departments.marketing.failure_rate=0.3",
    "departments.marketing.severity=0.6",
    "departments.service.capacity_headroom=0.6",
    "customers.complaint_propensity=0.6",
    "journey.max_contact_attempts=2",
    "customers.survey_rate=0.05",
    "customers.base_monthly_churn=0.05",
    "customers.broadcast_share=0.5",
    "market.standard_drift=0.1",  # expectations rise with the standard
    "market.competitor_response=1.0",
    "market.price_per_month=60.0",  # dearer than the competitor: the bill costs value
    "customers.winback_memory_halflife_days=5.0",  # former customers forget fast and come back
    "market.switching_cost=0.0",
    "customers.winback_grudge=0.0",
    "market.advertising_rate=0.01",  # many reached: win-backs after exits blamed on every department
]
CALM = [f"departments.{d}.failure_rate=0.0" for d in DEPARTMENTS] + [
    "departments.service.capacity_headroom=5.0",
    "customers.base_monthly_churn=0.1",
    "market.promise=1.0",  # promised more than delivered: detractors with no failure to blame
    "ownership.promise_policy=fixed",
    "customers.loss_aversion=3.0",
    "customers.survey_rate=0.3",
    "market.advertising_rate=0.005",  # new customers, who have had no failure to blame
]
# Sales meets only prospects (a failed sale is a lost sale, not a customer's failure): no customer
# complains about it, leaves, answers a survey or posts blaming it: these columns stay 0 by construction.
NEVER = {
    "complaints_by_sales",
    "churn_by_sales",
    "survey_detractors_by_sales",
    "posts_negative_by_sales",
    "winbacks_by_sales",
}


def _same(a, b):
    assert np.array_equal(a.history, b.history)
    assert np.array_equal(a.ledger, b.ledger)
    for field in a.population._fields:
        assert np.array_equal(getattr(a.population, field), getattr(b.population, field)), field


def stepped(scenario, engine):
    """A finished run, and every event bit any customer had on any day."""
    model = CXModel(scenario, engine=engine)
    events = 0
    while model.running:
        model.step()
        events |= int(np.bitwise_or.reduce(model.population.events))
    return model, events


@pytest.fixture(scope="module", params=[TROUBLED, CALM], ids=["troubled", "calm"])
def both_engines(request):
    s = small(overrides=request.param)
    return stepped(s, "numba"), stepped(s, "agents")


def test_agents_engine_equals_numba_engine(both_engines):
    (numba_run, numba_events), (agents_run, agents_events) = both_engines
    _same(numba_run, agents_run)
    assert numba_events == agents_events


def test_the_engine_fixtures_reach_every_event_and_tally():
    """Between them the fixtures of the identity test set every event bit and fill every tally column."""
    events, totals = 0, np.zeros(K.N_TALLIES)
    for overrides in (TROUBLED, CALM):
        model, seen = stepped(small(overrides=overrides), "numba")
        events |= seen
        totals += model.history.sum(axis=0)
    assert [b for b in range(K.N_EVENTS) if not events >> b & 1] == []
    assert {name for name, total in zip(K.TALLY_NAMES, totals, strict=True) if total == 0} == NEVER


def test_customers_are_mesa_agents_viewing_their_row(scenario):
    from cxsim.customers import Customer

    model = simulate(scenario.model_copy(update={"days": 5}), engine="agents")
    agents = model.agents_by_type[Customer]
    assert len(agents) == scenario.market.population
    one = agents.select(lambda a: a.row == 7).to_list()[0]
    assert one.state == model.population.state[7]
    assert one.satisfaction == model.population.satisfaction[7]


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_thread_count_does_not_change_results():
    s = small(population=20_000, days=40)  # several chunks, so both threads work
    numba.set_num_threads(1)
    try:
        one = simulate(s)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    two = simulate(s)
    _same(one, two)


def test_same_seed_same_results_other_seed_differs(scenario):
    _same(simulate(scenario), simulate(scenario))
    other = simulate(scenario, seed=scenario.seed + 1)
    assert not np.array_equal(simulate(scenario).history, other.history)
