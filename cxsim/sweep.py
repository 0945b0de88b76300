"""Run a sweep on Dask: a local cluster of worker processes, a running scheduler, or SLURM.

The driver keeps a bounded window of tasks in flight, takes results with
`as_completed` as they finish, and commits them to the Parquet store in parts
(`cxsim.sweepstore`). Runs already stored are skipped, so a killed sweep
restarted with the same command neither redoes nor duplicates a run. Workers
get small task dicts (the resolved scenario as JSON, never a pickled model)
and build the model from the installed package.

    from cxsim.sweep import load
    from cxsim.plots import kpi_against
    runs = load("out/budget")       # one row per run: run id, parameters, seed, KPIs
    summarize("out/budget").points  # per design point: replicate means with 95% intervals (and .failed, ...)
    kpi_against(runs, "retention", "departments.service.budget", hue="ownership.model", path="retention.png")
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import logging
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from cxsim.scenario import ScenarioError
from cxsim.sweepfile import Cluster, Run, Sweep, expand
from cxsim.sweepstore import Store, load  # noqa: F401  (load: a sweep's results in one call)
from cxsim.sweepsummary import summarize  # noqa: F401  (per design point, and against another store)

# Modules that only present results or drive commands: their code never decides a run's KPIs, so editing them
# keeps run ids. Every other module of the package (a new one too, by default) is part of the model version.
PRESENTATION = (
    "__main__.py",  # python -m cxsim
    "cli.py",  # argument parsing and printing
    "bench.py",  # times the engines, never stores a run
    "sweepsummary.py",  # reads a sweep store
    "plots.py",  # figures
    "report.py",  # markdown and HTML reports
    "viz",  # the teaching page
    "calibration",  # fits scenarios with runs of its own; no sweep run calls it
)
PACKAGE = Path(__file__).resolve().parent


def model_version(package: Path = PACKAGE) -> str:
    """cxsim's version, a hash of every module that can affect results, and the numba, numpy and Python versions."""
    digest = hashlib.sha256()
    for module in sorted(package.rglob("*.py")):
        name = module.relative_to(package).as_posix()
        if name.split("/")[0] not in PRESENTATION:
            digest.update(name.encode() + b"\0" + module.read_bytes() + b"\0")
    v = {name: importlib.metadata.version(name) for name in ("cxsim", "numba", "numpy")}
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"{v['cxsim']}+{digest.hexdigest()[:12]} numba {v['numba']} numpy {v['numpy']} python {python}"


MODEL_VERSION = model_version()


def run_task(task: dict) -> dict:
    """One run on a worker: build the model from the scenario JSON, step it, return KPIs (or the error)."""
    out = {"run_id": task["run_id"], "worker": f"{socket.gethostname()}:{os.getpid()}"}
    start = time.perf_counter()
    try:
        if task["model_version"] != MODEL_VERSION:
            raise RuntimeError(
                f"worker has model version {MODEL_VERSION}, the sweep {task['model_version']}: "
                "install the same cxsim on every worker"
            )
        import numba

        from cxsim import metrics
        from cxsim.model import CXModel
        from cxsim.schema import Scenario

        # numba threads of this task (thread-local): a worker started without NUMBA_NUM_THREADS would
        # otherwise use every core in every worker process
        numba.set_num_threads(min(task["threads"], numba.config.NUMBA_NUM_THREADS))
        model = CXModel(Scenario.model_validate_json(task["scenario"])).run()
        kpis = metrics.run_kpis(model)
        out["kpis"] = {k: kpis[k] for k in task["kpis"]}
        if task["daily"]:
            out["days"] = metrics.daily_table(model).assign(run_id=task["run_id"])
    except Exception as e:  # a failing run is a result too: recorded, and the sweep goes on
        out["error"] = f"{type(e).__name__}: {e}"
        out["traceback"] = traceback.format_exc()
    out["seconds"] = time.perf_counter() - start
    return out


