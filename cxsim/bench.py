"""`cxsim bench`: how fast the engines step the base scenario, and what that costs (docs/PERFORMANCE.md).

Unit: customer-days per second = population x days / seconds of stepping
(`CXModel.step`, which includes the departments and the owner); setting up a
model and compiling are timed apart, and models are built without the warm start
(`market.warm_up_days = 0`: it is stepping too, before day 0, and would make the agents
engine's set-up take minutes). In one process it measures
- both engines at the same population, runs alternating, medians and spread, and their ratio;
- the numba engine over population sizes, with 1 and 2 threads;
- memory: bytes per customer (state plus network) and the process's peak RSS;
- the memory-bandwidth ceiling (a parallel stream copy) and how far the kernel is from it;
and, in subprocesses with a fresh NUMBA_CACHE_DIR, JIT compiling cold and warm
and the wall time of a small `cxsim run` with a warm cache. Results go to
bench.json, bench.md and scaling.png.
"""

import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from cxsim import kernel
from cxsim.customers import bytes_per_customer
from cxsim.domain import ACTIVE
from cxsim.files import write_folder
from cxsim.memory import check_memory
from cxsim.model import CXModel
from cxsim.scenario import ScenarioError, load_scenario

FULL = dict(
    sizes=(10**3, 10**4, 10**5, 10**6, 10**7),
    days=365,
    big_days=30,
    engines_population=100_000,
    engines_days=3,
    repeats=3,
    stream_mb=512,
    profile_population=10**6,
)
QUICK = dict(
    sizes=(10**3, 10**4),
    days=5,
    big_days=5,
    engines_population=1_000,
    engines_days=2,
    repeats=2,
    stream_mb=16,
    profile_population=10**4,
)
BIG = 10**6  # sizes above this are stepped for `big_days` only; their 365-day time is projected
YEAR = 365
RUN_COMMAND = ["run", "base", "--days", "30", "--population", "10000"]
# the targets: (key, what, threshold, True if the value must be at least the threshold)
TARGETS = (
    ("engine_ratio", "numba / agents engine at 10^5 customers (x)", 200.0, True),
    ("year_1e6_s", "10^6 customers x 365 days, 2 threads (s of stepping)", 10.0, False),
    ("year_1e7_s", "10^7 customers x 365 days, 2 threads (s of stepping, projected)", 120.0, False),
    ("bytes_per_customer", "memory per customer, state + network at degree 10 (B)", 200.0, False),
    ("peak_rss_1e7_gb", "peak RSS with 10^7 customers (GB)", 4.0, False),
    ("run_warm_s", "warm-cache `cxsim run base --days 30 --population 10000` (s wall)", 3.0, False),
    ("cold_run_s", "cold-cache `cxsim run base --days 10 --population 2000` (s wall, compiling included)", 15.0, False),
    ("thread_scaling_1e6", "1 -> 2 threads at 10^6 customers (x)", 1.6, True),
)
COMPILE_CHILD = """
import json, time
t0 = time.perf_counter()
from cxsim import load_scenario
from cxsim.compiler import CompileClock
from cxsim.model import CXModel
t1 = time.perf_counter()
with CompileClock() as clock:
    model = CXModel(load_scenario("base", [], population=2000, days=2))
    model.step()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_model_s": t2 - t1, "functions_s": clock.seconds}))
"""
COLD_RUN = ["run", "base", "--days", "10", "--population", "2000"]  # a new user's first run (issue 12's target)


def _log(msg: str):
    print(msg, file=sys.stderr, flush=True)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


NO_WARM_UP = ["market.warm_up_days=0"]


def scenario(population: int, days: int):
    return load_scenario("base", NO_WARM_UP, population=population, days=days)


