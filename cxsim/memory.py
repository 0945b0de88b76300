"""What fits in this machine's memory, checked before any model is built (imports neither numba nor mesa,
so that `cxsim check` stays quick)."""

import os

from cxsim.scenario import ScenarioError
from cxsim.schema import Scenario

STATE_BYTES_PER_CUSTOMER = 56  # the itemsizes of cxsim.customers.FIELDS (tests/test_outputs.py holds them equal)


def check_memory(scenario: Scenario, what: str = "market.population") -> None:
    """Refuse a population whose model would not fit in this machine's memory: every customer's arrays
    twice (today's and the day-0 copy) and its links twice (network and followers)."""
    state = STATE_BYTES_PER_CUSTOMER
    links = 8 + 4 * scenario.customers.network.degree  # an int64 offset and int32 ids per customer
    need = scenario.market.population * 2 * (state + links)
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > memory:
        raise ScenarioError(
            f"{what}: {scenario.market.population:,} people need about {need / 2**30:,.0f} GiB, "
            f"more than this machine's memory ({memory / 2**30:,.0f} GiB); expected at most "
            f"{memory // (2 * (state + links)):,}"
        )
