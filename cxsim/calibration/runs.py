"""The runs of a calibration: each a pure function of (scenario, parameter values, seed), run in this process
(`--workers 1`) or on the project's Dask set-up (`cxsim.sweep`: a local cluster by default, `--scheduler`,
`--cluster slurm`). Results come back in the order asked, whatever finished first, so the same file and seed
give the same calibration with any number of workers."""

from __future__ import annotations

import os
import socket
import sys
import time
import types
import uuid

from cxsim.scenario import ScenarioError
from cxsim.sweep import MODEL_VERSION, Cores, client_for, local_workers
from cxsim.sweepfile import Cluster


def simulate(task: dict) -> dict:
    """One run on a worker (or here): build the model from the scenario JSON, run it, summarize the targets."""
    if task["model_version"] != MODEL_VERSION:
        raise RuntimeError(
            f"worker has model version {MODEL_VERSION}, the calibration {task['model_version']}: "
            "install the same cxsim on every worker"
        )
    import numba

    from cxsim.calibration.targets import summarize
    from cxsim.model import CXModel
    from cxsim.schema import Scenario

    if task.get("threads"):
        numba.set_num_threads(min(task["threads"], numba.config.NUMBA_NUM_THREADS))
    start = time.perf_counter()
    model = CXModel(Scenario.model_validate_json(task["scenario"]), seed=task["seed"]).run()
    out = summarize(model, task["names"], task["series"])
    out["seconds"] = time.perf_counter() - start
    out["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return out


class Runner:
    """Runs sets of parameter values on seeds; `in_process` for `--workers 1` on this machine (no Dask)."""

    def __init__(self, cal, cores: Cores | None = None, progress: bool | None = None, cluster: Cluster | None = None):
        self.cal, self.cores = cal, cores or Cores()
        self.cluster = cluster or Cluster()
        self.in_process = not self.cores.scheduler and self.cores.cluster == "local" and self.cores.workers == 1
        if not self.cores.scheduler and self.cores.cluster == "local":
            local_workers(self.cores)  # refuse too many workers before anything runs
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.names = [t.name for t in cal.targets if t.observation is not None]
        self.series = [t.name for t in cal.targets if t.monthly]
        self.runs = 0
        self.seconds = 0.0
        self._context = None
        self.client = None
        self.bar = None

    def __enter__(self):
        from tqdm import tqdm

        if not self.in_process:
            self._context = client_for(self.cores, types.SimpleNamespace(cluster=self.cluster))
            self.client = self._context.__enter__()
        self.bar = tqdm(
            total=0, unit="run", desc="calibrate", file=sys.stderr, disable=not self.progress, mininterval=0.5
        )
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        if self._context is not None:
            return self._context.__exit__(*exc)
        return False

    def expect(self, runs: int) -> None:
        """Tell the progress bar how many more runs are coming."""
        self.bar.total = (self.bar.total or 0) + runs
        self.bar.refresh()

    def task(self, values: dict, seed: int) -> dict | None:
        """The task of one run, or None when the values make no valid scenario (that point fits nothing)."""
        try:
            scenario = self.cal.scenario_with(values)
        except ScenarioError:
            return None
        return {
            "scenario": scenario.model_dump_json(),
            "seed": int(seed),
            "names": self.names,
            "series": self.series,
            "threads": self.cores.threads,
            "model_version": MODEL_VERSION,
        }

    def evaluate(self, points: list[dict], seeds: list[int]) -> list[list[dict] | None]:
        """Every point on every seed: per point the runs' summaries in seed order (None: no valid scenario)."""
        tasks = []
        for values in points:
            first = self.task(values, seeds[0])
            tasks.append(None if first is None else [first] + [dict(first, seed=int(s)) for s in seeds[1:]])
        flat = [t for group in tasks if group is not None for t in group]
        start = time.perf_counter()
        if self.in_process:
            results = []
            for t in flat:
                results.append(simulate(t))
                self.bar.update(1)
        else:
            from distributed import as_completed

            tag = uuid.uuid4().hex[:10]
            futures = [
                self.client.submit(simulate, t, key=f"cxsim-calibrate-{tag}-{i}", pure=False)
                for i, t in enumerate(flat)
            ]
            for _ in as_completed(futures):
                self.bar.update(1)
            results = self.client.gather(futures)
        self.seconds += time.perf_counter() - start
        self.runs += len(flat)
        out, i = [], 0
        for group in tasks:
            if group is None:
                out.append(None)
            else:
                out.append(results[i : i + len(group)])
                i += len(group)
        return out
