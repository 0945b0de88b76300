"""cxsim: an agent-based simulation of who should own an organisation's customer experience.

    from cxsim import load_scenario, run
    results = run(load_scenario("base", ["ownership.model=siloed"], population=20_000), replicates=5)
    results.table(); results.plot()

    from cxsim import compare
    comparison = compare([load_scenario("siloed"), load_scenario("cco_led")], replicates=5)
    comparison.table()   # paired differences against the first scenario, with 95% intervals
"""

import os

# Bit-identical engines need the same exp/log in compiled and plain Python code: no SVML vector maths.
os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")
# One parallel region a day: idle OpenMP threads should sleep (microseconds to wake) rather than spin
# on a core that other work needs (with spinning, 2 threads cost twice the CPU when cores are busy).
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from cxsim.comparison import Comparison, compare  # noqa: E402
from cxsim.experiment import Results, run  # noqa: E402
from cxsim.model import CXModel  # noqa: E402
from cxsim.scenario import ScenarioError, load_scenario  # noqa: E402

__all__ = ["CXModel", "Comparison", "Results", "ScenarioError", "compare", "load_scenario", "run"]