def timed_run(population: int, days: int, engine: str = "numba", threads: int | None = None) -> dict:
    """Set up one model and step it `days` days; wall and CPU seconds of stepping, set-up apart."""
    if threads:
        numba.set_num_threads(threads)
    gc.collect()
    rss0 = _rss_bytes()
    t0 = time.perf_counter()
    model = CXModel(scenario(population, days), engine=engine)
    setup = time.perf_counter() - t0
    rss = _rss_bytes() - rss0
    c1, t1 = time.process_time(), time.perf_counter()
    for _ in range(days):
        model.step()
    step, cpu = time.perf_counter() - t1, time.process_time() - c1
    pop = model.population
    out = {
        "engine": engine,
        "population": population,
        "days": days,
        "threads": numba.get_num_threads(),
        "setup_s": setup,
        "step_s": step,
        "cpu_s": cpu,
        "rate": population * days / step,
        "model_rss_bytes": rss,
        "state_bytes_per_customer": sum(a.nbytes for a in pop) / population,
        "bytes_per_customer": bytes_per_customer(pop, model.followers_ptr, model.followers),
    }
    del model, pop
    gc.collect()
    return out


# the parts of a day that `profile` times on their own
PIECES = {
    "kernel": lambda m: kernel.step_population(m.day, 1, *m.kernel_args, m.partial, True),
    "tally": lambda m: kernel.tally(m.population, m.params, m.partial),
    "wom_delivery": lambda m: kernel.spread_wom(m.population, m.followers_ptr, m.followers),
}


def profile(population: int, days: int = 10) -> dict:
    """Where a day's CPU time goes on one thread: the kernel by customer state, its tallies, WOM delivery, the rest.

    Three populations: the base scenario, all prospects and all active (initial customers 0 or everyone),
    in nanoseconds of CPU per customer-day. Tallies are timed on their own, so they read the state from
    memory again (inside the kernel they find it in cache). The rest of `CXModel.step` (departments,
    owner, Erlang-A) is timed at 1,000 customers, where customers cost next to nothing.
    """
    numba.set_num_threads(1)
    out = {}
    for label, initial in (("base", None), ("prospects", 0), ("actives", 100_000)):
        overrides = NO_WARM_UP + ([] if initial is None else [f"market.initial_customers={initial}"])
        model = CXModel(load_scenario("base", overrides, population=population, days=days + 1))
        model.step()
        per = 1e9 / (population * (days - 1))
        c = time.process_time()
        for _ in range(days - 1):
            model.step()
        step = time.process_time() - c
        cpu = {}
        for name, f in PIECES.items():
            c = time.process_time()
            for _ in range(days - 1):
                f(model)
            cpu[name] = time.process_time() - c
        out[label] = {
            "step_ns": step * per,
            "kernel_ns": cpu["kernel"] * per,
            "tally_ns": cpu["tally"] * per,
            "transition_ns": (cpu["kernel"] - cpu["tally"]) * per,
            "wom_delivery_ns": cpu["wom_delivery"] * per,
            "active_share": float(np.mean(model.population.state == ACTIVE)),
        }
        del model
        gc.collect()
    small = CXModel(scenario(1000, YEAR))
    c = time.process_time()
    for _ in range(YEAR):
        small.step()
    rest = 1e3 * (time.process_time() - c) / YEAR
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return {"population": population, "threads": 1, "days": days - 1, "by_population": out, "rest_ms_per_day": rest}


def _spread(values) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": list(values)}