def run_batch(tasks: list[dict]) -> list[dict]:
    """Several small runs in one Dask task, so that per-task overhead does not dominate."""
    return [run_task(t) for t in tasks]


def task_of(run: Run, sweep: Sweep, threads: int = 1) -> dict:
    return {
        "run_id": run.run_id,
        "scenario": run.scenario,
        "kpis": list(sweep.kpis),
        "daily": sweep.daily,
        "threads": threads,
        "model_version": MODEL_VERSION,
    }


@dataclass
class Summary:
    total: int = 0
    skipped: int = 0
    done: int = 0
    seconds: float = 0.0
    stopped: str = ""  # why the sweep stopped early, if it did
    errors: list[str] = field(default_factory=list)
    failed_ids: set[str] = field(default_factory=set)  # runs that raised (or whose task was lost)
    missing: list[str] = field(default_factory=list)  # run ids of the design neither stored nor failed
    twice: list[str] = field(default_factory=list)  # run ids of the design stored more than once

    def __str__(self) -> str:
        rate = f", {self.done / self.seconds:.2f} runs/s" if self.done and self.seconds else ""
        text = (
            f"{self.total} runs: {self.done} done, {self.skipped} skipped (already stored), "
            f"{self.failed} failed; {self.seconds:.1f} s{rate}"
        )
        return text + (f"; stopped: {self.stopped}" if self.stopped else "")

    @property
    def failed(self) -> int:
        return len(self.failed_ids)

    def check(self, design: list[Run], stored: pd.Series) -> None:
        """Completeness: every run id of the design stored exactly once (failed runs are reported as such)."""
        counts = stored.value_counts()
        ids = list(dict.fromkeys(r.run_id for r in design))
        self.missing = [i for i in ids if i not in counts.index and i not in self.failed_ids]
        self.twice = [i for i in ids if counts.get(i, 0) > 1]

    def problems(self) -> list[str]:
        """What the store lacks or holds twice, in words."""
        return [
            f"{len(ids)} runs of the design are {what}: {', '.join(ids)}{hint}"
            for ids, what, hint in (
                (self.missing, "not stored", " (the same command again runs them)"),
                (self.twice, "stored more than once", ""),
            )
            if ids
        ]


