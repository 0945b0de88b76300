"""Compiling the simulator: numba compiles the kernel once per machine and caches it, and a cold start says so.

`compile_once` is what the command line calls before its first model: with the
cache cold it announces the pause, compiles by building and stepping a tiny
model of the chosen engine, and says how long it took. `CompileClock` records
how long numba spends compiling each function (`cxsim bench` reports it).
"""

import sys
import time

from numba.core import event

from cxsim import customers, kernel

# functions that each engine compiles and that are compiled last in a first run: if these are in the cache,
# everything before them is too
ENTRY_POINTS = {
    "numba": (customers._init_traits, kernel.step_population, kernel.totals),
    "agents": (customers._init_traits, kernel.tally, kernel.totals),
}
TYPICAL_SECONDS = "10-15 s on 2 cores"  # a cold compile, measured by `cxsim bench` (docs/PERFORMANCE.md)


def is_compiled(engine: str) -> bool:
    """Whether numba's cache holds the engine's code for the current source (numba's cache index; if it
    cannot tell, it assumes so and stays quiet)."""
    try:
        return all(f._cache._cache_file._load_index() for f in ENTRY_POINTS[engine])
    except (AttributeError, OSError):  # numba's private cache API moved: stay quiet rather than wrong
        return True


def compile_once(engine: str, say=lambda text: print(text, file=sys.stderr, flush=True)) -> float:
    """Compile the engine's code now if the cache is cold, saying so; the seconds it took (0 if warm)."""
    if is_compiled(engine):
        return 0.0
    from cxsim import metrics
    from cxsim.model import CXModel
    from cxsim.scenario import load_scenario

    say(
        f"cxsim: compiling the simulator for this machine, once (about {TYPICAL_SECONDS}; "
        "later runs load it from numba's cache) ..."
    )
    start = time.perf_counter()
    metrics.run_kpis(
        CXModel(load_scenario(None, ["market.warm_up_days=1"], population=200, days=2, engine=engine)).run()
    )
    seconds = time.perf_counter() - start
    say(f"cxsim: compiled in {seconds:.0f} s")
    return seconds


class CompileClock(event.Listener):
    """Seconds numba spends compiling each function, exclusive of the functions it compiles on the way."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._open: list[list] = []  # [name, start, seconds spent in nested compiles]

    def on_start(self, ev):
        self._open.append([ev.data["dispatcher"].py_func.__qualname__, time.perf_counter(), 0.0])

    def on_end(self, ev):
        name, start, nested = self._open.pop()
        spent = time.perf_counter() - start
        if self._open:
            self._open[-1][2] += spent
        self.seconds[name] = self.seconds.get(name, 0.0) + spent - nested

    def __enter__(self):
        event.register("numba:compile", self)
        return self

    def __exit__(self, *exc):
        event.unregister("numba:compile", self)
