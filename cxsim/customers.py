"""Customers: the population as structure-of-arrays, its social network, and the Mesa view of one row."""

import math
from collections import namedtuple

import mesa
import numpy as np
from numba import njit, prange

from cxsim import kernel, rng
from cxsim.domain import ACTIVE, NO_DEPT

# One numpy array per field; a customer is a row index. docs/MODEL.md describes each field.
FIELDS = {
    "state": np.int8,  # prospect / active / churned
    "expectation": np.float32,  # expected quality, 0..1
    "satisfaction": np.float32,  # cumulative satisfaction
    "peak": np.float32,  # the most intense encounter still remembered
    "last": np.float32,  # the last encounter
    "incident": np.float32,  # recent failures, decaying
    "blame": np.int8,  # the department that hurt most recently/most (-1: none)
    "blame_weight": np.float32,  # how much that hurt, decaying
    "complaint": np.int8,  # department of the open complaint (-1: none)
    "attempts": np.int8,  # contacts made on the open complaint
    "complained": np.int8,  # voiced at least once this tenure
    "tenure": np.int32,  # days active (or days since churn)
    "value": np.float32,  # revenue multiplier (mean 1)
    "tolerance": np.float32,  # zone of tolerance around the expectation
    "complaint_propensity": np.float32,
    "wom_propensity": np.float32,
    "wom": np.int8,  # word of mouth sent today to the network (+1, -1, 0)
    "heard_positive": np.int8,  # positive network messages sent yesterday by those it listens to
    "heard_negative": np.int8,  # negative ones
    "events": np.uint32,  # bits of what happened today (kernel.EVENT)
}
Population = namedtuple("Population", FIELDS)
if kernel.N_EVENTS > 8 * np.dtype(FIELDS["events"]).itemsize:
    raise ImportError(f"kernel.EVENT has {kernel.N_EVENTS} bits; Population.events holds {FIELDS['events'].__name__}")


def bytes_per_customer(pop: Population, indptr: np.ndarray, indices: np.ndarray) -> float:
    n = len(pop.state)
    return (sum(a.nbytes for a in pop) + indptr.nbytes + indices.nbytes) / n


@njit(cache=True)
def _init_traits(pop, key, n_initial, promise, tolerance, complaint, wom, dispersion, tenure_span):
    # one thread: a few draws per customer (0.1 s for 10^7) do not pay for compiling a parallel loop
    for i in range(pop.state.shape[0]):
        z = rng.normal(key, i, 0, 0)
        pop.value[i] = math.exp(dispersion * z - 0.5 * dispersion * dispersion)
        pop.tolerance[i] = 2.0 * tolerance * rng.draw(key, i, 0, 2)
        pop.complaint_propensity[i] = min(1.0, 2.0 * complaint * rng.draw(key, i, 0, 3))
        pop.wom_propensity[i] = min(1.0, 2.0 * wom * rng.draw(key, i, 0, 4))
        pop.blame[i] = NO_DEPT
        pop.complaint[i] = NO_DEPT
        if i < n_initial:
            pop.state[i] = ACTIVE
            pop.expectation[i] = promise
            pop.tenure[i] = int(rng.draw(key, i, 0, 5) * tenure_span)


def make_population(scenario, seed: int) -> Population:
    """Every customer's traits; the first `initial_customers` rows start active at the promise."""
    n = scenario.market.population
    pop = Population(*(np.zeros(n, dtype) for dtype in FIELDS.values()))
    c = scenario.customers
    _init_traits(
        pop,
        rng.stream_key(seed, rng.POPULATION),
        scenario.market.initial_customers,
        scenario.market.promise,
        c.tolerance,
        c.complaint_propensity,
        c.wom_propensity,
        scenario.market.value_dispersion,
        365,
    )
    return pop


@njit(parallel=True, cache=True)
def _ring_links(order, degree, rewire, key, indices):
    n = order.shape[0]
    half = degree // 2
    for p in prange(n):
        i = order[p]
        for s in range(degree):
            offset = s + 1 if s < half else half - s - 1
            j = order[(p + offset) % n]
            if rng.draw(key, i, 1, s) < rewire:
                j = int(rng.draw(key, i, 2, s) * (n - 1))
                if j >= i:
                    j += 1
            indices[i * degree + s] = j


@njit(cache=True)
def _hashes(key, n):
    out = np.empty(n, np.uint64)
    for i in range(n):
        out[i] = rng.mix64(np.uint64(i) ^ key)
    return out


def ring_order(n: int, seed: int) -> np.ndarray:
    """The customers in their order around the network's ring: neighbours on the ring hear each other."""
    return np.argsort(_hashes(rng.stream_key(seed, rng.NETWORK), n), kind="stable").astype(np.int32)


def small_world(n: int, degree: int, rewire: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A Watts-Strogatz network as CSR arrays: whom each customer hears word of mouth from.

    Customers sit on a ring in a pseudo-random order (so initial customers are not
    clustered); each listens to `degree` ring neighbours, each link rewired with
    probability `rewire` to a random other customer. Links are directed.
    """
    degree = min(degree, (n - 1) // 2 * 2)
    key = rng.stream_key(seed, rng.NETWORK)
    indptr = np.arange(0, n * degree + 1, degree, dtype=np.int64)
    indices = np.empty(n * degree, np.int32)
    if degree:
        _ring_links(ring_order(n, seed), degree, rewire, key, indices)
    return indptr, indices


@njit(cache=True)
def _reverse(indptr, indices, ptr, fill, out):
    """Counting sort of the links by listened-to customer (plain loops: numpy's bincount and cumsum cost seconds
    of compiling)."""
    for k in range(indices.shape[0]):
        ptr[indices[k] + 1] += 1
    for j in range(ptr.shape[0] - 1):
        ptr[j + 1] += ptr[j]
        fill[j] = ptr[j]
    for i in range(indptr.shape[0] - 1):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            out[fill[j]] = i
            fill[j] += 1


def followers(indptr: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Who listens to each customer (the links reversed, CSR, listeners in increasing order): where its messages go."""
    ptr = np.zeros(len(indptr), np.int64)
    out = np.empty(len(indices), np.int32)
    _reverse(indptr, indices, ptr, np.empty(len(indptr) - 1, np.int64), out)
    return ptr, out


class Customer(mesa.Agent):
    """One customer as a Mesa agent: a view of its row, stepped by the plain-Python transition."""

    def __init__(self, model, row: int):
        super().__init__(model)
        self.row = row

    def step(self):
        kernel.customer_day_in_python(self.row, self.model.day, *self.model.kernel_args)

    def __getattr__(self, field):
        if field in FIELDS:
            return getattr(self.model.population, field)[self.row]
        raise AttributeError(field)