@dataclass
class Cores:
    """Where to run: a local cluster (workers x numba threads), a scheduler address, or a batch system."""

    scheduler: str | None = None  # tcp://HOST:PORT of a running scheduler
    cluster: str = "local"  # local, or a batch system of BATCH (slurm, pbs, ...)
    workers: int | None = None
    threads: int = 1  # numba threads per worker process
    worker_timeout: float = 60.0  # seconds to wait for a running scheduler's first worker
    dashboard: str | None = None  # HOST:PORT of the Dask dashboard (local default 127.0.0.1:0; batch: none)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def local_workers(cores: Cores) -> int:
    """Worker processes for a local cluster: workers x numba threads must not exceed the cores."""
    n, threads = available_cores(), cores.threads
    if threads < 1:
        raise ScenarioError(f"--threads-per-worker: expected a whole number >= 1, got {threads}")
    workers = cores.workers if cores.workers is not None else max(1, n // threads)
    if workers < 1 or workers * threads > n:
        raise ScenarioError(
            f"--workers {workers} x --threads-per-worker {threads}: expected at most {n} "
            f"(the cores here) and at least 1 worker"
        )
    return workers


def worker_environment(threads: int) -> dict:
    """Environment for worker processes: numba threads and the shared numba cache."""
    env = {"NUMBA_NUM_THREADS": str(threads)}
    if os.environ.get("NUMBA_CACHE_DIR"):
        env["NUMBA_CACHE_DIR"] = os.path.abspath(os.environ["NUMBA_CACHE_DIR"])
    return env


BATCH = {  # --cluster KIND -> dask-jobqueue's cluster class
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
}
LOST_SECONDS = 10.0  # a job whose workers have all been gone this long is lost (a nanny restarts a worker sooner)


def batch_cluster(kind: str, cfg, threads: int = 1, dashboard: str | None = None):
    """A dask-jobqueue cluster of `kind` (slurm, pbs, sge, lsf, htcondor): per job `cfg.cores` cores split into
    worker processes of `threads` numba threads each, one Dask thread per worker (a run uses its numba threads);
    the scheduler's dashboard on `dashboard` (HOST:PORT) when given, else none."""
    import dask_jobqueue
    from dask.utils import parse_bytes

    for key in ("memory", "disk"):
        try:
            parse_bytes(getattr(cfg, key))
        except ValueError:
            raise ScenarioError(f"--{key} {getattr(cfg, key)}: expected a size such as 8GB") from None
    processes = cfg.processes or max(1, cfg.cores // threads)
    if processes * threads > cfg.cores:
        raise ScenarioError(
            f"[cluster] processes {processes} x --threads-per-worker {threads}: expected at most cores = {cfg.cores}"
        )
    prologue = [f"export {k}={v}" for k, v in worker_environment(threads).items()] + list(cfg.job_script_prologue)
    for name in ("tornado.application", "asyncio"):  # where dask's event loop logs a rejection's traceback
        logging.getLogger(name).addFilter(_said_by_jobs)
    cls = getattr(dask_jobqueue, BATCH[kind])
    return cls(
        cores=processes,
        processes=processes,
        memory=cfg.memory,
        interface=cfg.interface,
        job_script_prologue=prologue,
        worker_extra_args=["--no-dashboard"],
        python=sys.executable,
        # the scheduler's HTTP server (health, metrics) runs even without a dashboard: on loopback unless asked
        scheduler_options={"dashboard": bool(dashboard), "dashboard_address": dashboard or "127.0.0.1:0"},
        job_cls=_submitted(cls.job_cls),
        **_batch_options(kind, cfg),
    )


def _batch_options(kind: str, cfg) -> dict:
    """What each batch system calls the queue, account, walltime and the cores of a whole job."""
    extra = list(cfg.job_extra_directives)
    if kind == "htcondor":
        if cfg.queue or cfg.account:
            raise ScenarioError("--cluster htcondor: HTCondor has no queue or account; use job_extra_directives")
        pairs = [d.partition("=") for d in extra]
        if not all(sep and k.strip() for k, sep, _ in pairs):
            raise ScenarioError(f"[cluster] job_extra_directives: expected KEY = VALUE lines for HTCondor, got {extra}")
        return {
            "disk": cfg.disk,
            "job_extra_directives": {"RequestCpus": cfg.cores} | {k.strip(): v.strip() for k, _, v in pairs},
        }
    options = {"queue": cfg.queue, "walltime": cfg.walltime, "job_extra_directives": extra}
    if kind == "slurm":
        return options | {"account": cfg.account, "job_cpu": cfg.cores}
    if kind == "pbs":
        from dask.utils import parse_bytes
        from dask_jobqueue.pbs import pbs_format_bytes_ceil

        spec = f"select=1:ncpus={cfg.cores}:mem={pbs_format_bytes_ceil(parse_bytes(cfg.memory))}"
        return options | {"account": cfg.account, "resource_spec": spec}
    if kind == "lsf":  # bsub -W takes HH:MM
        hms = re.fullmatch(r"(\d+):(\d\d):(\d\d)", cfg.walltime)
        if not hms:
            raise ScenarioError(f"--walltime {cfg.walltime}: expected HH:MM:SS for LSF")
        minutes = math.ceil((int(hms[1]) * 3600 + int(hms[2]) * 60 + int(hms[3])) / 60)
        return options | {
            "project": cfg.account,
            "ncpus": cfg.cores,
            "walltime": f"{minutes // 60:02d}:{minutes % 60:02d}",
        }
    return options | {"project": cfg.account}  # sge: the cores of a job come from a parallel environment (-pe)


def _submitted(job_cls):
    """A dask-jobqueue job class that keeps why its submission failed (`rejected`), for `Jobs.check`."""
    from distributed.core import Status

    class Job(job_cls):
        rejected = ""

        async def start(self):
            try:
                await super().start()
            except RuntimeError as e:  # the submit command's exit code, command, stdout and stderr
                self.rejected = str(e).partition("stderr:\n")[2].strip() or str(e)
                self.status = Status.failed  # closing the cluster then passes over it
                raise

    return Job


def _said_by_jobs(record: logging.LogRecord) -> bool:
    """Drop the tracebacks of failed submit commands: `Jobs.check` says what the scheduler answered."""
    error = record.exc_info[1] if record.exc_info else None
    return not (isinstance(error, RuntimeError) and str(error).startswith("Command exited with non-zero exit code"))


class Jobs:
    """The batch jobs of a sweep: a rejected submission ends it (exit 2, with the scheduler's message); a lost
    job (walltime, preemption, scancel: its workers gone for LOST_SECONDS) is cancelled and replaced."""

    def __init__(self, cluster, kind: str, jobs: int):
        self.cluster, self.kind, self.jobs = cluster, kind, jobs
        self.seen: dict[str, float] = {}  # job name -> when its workers were last connected
        self.queued = 0  # jobs without a connected worker (not yet, or not any more)

    def _workers_of(self, name: str, names: set[str]) -> bool:
        """Does job `name` have a worker among the scheduler's `names`? dask-jobqueue names a job's workers
        after the job (`NAME`, `NAME-0`, ...), HTCondor's after its job id."""
        job = self.cluster.workers.get(name)
        tags = (f"--{job.job_id}.",) if self.kind == "htcondor" and job is not None and job.job_id else ()
        return any(n == name or n.startswith(f"{name}-") or any(t in n for t in tags) for n in names)

    def check(self) -> list[str]:
        """Raise on a rejected job; replace the lost ones; what was done, in words."""
        for job in list(self.cluster.workers.values()):
            if job.rejected:
                raise ScenarioError(f"--cluster {self.kind}: {job.submit_command} rejected the job: {job.rejected}")
        names = {str(w["name"]) for w in self.cluster.scheduler_info["workers"].values()}
        now, lost, self.queued = time.monotonic(), [], 0
        for name in list(self.cluster.worker_spec):
            if self._workers_of(name, names):
                self.seen[name] = now
                continue
            self.queued += 1
            if now - self.seen.get(name, now) >= LOST_SECONDS:
                lost.append(name)
        said = []
        for name in lost:
            job = self.cluster.workers.pop(name, None)
            self.cluster.worker_spec.pop(name, None)
            del self.seen[name]
            if job is not None and job.job_id:  # a preempted job may be requeued: it must not come back too
                subprocess.run([*shlex.split(job.cancel_command), job.job_id], capture_output=True, timeout=60)
            said.append(
                f"--cluster {self.kind}: job {job.job_id if job else name} lost (its workers left "
                f"{LOST_SECONDS:g} s ago: walltime, preemption or cancelled); submitted a replacement"
            )
        if lost:
            self.cluster.scale(jobs=self.jobs)
        return said


@contextlib.contextmanager
def client_for(cores: Cores, sweep: Sweep):
    """A Dask client on the chosen cluster, closed (with the cluster) on exit."""
    import dask
    from distributed import Client, LocalCluster

    if cores.scheduler:
        try:
            client = Client(cores.scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            raise ScenarioError(f"--scheduler {cores.scheduler}: cannot connect ({e})") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=cores.worker_timeout)
            except TimeoutError:
                raise ScenarioError(
                    f"--scheduler {cores.scheduler}: no worker connected within {cores.worker_timeout:g} s; "
                    f"start workers with `dask worker {cores.scheduler}` (--worker-timeout sets the wait)"
                ) from None
            yield client
        return
    ours: dict[str, str | None] = {}  # this process's values of what the local nannies write into it
    if cores.cluster in BATCH:
        cluster = batch_cluster(cores.cluster, sweep.cluster, cores.threads, cores.dashboard)
        cluster.scale(jobs=sweep.cluster.jobs)
    else:
        workers = local_workers(cores)
        spawn = worker_environment(cores.threads)
        # the nannies run in this process and write their pre-spawn environment into it (at every worker
        # (re)start): it is put back on exit, or a numba compile here would later read the workers' thread count
        ours = {k: os.environ.get(k) for k in spawn}
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in spawn.items()}):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=cores.dashboard or "127.0.0.1:0",
                silence_logs=logging.ERROR,
                preload=["cxsim.sweep"],
            )
    try:
        with cluster, Client(cluster) as client:
            yield client
    finally:
        for k, v in ours.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def dashboard_link(client, cores: Cores) -> str:
    """The address of the scheduler's dashboard ("" when it has none), on the host it listens on."""
    if cores.cluster in BATCH and not cores.dashboard:
        return ""
    info = client.scheduler_info(n_workers=0)
    port = info.get("services", {}).get("dashboard")
    if not port:
        return ""
    host = (cores.dashboard or "").rpartition(":")[0] or info["address"].split("://")[1].rpartition(":")[0]
    return f"http://{host}:{port}/status"


