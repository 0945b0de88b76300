"""Counter-based randomness: every draw is a pure function of (key, who, day, slot).

A key is derived from (seed, stream) once. The seat of (who, day) hashes a
64-bit counter (day in the high 32 bits, who in the low 32) with two rounds of
SplitMix64's finaliser; the seat then seeds a SplitMix64 sequence whose word w
gives two 32-bit uniforms, slots 2w and 2w + 1. A customer-day's work therefore
costs one seat and one finaliser per pair of draws it needs. No state is
carried, so results do not depend on the order customers are stepped in, on
the thread count or on the engine.
"""

import math

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
LOW32 = np.uint64(0xFFFFFFFF)
TO_UNIT = 2.0**-32

# streams: independent families of draws
CUSTOMERS, POPULATION, NETWORK, OWNER, WARM_UP = 1, 2, 3, 4, 5


# Explicit signatures: one compiled version each, where the kernel's constant slots would otherwise
# compile one specialisation per slot (numba types a constant argument as its literal value).
@njit("uint64(uint64)", cache=True)
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


@njit("uint64(uint64, int64, int64)", cache=True)
def seat(key, who, day):
    """The 64-bit seed of everything drawn for `who` on `day` under `key`."""
    counter = (np.uint64(day) << np.uint64(32)) | np.uint64(who)
    return mix64(mix64(counter + GOLDEN) ^ key)


@njit("UniTuple(float64, 2)(uint64, int64)", cache=True)
def uniform2(s, slot):
    """Two uniforms in [0, 1) from seat `s`: those of `slot` (even) and `slot + 1`, from one SplitMix64 word."""
    h = mix64(s + np.uint64((slot >> 1) + 1) * GOLDEN)
    return float(h & LOW32) * TO_UNIT, float(h >> np.uint64(32)) * TO_UNIT


@njit("float64(uint64, int64)", cache=True)
def uniform(s, slot):
    """The uniform of `slot` from seat `s` (half of a `uniform2` word)."""
    even, odd = uniform2(s, slot & ~1)
    return odd if slot & 1 else even


@njit("float64(uint64, int64, int64, int64)", cache=True)
def draw(key, who, day, slot):
    """A uniform float in [0, 1) for (who, day, slot) under `key`."""
    return uniform(seat(key, who, day), slot)


@njit("float64(uint64, int64, int64, int64)", cache=True)
def normal(key, who, day, slot):
    """A standard normal draw (Box-Muller on two slots: `slot` and `slot + 1`)."""
    s = seat(key, who, day)
    u1 = 1.0 - uniform(s, slot)
    u2 = uniform(s, slot + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
