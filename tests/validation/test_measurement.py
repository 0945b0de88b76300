"""The validation's measuring instruments, on synthetic data where the answer is known."""

import numpy as np
from scipy import optimize

from cxsim import validation as V


def test_bass_fit_recovers_known_p_and_q():
    t = np.arange(365)
    adopted = V.bass_curve(t, 2e-4, 4e-3, 0.02)
    (p, q), _ = optimize.curve_fit(
        lambda t, p, q: V.bass_curve(t, p, q, 0.02), t, adopted, p0=(1e-4, 1e-3), bounds=([0, 0], [0.1, 1.0])
    )
    assert np.isclose(p, 2e-4, rtol=1e-3) and np.isclose(q, 4e-3, rtol=1e-3)


def test_days_to_converge_is_when_half_the_distance_is_closed():
    target = np.array([[0.5, 0.5]])
    path = np.linspace([1.0, 0.0], [0.5, 0.5], 11)[None]  # closes a tenth of the distance a day
    assert V.days_to_converge(path, target)[0] == 5
    assert V.days_to_converge(np.repeat(path[:, :1], 11, axis=1), target)[0] == 11  # never: the run's length


def test_paired_effect_needs_its_interval_on_the_claimed_side():
    control = np.array([10.0, 20.0, 30.0, 40.0])
    assert V.effect("x", control + [1.0, 1.2, 0.9, 1.1], control, +1).passed
    assert not V.effect("x", control + [1.0, -1.2, 0.9, -1.1], control, +1).passed
    assert not V.effect("x", control + 1.0, control, -1).passed
