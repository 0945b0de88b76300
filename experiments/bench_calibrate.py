"""Throughput of a calibration (issue 16's benchmark): the same calibration on 1 worker (in this process) and on
a local Dask cluster of N workers, side by side, optimize and (optionally) ABC-SMC.

    .venv/bin/python experiments/bench_calibrate.py experiments/bench_calibrate.toml --workers 1,2 \
        [--abc-generations 2 --abc-particles 100] [--abc-workers 2]

Prints, per method and worker count: the runs, the wall time (cluster start included), the runs per second,
the seconds of running alone (`Runner.evaluate`), and the speed-up against 1 worker; one run's time in this
process; and the load average before and after (the machine may be shared). ABC with fewer generations than
the file's 6 is a reduced run: the script prints the particles each generation needed and extrapolates the
file's generations from the last measured one and the sampler's measured surplus (whole batches of
particles / 2 proposals are run; pyabc counts those up to the last accepted): an extrapolation, said so, and a
lower bound, as acceptance falls with epsilon. It also prints the temperatures (or epsilons), the last
generation's effective sample size and the verdict on each target.
"""

import argparse
import dataclasses
import os
import tempfile
import time

from cxsim.calibration import calibrate, load_calibration
from cxsim.calibration.runs import Runner
from cxsim.compiler import compile_once
from cxsim.sweep import Cores


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def one_run_seconds(cal, repeats: int = 3) -> float:
    """One run of the calibration's scenario in this process, 1 numba thread (the median of `repeats`)."""
    runner = Runner(cal, Cores(workers=1), progress=False)
    values = {p.key: (p.low * p.high) ** 0.5 if p.log else (p.low + p.high) / 2 for p in cal.parameters}
    times = []
    with runner:
        runner.evaluate([values], [10**6])  # warm
        for r in range(repeats):
            start = time.perf_counter()
            runner.evaluate([values], [10**6 + 1 + r])
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def measure(cal, workers: int) -> dict:
    """One whole calibration into a fresh folder: runs, wall seconds, seconds of running."""
    seconds = {}
    original = Runner.evaluate

    def timed(self, points, seeds):  # the time spent running (the rest: Optuna or pyabc, and the report)
        start = time.perf_counter()
        try:
            return original(self, points, seeds)
        finally:
            seconds["running"] = seconds.get("running", 0.0) + time.perf_counter() - start

    Runner.evaluate = timed
    try:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            summary = calibrate(cal, out, Cores(workers=workers), progress=False)
            wall = time.perf_counter() - start
            generations = epsilons = ess = None
            if cal.file.method == "abc":  # particles simulated per generation (t = -1: pyabc's calibration sample)
                import pyabc

                history = pyabc.History(f"sqlite:///{out}/abc.db")
                pops = history.get_all_populations()
                generations = {int(t): int(n) for t, n in zip(pops.t, pops.samples, strict=True)}
                epsilons = [float(e) for t, e in zip(pops.t, pops.epsilon, strict=True) if t >= 0]
                weights = history.get_weighted_distances().w.to_numpy(float)  # the last generation's
                ess = weights.sum() ** 2 / (weights**2).sum()
    finally:
        Runner.evaluate = original
    return {
        "runs": summary["runs"],
        "wall": wall,
        "running": seconds.get("running", 0.0),
        "notes": summary["notes"],
        "generations": generations,
        "epsilons": epsilons,
        "ess": ess,
        "verdicts": {name: t["verdict"] for name, t in summary["targets"].items()},
    }


def report(method: str, rows: dict[int, dict]) -> None:
    base = rows.get(1)
    for workers, r in rows.items():
        speed = f", {base['wall'] / r['wall']:.2f}x the 1-worker wall" if base and workers != 1 else ""
        print(
            f"{method}, {workers} worker(s): {r['runs']} runs in {r['wall']:.1f} s wall "
            f"({r['runs'] / r['wall']:.2f} runs/s; running {r['running']:.1f} s, "
            f"{r['runs'] / r['running']:.2f} runs/s){speed}"
        )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("file", nargs="?", default="experiments/bench_calibrate.toml")
    p.add_argument("--workers", default="1,2", help="worker counts for optimize, e.g. 1,2")
    p.add_argument("--abc-generations", type=int, default=0, help="ABC-SMC generations to measure (0: no ABC)")
    p.add_argument("--abc-particles", type=int, default=100)
    p.add_argument("--abc-workers", default="2", help="worker counts for ABC, e.g. 1,2")
    p.add_argument("--abc-full-generations", type=int, default=6, help="the generations to extrapolate to")
    args = p.parse_args()
    cal = load_calibration(args.file)
    n_params, n_targets = len(cal.parameters), len(cal.targets)
    print(
        f"{cal.path}: {cal.scenario.market.population:,} people, {cal.file.days} days, {n_params} parameters, "
        f"{n_targets} targets, {cal.file.replicates} replicates per trial; {os.cpu_count()} cores; "
        f"load average {load()} at start"
    )
    compile_once(cal.scenario.engine)
    print(f"one run in this process (1 thread): {one_run_seconds(cal):.2f} s")
    optimize = {w: measure(cal, w) for w in (int(x) for x in args.workers.split(","))}
    report(f"optimize ({cal.file.trials} trials, the best {cal.file.rerun_top} re-run)", optimize)
    print(f"load average {load()} after optimize")
    if args.abc_generations:
        file = cal.file.model_copy(
            update={"method": "abc", "generations": args.abc_generations, "particles": args.abc_particles}
        )
        abc_cal = dataclasses.replace(cal, file=file)
        rows = {w: measure(abc_cal, w) for w in (int(x) for x in args.abc_workers.split(","))}
        report(f"abc ({args.abc_generations} generations of {args.abc_particles} particles)", rows)
        r = rows[max(rows)]
        print(f"  {r['notes'][0]}")
        print(f"load average {load()} after abc")
        gens = r["generations"]
        print(f"  particles simulated by generation (-1: pyabc's calibration sample): {gens}")
        print(
            f"  epsilon (the temperature, with likelihood acceptance) by generation: "
            f"{', '.join(f'{e:.3g}' for e in r['epsilons'])}; last generation's effective sample size "
            f"{r['ess']:.1f} of {args.abc_particles}"
        )
        print(f"  verdicts: {r['verdicts']}")
        if args.abc_generations < args.abc_full_generations:
            # the sampler runs whole batches of particles / 2 proposals, so each generation simulates up to a
            # batch more than pyabc counts: the measured surplus per generation is carried forward too
            reps = cal.file.replicates
            simulated = r["runs"] / reps - 1  # particles run (less the estimate's re-run)
            surplus = (simulated - sum(gens.values())) / len(gens)
            last = gens[max(gens)]
            more = args.abc_full_generations - args.abc_generations
            total = r["runs"] + more * (last + surplus) * reps
            rate = r["runs"] / r["wall"]
            print(
                f"abc extrapolated to {args.abc_full_generations} generations, each further one as many particles "
                f"as the last measured ({last}) and the measured surplus of the sampler's batches ({surplus:.0f} "
                f"per generation): about {total:.0f} runs, {total / rate / 60:.0f} min at {rate:.2f} runs/s on "
                f"{max(rows)} worker(s) (a lower bound: later generations accept fewer)"
            )


if __name__ == "__main__":
    main()
