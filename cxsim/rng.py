"""Counter-based randomness: every draw is a pure function of (key, customer, day, slot).

A key is derived from (seed, stream) once; a draw hashes a 64-bit counter built
from the customer id (32 bits), the day (24 bits) and a slot number (8 bits)
with SplitMix64's finaliser. No state is carried, so results do not depend on
the order customers are stepped in, on the thread count or on the engine.
"""

import math

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
TO_UNIT = 2.0**-53

# streams: independent families of draws
CUSTOMERS, POPULATION, NETWORK, OWNER = 1, 2, 3, 4


@njit(cache=True)
def mix64(z):
    """SplitMix64 finaliser: a bijective avalanche of 64 bits."""
    z = (z ^ (z >> np.uint64(30))) * MIX1
    z = (z ^ (z >> np.uint64(27))) * MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _stream_key(seed, stream):
    return mix64(mix64(np.uint64(seed)) + np.uint64(stream) * GOLDEN)


def stream_key(seed: int, stream: int) -> np.uint64:
    """The key of one stream of one seed (a numpy uint64, so compiled callers type it as such)."""
    return np.uint64(_stream_key(seed, stream))


@njit(cache=True)
def draw(key, who, day, slot):
    """A uniform float in [0, 1) for (who, day, slot) under `key`."""
    counter = (np.uint64(day) << np.uint64(40)) | (np.uint64(who) << np.uint64(8)) | np.uint64(slot)
    return float(mix64(mix64(counter + GOLDEN) ^ key) >> np.uint64(11)) * TO_UNIT


@njit(cache=True)
def normal(key, who, day, slot):
    """A standard normal draw (Box-Muller on two slots: `slot` and `slot + 1`)."""
    u1 = 1.0 - draw(key, who, day, slot)
    u2 = draw(key, who, day, slot + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
