"""cxsim: an agent-based simulation of who should own an organisation's customer experience.

from cxsim import load_scenario, run
results = run(load_scenario("base", ["ownership.model=siloed"], population=20_000), replicates=5)
results.table(); results.plot()

from cxsim import compare
comparison = compare([load_scenario("siloed"), load_scenario("cco_led")], replicates=5)
comparison.table()   # paired differences against the first scenario, with 95% intervals
"""

import importlib
import os

# Bit-identical engines need the same exp/log in compiled and plain Python code: no SVML vector maths.
os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")
# One parallel region a day: idle OpenMP threads should sleep (microseconds to wake) rather than spin
# on a core that other work needs (with spinning, 2 threads cost twice the CPU when cores are busy).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

# The public API, imported on first use (PEP 562): the scenario loader and `cxsim check` need no numba or mesa.
_API = {
    "CXModel": "cxsim.model",
    "Comparison": "cxsim.comparison",
    "compare": "cxsim.comparison",
    "Results": "cxsim.experiment",
    "run": "cxsim.experiment",
    "ScenarioError": "cxsim.scenario",
    "load_scenario": "cxsim.scenario",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'cxsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