def dask_setup(worker):
    """Dask preload of local workers: Ctrl-C reaches them too, but it is the sweep's to handle (it flushes
    its results and closes the cluster), so they ignore it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def design_table(runs: list[Run]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"point": r.point, "replicate": r.replicate, "seed": r.seed, "run_id": r.run_id, **r.params} for r in runs]
    )


def store_meta(sweep: Sweep, runs: list[Run]) -> dict:
    """The store's record of its sweep; `identity` covers everything that changes its results (the run ids
    hash the model version and each run's resolved scenario, overrides included)."""
    what = [list(sweep.kpis), sweep.daily, list(sweep.parameters), [r.run_id for r in runs]]
    return {
        "identity": hashlib.sha256(repr(what).encode()).hexdigest()[:20],
        "name": sweep.name,
        "model_version": MODEL_VERSION,
        "kpis": list(sweep.kpis),
        "daily": sweep.daily,
        "parameters": list(sweep.parameters),
        "sweep": sweep.model_dump(mode="json"),
    }


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    cores: Cores | None = None,
    *,
    resume: bool = False,
    max_failures: int | None = None,
    batch: int | None = None,
    flush_seconds: float = 5.0,
    progress: bool | None = None,
) -> Summary:
    """Run every run of the sweep not yet in the store at `out`; results stream into the store."""
    if resume and not (Path(out) / "sweep.json").is_file():
        raise ScenarioError(f"--resume: {out} holds no sweep to resume (no sweep.json)")
    cores = cores or Cores()
    sigint = signal.getsignal(signal.SIGINT)
    runs = expand(sweep, MODEL_VERSION)
    if not cores.scheduler and cores.cluster == "local":
        local_workers(cores)
    store = Store(out, store_meta(sweep, runs))
    try:
        unique = list({r.run_id: r for r in runs}.values())
        done = store.done()
        todo = [r for r in unique if r.run_id not in done]
        summary = Summary(total=len(unique), skipped=len(unique) - len(todo))
        if todo:
            with client_for(cores, sweep) as client:
                store.begin(design_table(runs))
                link = dashboard_link(client, cores)
                if link:
                    print(f"cxsim: Dask dashboard at {link}", file=sys.stderr)
                jobs = Jobs(client.cluster, cores.cluster, sweep.cluster.jobs) if cores.cluster in BATCH else None
                _execute(
                    client,
                    sweep,
                    todo,
                    store,
                    summary,
                    cores.threads,
                    max_failures,
                    batch,
                    flush_seconds,
                    progress,
                    jobs,
                )
        else:
            store.begin(design_table(runs))
        if not summary.stopped:
            summary.check(runs, load(out).get("run_id", pd.Series(dtype=object)))
        return summary
    finally:
        store.close()
        if signal.getsignal(signal.SIGINT) is _still_stopping:  # the interrupted sweep has shut down
            signal.signal(signal.SIGINT, sigint)


