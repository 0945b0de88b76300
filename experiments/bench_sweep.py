"""Throughput of a sweep: the same runs one after another in this process, then on a local Dask cluster.

    .venv/bin/python experiments/bench_sweep.py experiments/budget_sweep.toml --population 2000 --days 180 \
        --replicates 1 --workers 2 [--set 'parameters.ownership.model=["siloed","cco_led"]']

Prints runs/s for serial runs with 1 and with all numba threads, and for the sweep on `--workers`
worker processes of one numba thread each (run time alone, and with the cluster's start).
"""

import argparse
import os
import tempfile
import time

import numba

from cxsim.sweep import MODEL_VERSION, Cores, run_sweep, run_task, task_of
from cxsim.sweepfile import expand, load_sweep


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override a sweep-file key")
    p.add_argument("--population", type=int)
    p.add_argument("--days", type=int)
    p.add_argument("--replicates", type=int)
    p.add_argument("--samples", type=int)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    sweep = load_sweep(
        args.sweep,
        args.overrides,
        samples=args.samples,
        replicates=args.replicates,
        population=args.population,
        days=args.days,
    )
    runs = list({r.run_id: r for r in expand(sweep, MODEL_VERSION)}.values())
    print(
        f"{sweep.name}: {len(runs)} runs of {sweep.population or 'base'} people x {sweep.days or 'base'} days, "
        f"{os.cpu_count()} cores"
    )
    run_task(task_of(runs[0], sweep))  # compile (or load numba's cache) before timing
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        tasks = [task_of(r, sweep, threads) for r in runs]
        start = time.perf_counter()
        for t in tasks:
            assert "error" not in run_task(t)
        seconds = time.perf_counter() - start
        print(f"serial, {threads} numba thread(s): {len(tasks) / seconds:6.2f} runs/s ({seconds:.1f} s)")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        summary = run_sweep(sweep, out, Cores(workers=args.workers), progress=False)
        wall = time.perf_counter() - start
    assert summary.done == len(runs) and not summary.failed
    print(
        f"dask, {args.workers} workers x 1 thread: {summary.done / summary.seconds:6.2f} runs/s "
        f"({summary.seconds:.1f} s running; {summary.done / wall:.2f} runs/s, {wall:.1f} s with cluster start)"
    )


if __name__ == "__main__":
    main()