def compare_engines(population: int, days: int, repeats: int) -> dict:
    """Numba and agents engines at the same size, runs alternating; customer-days per second."""
    runs = {"numba": [], "agents": []}
    for r in range(repeats):
        for engine in runs:
            runs[engine].append(timed_run(population, days, engine, numba.config.NUMBA_NUM_THREADS))
            _log(f"  engines {r + 1}/{repeats} {engine}: {runs[engine][-1]['rate']:,.0f} customer-days/s")
    rates = {e: [x["rate"] for x in rs] for e, rs in runs.items()}
    per_cpu = {e: _spread([population * days / x["cpu_s"] for x in rs]) for e, rs in runs.items()}
    return {
        "population": population,
        "days": days,
        "repeats": repeats,
        "numba": _spread(rates["numba"])
        | {"setup_s": _spread([x["setup_s"] for x in runs["numba"]]), "per_cpu_second": per_cpu["numba"]},
        "agents": _spread(rates["agents"])
        | {"setup_s": _spread([x["setup_s"] for x in runs["agents"]]), "per_cpu_second": per_cpu["agents"]},
        "ratio": statistics.median(rates["numba"]) / statistics.median(rates["agents"]),
        "ratio_range": [min(rates["numba"]) / max(rates["agents"]), max(rates["numba"]) / min(rates["agents"])],
    }


def scaling(sizes, days: int, big_days: int, thread_counts) -> list[dict]:
    """The numba engine at each size and thread count (fresh model each; sizes above BIG for `big_days`)."""
    rows = []
    for n in sizes:
        for t in thread_counts:
            d = days if n <= BIG else big_days
            row = timed_run(n, d, "numba", t)
            row["year_s"] = row["step_s"] * YEAR / d
            row["peak_rss_bytes"] = _peak_rss_bytes()
            rows.append(row)
            _log(f"  scaling {n:>10,} customers x {d} days, {t} thread(s): {row['rate'] / 1e6:.1f} M customer-days/s")
    return rows


@njit(parallel=True, cache=True)
def _stream_copy(src, dst):
    for i in prange(src.shape[0]):
        dst[i] = src[i]


def bandwidth(megabytes: int, repeats: int = 5) -> dict:
    """Memory bandwidth of a parallel copy (bytes read + bytes written per second), best of `repeats`."""
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    _stream_copy(src, dst)
    best = min(_timed(lambda: _stream_copy(src, dst)) for _ in range(repeats))
    return {"megabytes": megabytes, "threads": numba.get_num_threads(), "bytes_per_s": 2 * src.nbytes / best}


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def _child(args, cache_dir: str, capture: bool) -> tuple[float, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
    )
    return time.perf_counter() - t, done.stdout or ""


def compile_times(run_repeats: int) -> dict:
    """JIT cost in fresh processes: cold (empty cache), warm (cache hit), and a warm small `cxsim run`."""
    with tempfile.TemporaryDirectory(prefix="cxsim-bench-cache-") as cache:
        cold_wall, cold = _child(["-c", COMPILE_CHILD], cache, True)
        warm_wall, warm = _child(["-c", COMPILE_CHILD], cache, True)
        runs = [_child(["-m", "cxsim", *RUN_COMMAND], cache, False)[0] for _ in range(run_repeats)]
    with tempfile.TemporaryDirectory(prefix="cxsim-bench-cache-") as cache:
        cold_run = _child(["-m", "cxsim", *COLD_RUN], cache, False)[0]
    cold, warm = json.loads(cold), json.loads(warm)
    return {
        "cold": cold | {"wall_s": cold_wall},
        "warm": warm | {"wall_s": warm_wall},
        "compile_s": cold["first_model_s"] - warm["first_model_s"],
        "cold_run_command": "cxsim " + " ".join(COLD_RUN),
        "cold_run_s": cold_run,
        "run_command": "cxsim " + " ".join(RUN_COMMAND),
        "run_warm_s": _spread(runs),
    }


def machine() -> dict:
    cpu = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
    }


def _find(rows, population, threads):
    return next((r for r in rows if r["population"] == population and r["threads"] == threads), None)