TASK_SECONDS = 1.0  # batch tiny runs until a task takes about this long
TICK = 1.0  # seconds: how often the driver looks at the workers (and SLURM jobs) while tasks run
FLUSH_RUNS = 2000  # commit at least this often, whatever the time, to bound the driver's memory


def batch_size(seconds_per_run: float | None, remaining: int, window: int) -> int:
    """Runs per task: one until runs have been timed, then enough for about TASK_SECONDS per task
    (at most 32), but never so many that the window's tasks could not share the remaining runs."""
    if not seconds_per_run:
        return 1
    want = min(32, max(1, int(TASK_SECONDS / seconds_per_run)))
    return max(1, min(want, remaining // window))


class _Stop(Exception):
    pass


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _still_stopping(signum, frame):
    """Ctrl-C again while an interrupted sweep saves its results and closes its cluster: it goes on."""
    print("cxsim: stopping: saving the results and closing the workers", file=sys.stderr)


def _execute(client, sweep, todo, store, summary, threads, max_failures, batch, flush_seconds, progress, jobs=None):
    from distributed import wait
    from tqdm import tqdm

    by_id = {r.run_id: r for r in todo}
    driver = uuid.uuid4().hex[:12]  # in every task key: two sweeps on one scheduler never share a task
    pending = list(reversed(todo))  # popped from the end: design order
    buffer = {"runs": [], "days": [], "errors": []}
    last_flush = time.monotonic()
    start = time.perf_counter()
    bar = tqdm(
        total=summary.total,
        initial=summary.skipped,
        unit="run",
        desc=sweep.name,
        file=sys.stderr,
        disable=not (sys.stderr.isatty() if progress is None else progress),
        mininterval=0.5,
    )
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # a killed job (SLURM, kill) flushes like Ctrl-C

    def flush():
        nonlocal last_flush
        store.flush(buffer["runs"], buffer["days"], buffer["errors"])
        for rows in buffer.values():
            rows.clear()
        last_flush = time.monotonic()

    def record(result: dict):
        run = by_id[result["run_id"]]
        ids = {"run_id": run.run_id, "replicate": run.replicate, "seed": run.seed, **run.params}
        if "error" in result:
            summary.failed_ids.add(run.run_id)
            summary.errors.append(f"{run.run_id} {run.params} seed {run.seed}: {result['error']}")
            buffer["errors"].append(
                {**ids, "error": result["error"], "traceback": result.get("traceback", ""), "time": time.time()}
            )
        else:
            summary.done += 1
            buffer["runs"].append({**ids, **result["kpis"], "seconds": result["seconds"], "worker": result["worker"]})
            if "days" in result:
                buffer["days"].append(result["days"])
        bar.update(1)
        if max_failures is not None and summary.failed >= max_failures:
            raise _Stop(f"{summary.failed} failed runs (--max-failures {max_failures})")

    try:
        timed = []  # seconds of the runs finished so far
        in_flight: dict = {}  # future -> its run ids
        window, looked = 0, 0.0

        def submit():
            size = batch or batch_size(sum(timed) / len(timed) if timed else None, len(pending), window)
            tasks = [task_of(pending.pop(), sweep, threads) for _ in range(min(size, len(pending)))]
            future = client.submit(run_batch, tasks, key=f"cxsim-run-{driver}-{tasks[0]['run_id']}", pure=False)
            in_flight[future] = [t["run_id"] for t in tasks]

        while pending or in_flight:
            if time.monotonic() - looked >= TICK:  # workers join and leave (batch jobs start late, end, are lost)
                workers, looked = client.nthreads(), time.monotonic()
                window = max(4, 2 * sum(workers.values()))
                for line in jobs.check() if jobs is not None else ():
                    bar.write(f"cxsim: {line}", file=sys.stderr)
                if not bar.disable:
                    bar.set_postfix(_progress(client, driver, workers, jobs, summary), refresh=False)
            while pending and len(in_flight) < window:
                submit()
            try:
                finished = wait(list(in_flight), timeout=TICK, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                finished = ()
            for future in finished:
                results = collect(future, in_flight[future])
                if results is None:
                    continue
                del in_flight[future]
                future.release()
                for result in results:
                    record(result)
                    if "kpis" in result:
                        timed.append(result["seconds"])
            if time.monotonic() - last_flush >= flush_seconds or len(buffer["runs"]) >= FLUSH_RUNS:
                flush()
    except _Stop as e:
        summary.stopped = str(e)
    except KeyboardInterrupt:
        summary.stopped = "interrupted"
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _still_stopping)  # until run_sweep has shut down
    finally:
        flush()
        bar.close()
        if previous is signal.SIG_DFL and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
        summary.seconds = time.perf_counter() - start


def collect(future, ids: list[str]) -> list[dict] | None:
    """A finished task's results, or None while they are computed again: its worker died before they were
    gathered (waiting for them would keep the driver from replacing a lost job, the only one that could)."""
    try:
        return future.result(timeout=TICK)
    except TimeoutError:
        return None
    except Exception as e:  # the task itself was lost (e.g. KilledWorker): its runs failed
        return [{"run_id": i, "error": f"{type(e).__name__}: {e}"} for i in ids]


def _progress(client, driver: str, workers: dict, jobs: Jobs | None, summary: Summary) -> dict:
    """The bar's fields: workers connected, this sweep's tasks running, batch jobs queued, runs failed."""
    running = sum(str(k).startswith(f"cxsim-run-{driver}-") for keys in client.processing().values() for k in keys)
    fields = {"workers": len(workers), "running": running}
    if jobs is not None:
        fields["queued jobs"] = jobs.queued
    return fields | {"failed": summary.failed}


BATCH_FLAGS = (
    ("queue", str, "batch queue (SLURM partition)"),
    ("account", str, "account (project) charged for the jobs"),
    ("cores", int, "cores per batch job"),
    ("memory", str, "memory per batch job, e.g. 8GB"),
    ("walltime", str, "time limit per batch job, e.g. 02:00:00"),
    ("jobs", int, "batch jobs (a lost one is replaced)"),
    ("disk", str, "disk per batch job (HTCondor), e.g. 1GB"),
    ("interface", str, "network interface the workers reach the scheduler on, e.g. ib0"),
)


def add_cluster_arguments(p, section: str | None = None) -> None:
    """Where the runs go: local workers, a scheduler or batch jobs (`cores_from` reads them); the batch flags
    override the file's `section` when it has one."""
    p.add_argument("--workers", type=int, help="local worker processes (default: cores / threads per worker)")
    p.add_argument("--threads-per-worker", type=int, default=1, dest="threads", help="numba threads per worker")
    p.add_argument(
        "--scheduler",
        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
        "(default: local, a cluster of worker processes on this machine)",
    )
    p.add_argument(
        "--worker-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --scheduler: give up (exit 2) when no worker has connected after this long (default 60)",
    )
    p.add_argument(
        "--cluster",
        choices=["local", *BATCH],
        default="local",
        help="where to start workers: this machine, or batch jobs through dask-jobqueue (only SLURM has been run "
        "for real; PBS, SGE, LSF and HTCondor job scripts are tested)",
    )
    p.add_argument(
        "--dashboard-address",
        dest="dashboard",
        metavar="HOST:PORT",
        help="where the Dask dashboard listens (default 127.0.0.1 on a free port; with a batch --cluster: "
        "none unless given, e.g. 127.0.0.1:8787, reached through an SSH tunnel)",
    )
    for flag, kind, what in BATCH_FLAGS:
        p.add_argument(f"--{flag}", type=kind, help=f"{what} (overrides {section} {flag})" if section else what)


def cores_from(args, cluster: Cluster) -> tuple[Cores, Cluster]:
    """The cores `add_cluster_arguments`' flags describe, and `cluster` with the batch flags given set on it."""
    flags = {flag: getattr(args, flag) for flag, _, _ in BATCH_FLAGS}
    try:
        cluster = cluster.model_validate({**cluster.model_dump(), **{k: v for k, v in flags.items() if v is not None}})
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        raise ScenarioError(f"--{err['loc'][0]}: {err['msg'].lower()}, got {err['input']!r}") from None
    if not args.worker_timeout > 0:
        raise ScenarioError(f"--worker-timeout: expected a number of seconds > 0, got {args.worker_timeout}")
    cores = Cores(
        scheduler=None if args.scheduler == "local" else args.scheduler,
        cluster=args.cluster,
        workers=args.workers,
        threads=args.threads,
        worker_timeout=args.worker_timeout,
        dashboard=args.dashboard,
    )
    return cores, cluster


def add_arguments(p) -> None:
    """The options of `cxsim sweep` (and `cxsim sensitivity`)."""
    p.add_argument("sweep", help="sweep file (TOML)")
    p.add_argument("--out", help="results directory (default: out/<sweep file name>)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key of the sweep file, e.g. design.samples=16 or "
        'parameters.ownership.model=\'["cco_led","siloed"]\' (repeatable)',
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="require an existing store and continue it (restarting with the same command resumes too)",
    )
    add_cluster_arguments(p, "[cluster]")
    p.add_argument("--max-failures", type=int, help="stop after this many failed runs")
    p.add_argument("--batch", type=int, help="runs per Dask task (default: adaptive, about 1 s per task)")
    p.add_argument("--flush-seconds", type=float, default=5.0, help="commit results to the store this often")
    for flag, what in (
        ("samples", "design.samples"),
        ("replicates", "replicates"),
        ("population", "population (budgets scale too)"),
        ("days", "days"),
    ):
        p.add_argument(f"--{flag}", type=int, help=f"override the sweep file's {what}")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


def from_arguments(args) -> tuple[Sweep, str, Cores, dict]:
    """The sweep, output directory, cores and run options that `add_arguments`' flags describe."""
    from cxsim.sweepfile import load_sweep

    sweep = load_sweep(
        args.sweep,
        args.overrides,
        samples=args.samples,
        replicates=args.replicates,
        population=args.population,
        days=args.days,
    )
    cores, cluster = cores_from(args, sweep.cluster)
    sweep = sweep.model_copy(update={"cluster": cluster})
    out = args.out or os.path.join("out", Path(args.sweep).stem)
    if args.max_failures is not None and args.max_failures < 1:
        raise ScenarioError(f"--max-failures: expected a whole number >= 1, got {args.max_failures}")
    if args.batch is not None and args.batch < 1:
        raise ScenarioError(f"--batch: expected a whole number >= 1, got {args.batch}")
    if not args.flush_seconds > 0:
        raise ScenarioError(f"--flush-seconds: expected a number > 0, got {args.flush_seconds}")
    options = {
        "resume": args.resume,
        "max_failures": args.max_failures,
        "batch": args.batch,
        "flush_seconds": args.flush_seconds,
        "progress": args.progress,
    }
    return sweep, out, cores, options


def main(args) -> int:
    sweep, out, cores, options = from_arguments(args)
    summary = run_sweep(sweep, out, cores, **options)
    print(f"{sweep.name}: {summary}; results in {out}")
    for line in summary.errors[:5]:
        print(f"  failed: {line}", file=sys.stderr)
    for line in summary.problems():
        print(f"cxsim: {line}", file=sys.stderr)
    return 130 if summary.stopped == "interrupted" else 1 if summary.failed or summary.problems() else 0
