"""One semantics, two engines: same seed, bit-identical results for both engines and any thread count."""

import numba
import numpy as np
import pytest

from conftest import simulate, small


def _same(a, b):
    assert np.array_equal(a.history, b.history)
    assert np.array_equal(a.ledger, b.ledger)
    for field in a.population._fields:
        assert np.array_equal(getattr(a.population, field), getattr(b.population, field)), field


def test_agents_engine_equals_numba_engine(scenario):
    numba_run = simulate(scenario, engine="numba")
    agents_run = simulate(scenario, engine="agents")
    assert numba_run.history[:, :].sum() > 0
    _same(numba_run, agents_run)


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