def summarise(result: dict) -> dict:
    """Each target's measured value (None where this run did not measure it) and whether it is met."""
    rows, engines = result["scaling"], result["engines"]
    two = max(r["threads"] for r in rows)
    one_m, one_m_1t, ten_m = _find(rows, 10**6, two), _find(rows, 10**6, 1), _find(rows, 10**7, two)
    values = {
        "engine_ratio": engines["ratio"] if engines["population"] == 10**5 else None,
        "year_1e6_s": one_m["year_s"] if one_m else None,
        "year_1e7_s": ten_m["year_s"] if ten_m else None,
        "bytes_per_customer": result["memory"]["bytes_per_customer"],
        "peak_rss_1e7_gb": result["memory"]["peak_rss_bytes"] / 1e9 if ten_m else None,
        "run_warm_s": result["compile"]["run_warm_s"]["median"],
        "cold_run_s": result["compile"]["cold_run_s"],
        "thread_scaling_1e6": one_m["rate"] / one_m_1t["rate"] if one_m and one_m_1t and two > 1 else None,
    }
    return {
        key: {
            "what": what,
            "threshold": threshold,
            "at_least": at_least,
            "value": values[key],
            "met": None
            if values[key] is None
            else (values[key] >= threshold if at_least else values[key] <= threshold),
        }
        for key, what, threshold, at_least in TARGETS
    }


def run_bench(quick: bool = False, sizes=None, days: int | None = None, repeats: int | None = None) -> dict:
    """Every measurement of the benchmark, as one JSON-ready dict."""
    cfg = dict(QUICK if quick else FULL)
    cfg.update({k: v for k, v in (("sizes", sizes), ("days", days), ("repeats", repeats)) if v})
    threads = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})
    result = {
        "command": "cxsim bench" + (" --quick" if quick else ""),
        "config": cfg,
        "machine": machine(),
        "load_average_start": os.getloadavg(),
    }
    _log("warming up (compiling or loading the cache) ...")
    t = time.perf_counter()
    for engine in ("numba", "agents"):
        timed_run(200, 2, engine)
    result["in_process_first_call_s"] = time.perf_counter() - t
    _log(f"engines at {cfg['engines_population']:,} customers x {cfg['engines_days']} days ...")
    result["engines"] = compare_engines(cfg["engines_population"], cfg["engines_days"], cfg["repeats"])
    _log("scaling ...")
    result["scaling"] = scaling(cfg["sizes"], cfg["days"], cfg["big_days"], threads)
    largest = max(result["scaling"], key=lambda r: r["population"])
    result["memory"] = {
        "population": largest["population"],
        "bytes_per_customer": largest["bytes_per_customer"],
        "state_bytes_per_customer": largest["state_bytes_per_customer"],
        "network_bytes_per_customer": largest["bytes_per_customer"] - largest["state_bytes_per_customer"],
        "model_rss_bytes": largest["model_rss_bytes"],
        "peak_rss_bytes": _peak_rss_bytes(),
    }
    _log(f"profile at {cfg['profile_population']:,} customers, 1 thread ...")
    result["profile"] = profile(cfg["profile_population"])
    _log("memory bandwidth ...")
    bw = bandwidth(cfg["stream_mb"])
    best = max(result["scaling"], key=lambda r: (r["threads"], r["population"] if r["population"] <= BIG else 0))
    # traffic model: every state array read and written once a day, the network read once
    traffic = 2 * best["state_bytes_per_customer"] + (best["bytes_per_customer"] - best["state_bytes_per_customer"])
    ceiling = bw["bytes_per_s"] / traffic
    result["bandwidth"] = bw | {
        "traffic_bytes_per_customer_day": traffic,
        "ceiling_rate": ceiling,
        "kernel_population": best["population"],
        "kernel_rate": best["rate"],
        "share_of_ceiling": best["rate"] / ceiling,
    }
    _log("JIT compile, cold and warm, and a warm `cxsim run` (subprocesses) ...")
    result["compile"] = compile_times(1 if quick else 3)
    result["load_average_end"] = os.getloadavg()
    result["targets"] = summarise(result)
    return result


def _m(rate: float) -> str:
    return f"{rate / 1e6:.2f} M"


