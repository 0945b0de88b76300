"""Each stylized fact of MODEL_NOTES.md as a controlled experiment on the defaults (cxsim.validation).

Small scale (population 10,000, 4 replicates per arm, one year); experiments/validate.py
runs the same functions larger and writes docs/VALIDATION.md. Arms shared between facts
(the base) are run once per session.
"""

import pytest

from cxsim import validation as V

SCALE = V.Scale(population=10_000, replicates=4)


def unshown(fact, names):
    finding = V.FACTS[fact](SCALE)
    assert finding.measures
    return [(m.name, m.value, m.ci95, m.expected) for m in finding.measures if m.name in names and not m.passed]


@pytest.mark.parametrize("fact", list(V.FACTS))
def test_stylized_fact(fact):
    names = {m.name for m in V.FACTS[fact](SCALE).measures} - V.GAPS.get(fact, {}).keys()
    failed = unshown(fact, names)
    assert not failed, f"fact {fact} not shown: {failed}"


@pytest.mark.parametrize("fact", [pytest.param(n, marks=pytest.mark.xfail(reason="; ".join(V.GAPS[n].values()),
                                                                        strict=True)) for n in V.GAPS])
def test_known_gap(fact):
    """What the model does not reproduce (docs/VALIDATION.md says why); strict, so a fix shows up here."""
    assert not unshown(fact, V.GAPS[fact].keys())