def markdown(r: dict) -> str:
    """The benchmark's tables as markdown."""
    e, mem, bw, c = r["engines"], r["memory"], r["bandwidth"], r["compile"]
    mach = r["machine"]
    lines = [
        f"`{r['command']}` on {mach['cpu']} ({mach['cores']} cores), Python {mach['python']}, "
        f"numba {mach['numba']}; load average {r['load_average_start'][0]:.2f} at start, "
        f"{r['load_average_end'][0]:.2f} at end.",
        "",
        f"**Engines** at {e['population']:,} customers x {e['days']} days, {e['repeats']} alternating runs each "
        "(customer-days per second of stepping):",
        "",
        "| engine | median | min | max | per CPU-second (median) | set-up (median s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("numba", "agents"):
        x = e[name]
        lines.append(
            f"| {name} | {x['median']:,.0f} | {x['min']:,.0f} | {x['max']:,.0f} | "
            f"{x['per_cpu_second']['median']:,.0f} | {x['setup_s']['median']:.2f} |"
        )
    lines += [
        "",
        f"Ratio numba / agents: **{e['ratio']:,.0f}x** (range {e['ratio_range'][0]:,.0f}-{e['ratio_range'][1]:,.0f}x).",
        "",
        "**Scaling** of the numba engine (fresh model per row; set-up not in the rate):",
        "",
        "| customers | threads | days | set-up s | stepping s | customer-days/s | per CPU-second | CPU/wall "
        "| 365 days s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for x in r["scaling"]:
        projected = "" if x["days"] >= YEAR else " (projected)"
        lines.append(
            f"| {x['population']:,} | {x['threads']} | {x['days']} | {x['setup_s']:.2f} | {x['step_s']:.2f} "
            f"| {_m(x['rate'])} | {_m(x['population'] * x['days'] / x['cpu_s'])} | "
            f"{x['cpu_s'] / x['step_s']:.2f} | {x['year_s']:.1f}{projected} |"
        )
    lines += [
        "",
        f"**Memory** at {mem['population']:,} customers: {mem['bytes_per_customer']:.1f} B per customer "
        f"({mem['state_bytes_per_customer']:.1f} state + {mem['network_bytes_per_customer']:.1f} network); "
        f"the model added {mem['model_rss_bytes'] / 1e9:.2f} GB RSS; the process's peak RSS was "
        f"{mem['peak_rss_bytes'] / 1e9:.2f} GB.",
        "",
        f"**Memory bandwidth**: a {bw['megabytes']} MB stream copy on {bw['threads']} threads moves "
        f"{bw['bytes_per_s'] / 1e9:.1f} GB/s. At {bw['traffic_bytes_per_customer_day']:.0f} B of traffic per "
        f"customer-day (state read and written, network read) that is a ceiling of {_m(bw['ceiling_rate'])} "
        f"customer-days/s; the kernel reached {_m(bw['kernel_rate'])} at {bw['kernel_population']:,} customers, "
        f"{100 * bw['share_of_ceiling']:.0f}% of it.",
        "",
        "**JIT compiling** (fresh processes, base scenario at 2,000 customers, one day):",
        "",
        "| cache | import s | first model + day s | process wall s |",
        "| --- | ---: | ---: | ---: |",
        *(
            f"| {label} | {c[cache]['import_s']:.2f} | {c[cache]['first_model_s']:.2f} | {c[cache]['wall_s']:.2f} |"
            for cache, label in (("cold", "cold (empty)"), ("warm", "warm (hit)"))
        ),
        "",
        f"Compiling costs {c['compile_s']:.1f} s once. `{c['run_command']}` with a warm cache: "
        f"{c['run_warm_s']['median']:.2f} s wall (median of {len(c['run_warm_s']['values'])}); "
        f"`{c['cold_run_command']}` with an empty cache: {c['cold_run_s']:.1f} s wall.",
        "",
        *compile_table(c["cold"]["functions_s"]),
        *profile_table(r["profile"]),
        "**Targets**:",
        "",
        "| target | threshold | measured | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for t in r["targets"].values():
        value = "not measured" if t["value"] is None else f"{t['value']:,.2f}"
        met = "-" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['what']} | {'>=' if t['at_least'] else '<='} {t['threshold']:g} | {value} | {met} |")
    return "\n".join(lines) + "\n"


def compile_table(seconds: dict[str, float], top: int = 8) -> list[str]:
    """Where the cold compile goes: the costliest functions, exclusive of what they compile on the way."""
    ranked = sorted(seconds.items(), key=lambda kv: -kv[1])
    rest = sum(s for _, s in ranked[top:])
    lines = [
        "**Cold compile by function** (numba's compile events, seconds exclusive of nested compiles):",
        "",
        "| function | s |",
        "| --- | ---: |",
    ]
    lines += [f"| `{name}` | {s:.2f} |" for name, s in ranked[:top]]
    return lines + [f"| {len(ranked) - top} others | {rest:.2f} |", f"| total | {sum(seconds.values()):.2f} |", ""]


def profile_table(p: dict) -> list[str]:
    lines = [
        f"**Profile**: CPU per customer-day at {p['population']:,} customers, {p['threads']} thread, "
        f"{p['days']} days, ns (tallies timed alone, so reading the state again):",
        "",
        "| population | active share | whole step | kernel | transition | tallies | WOM delivery |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, x in p["by_population"].items():
        lines.append(
            f"| {label} | {x['active_share']:.2f} | {x['step_ns']:.1f} | {x['kernel_ns']:.1f} | "
            f"{x['transition_ns']:.1f} | {x['tally_ns']:.1f} | {x['wom_delivery_ns']:.1f} |"
        )
    return lines + [
        "",
        f"The rest of a day (departments, owner, Erlang-A queue, totals) costs "
        f"{p['rest_ms_per_day']:.2f} ms of CPU whatever the population.",
        "",
    ]


def plot(r: dict, path):
    """Customer-days per second against population, one line per thread count, with the bandwidth ceiling."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for t in sorted({x["threads"] for x in r["scaling"]}):
        rows = [x for x in r["scaling"] if x["threads"] == t]
        ax.plot([x["population"] for x in rows], [x["rate"] / 1e6 for x in rows], "o-", label=f"numba, {t} thread(s)")
    e = r["engines"]
    ax.plot([e["population"]], [e["agents"]["median"] / 1e6], "s", color="black", label="agents (Mesa)")
    ax.axhline(r["bandwidth"]["ceiling_rate"] / 1e6, color="grey", ls="--", label="memory-bandwidth ceiling")
    ax.axhline(10**6 * YEAR / 10.0 / 1e6, color="green", ls=":", label="target: 10^6 x 365 days in 10 s")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="customers",
        ylabel="M customer-days per second",
        title="cxsim engine throughput",
    )
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


OUTPUT_NAMES = frozenset({"bench.json", "bench.md", "scaling.png"})


def write(r: dict, out_dir) -> list[Path]:
    """bench.json, bench.md and scaling.png into `out_dir`, replaced whole (`cxsim.files.write_folder`)."""

    def write(folder: Path):
        (folder / "bench.json").write_text(json.dumps(r, indent=1))
        (folder / "bench.md").write_text(markdown(r))
        plot(r, folder / "scaling.png")

    return write_folder(out_dir, write)


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(float(s)) for s in text.split(","))
    except ValueError:
        raise ScenarioError(f"--sizes {text}: expected comma-separated whole numbers, e.g. 1e3,1e4") from None
    if not sizes or min(sizes) < 10:
        raise ScenarioError(f"--sizes {text}: expected populations of at least 10")
    try:
        largest = load_scenario("base", population=max(sizes))
    except ScenarioError:
        raise ScenarioError(f"--sizes {text}: {max(sizes):.3g} people is too large") from None
    check_memory(largest, f"--sizes {text}")
    return sizes
