"""Sweeps on Dask: designs, equality with serial runs, a separate scheduler, killed workers, a killed
sweep resumed, SLURM job scripts, sensitivity, and clear errors for bad sweep files.

Every server listens on 127.0.0.1; every process a test starts is ended by its id."""

import contextlib
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import stop

from cxsim.cli import main
from cxsim.scenario import ScenarioError
from cxsim.sweep import (
    MODEL_VERSION,
    PACKAGE,
    Cores,
    batch_cluster,
    client_for,
    load,
    model_version,
    run_sweep,
    run_task,
    task_of,
)
from cxsim.sweepfile import Cluster, expand, load_sweep, points

BIN = Path(sys.executable).parent
SWEEP = """
name = "t"
scenario = "base"
population = {population}
days = {days}
seed = 7
replicates = {replicates}
kpis = ["retention", "profit", "complaints", "nps"]
daily = {daily}

[set]
"customers.complaint_propensity" = 0.3

[design]
kind = "grid"

[parameters]
departments.service.budget = {{ range = [500000, 3000000], steps = {steps} }}
"ownership.model" = ["cco_led", "siloed"]
"""
VOLATILE = ["seconds", "worker"]  # how long a run took and where: not results


def sweep_file(tmp_path, name="s.toml", population=400, days=20, replicates=2, steps=2, daily="false", text=None):
    path = tmp_path / name
    path.write_text(
        text or SWEEP.format(population=population, days=days, replicates=replicates, steps=steps, daily=daily)
    )
    return path


def results(out) -> pd.DataFrame:
    return load(out).drop(columns=VOLATILE).sort_values("run_id").reset_index(drop=True)


# --- design expansion -----------------------------------------------------------------------------


def test_grid_expands_every_combination_with_stable_ids(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path, steps=3, replicates=2))
    runs = expand(sweep, MODEL_VERSION)
    assert len(runs) == 3 * 2 * 2
    assert {(r.params["departments.service.budget"], r.params["ownership.model"]) for r in runs} == {
        (b, m) for b in (500000, 1750000, 3000000) for m in ("cco_led", "siloed")
    }
    assert {r.seed for r in runs} == {7, 8}  # replicate r: seed + r, the same for every point
    assert len({r.run_id for r in runs}) == len(runs)
    assert [r.run_id for r in expand(load_sweep(sweep_file(tmp_path, steps=3)), MODEL_VERSION)] == [
        r.run_id for r in runs
    ]
    assert [r.run_id for r in expand(sweep, MODEL_VERSION + "x")] != [r.run_id for r in runs]


def test_model_version_covers_every_module_but_presentation(tmp_path):
    package = tmp_path / "cxsim"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.toml"))
    before = model_version(package)
    assert before == MODEL_VERSION
    (package / "viz" / "page.py").write_text("TITLE = 'a new panel'\n")
    (package / "report.py").write_text((package / "report.py").read_text() + "\n# a new remark\n")
    assert model_version(package) == before  # presentation only: the run ids stay
    (package / "queueing.py").write_text("PATIENCE = 2.0\n")
    assert model_version(package) != before  # a new module counts by default
    (package / "queueing.py").unlink()
    assert model_version(package) == before
    (package / "stats").mkdir()
    (package / "stats" / "interval.py").write_text("Z = 1.96\n")
    assert model_version(package) != before


def test_model_version_names_numba_numpy_and_python(monkeypatch):
    version = importlib.metadata.version
    assert MODEL_VERSION.startswith(version("cxsim") + "+")
    assert f"numba {version('numba')} numpy {version('numpy')}" in MODEL_VERSION
    assert f"python {sys.version_info.major}.{sys.version_info.minor}" in MODEL_VERSION
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.69.0" if name == "numba" else version(name))
    assert model_version() != MODEL_VERSION  # an upgrade of numba alone gives new run ids


@pytest.mark.parametrize(
    "kind, samples, rows", [("latin_hypercube", 5, 5), ("random", 6, 6), ("sobol", 4, 4 * 4), ("morris", 3, 3 * 3)]
)
def test_sampled_designs_cross_the_by_values(tmp_path, kind, samples, rows):
    text = (
        SWEEP.format(population=400, days=20, replicates=1, steps=2, daily="false")
        .replace('kind = "grid"', f'kind = "{kind}"\nsamples = {samples}\nby = ["ownership.model"]')
        .replace(", steps = 2", "")
        + "market.price_per_month = { range = [30.0, 70.0] }\n"
    )
    sweep = load_sweep(sweep_file(tmp_path, text=text))
    pts = points(sweep)
    assert len(pts) == 2 * rows
    assert [p["ownership.model"] for p in pts] == ["cco_led"] * rows + ["siloed"] * rows
    assert [p["market.price_per_month"] for p in pts[:rows]] == [p["market.price_per_month"] for p in pts[rows:]]
    assert all(30 <= p["market.price_per_month"] <= 70 for p in pts)
    assert all(isinstance(p["departments.service.budget"], float) for p in pts)  # a float key, whatever its bounds


def test_set_overrides_keys_of_the_sweep_file(tmp_path):
    sweep = load_sweep(
        sweep_file(tmp_path),
        [
            'parameters.ownership.model=["siloed"]',
            "replicates=1",
            "parameters.departments.service.budget.steps=3",
            "set.market.price_per_month=40.0",
            "design.kind=latin_hypercube",
            "design.samples=5",
        ],
    )
    assert sweep.parameters["ownership.model"].values == ("siloed",)
    assert sweep.parameters["departments.service.budget"].steps == 3
    assert sweep.set == {"customers.complaint_propensity": 0.3, "market.price_per_month": 40.0}
    assert (sweep.replicates, sweep.design.kind, len(points(sweep))) == (1, "latin_hypercube", 5)
    assert all('"price_per_month":40.0' in r.scenario for r in expand(sweep, MODEL_VERSION))


def test_a_one_valued_parameter_is_a_constant_not_a_factor(tmp_path):
    text = (
        SWEEP.format(population=400, days=20, replicates=1, steps=2, daily="false")
        .replace('kind = "grid"', 'kind = "sobol"\nsamples = 4')
        .replace(", steps = 2", "")
        .replace('["cco_led", "siloed"]', '["siloed"]')
        + "market.price_per_month = { range = [30.0, 70.0] }\n"
    )
    sweep = load_sweep(sweep_file(tmp_path, text=text))
    assert sweep.free == ["departments.service.budget", "market.price_per_month"]
    assert sweep.problem()["num_vars"] == 2
    pts = points(sweep)
    assert len(pts) == 4 * (2 + 2)  # Saltelli: N (D + 2) rows for the D = 2 factors
    assert all(p["ownership.model"] == "siloed" for p in pts)
    one = load_sweep(sweep_file(tmp_path, text=text.replace('["siloed"]', '["siloed", "cco_led"]')))
    assert len(points(one)) == 4 * (3 + 2)  # with two values it is a factor
    with pytest.raises(ScenarioError, match="at least two parameters"):
        load_sweep(sweep_file(tmp_path, text=text.replace("{ range = [30.0, 70.0] }", "[40.0]")))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("design", "--set 'design': expected KEY=VALUE with KEY a dotted key"),  # the scenario's parser and wording
        ("design..kind=grid", "--set 'design..kind=grid': expected KEY=VALUE"),
        ("days.x=1", "--set 'days.x=1': key days: expected a table, got 20"),
        ("parameters.x=" + "[" * 20 + "]" * 20, "--set: values nested more than"),
    ],
)
def test_bad_set_of_a_sweep_file(tmp_path, text, expected):
    with pytest.raises(ScenarioError) as e:
        load_sweep(sweep_file(tmp_path), [text])
    assert str(e.value).startswith(expected)


# --- bad sweep files ------------------------------------------------------------------------------

BAD = [
    ('kpis = ["retentio"]', "key kpis: unknown KPI 'retentio'"),
    ("replicates = 0", "key replicates"),
    ('[design]\nkind = "sobl"', "key design.kind"),
    (
        '[design]\nkind = "sobol"\nsamples = 6\n[parameters]\nmarket.price_per_month = { range = [30.0, 60.0] }\n'
        "market.switching_cost = { range = [0.1, 0.5] }",
        "key design.samples: Sobol (Saltelli) needs a power of 2",
    ),
    ('[parameters]\n"departments.servce.budget" = [1.0]', "key parameters.departments.servce.budget"),
    ('[parameters]\n"departments.service.budget" = [-1.0]', "key parameters.departments.service.budget: value -1.0"),
    ('[parameters]\n"ownership.model" = ["cmo_lead"]', "unknown ownership model 'cmo_lead'"),
    ('[parameters]\n"departments.service.budget" = { range = [3, 1] }', "low < high"),
    ('[parameters]\n"departments.service.budget" = { range = [1, 3] }', "a grid needs `values`, or `range` with"),
    ("colour = 1", "key colour: unknown key"),
    ('scenario = "nope"', "key scenario: no bundled scenario named 'nope'"),
    ('[set]\n"market.populaton" = 5', "key set: key market.populaton: unknown key"),
    ("parameters = 3", "key parameters"),
    ("days = [", "invalid TOML"),
]


@pytest.mark.parametrize("text, expected", BAD)
def test_bad_sweep_files_exit_2_naming_file_and_key(tmp_path, capsys, text, expected):
    if "[parameters]" not in text and not text.startswith("parameters"):
        text += '\n[parameters]\n"departments.service.budget" = [1e6, 2e6]\n'
    path = sweep_file(tmp_path, "bad.toml", text=text)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cxsim: {path}") and expected in err and "Traceback" not in err
    assert not out.exists()  # nothing written


def test_bad_flags_exit_2(tmp_path, capsys):
    path = sweep_file(tmp_path)
    for flags, expected in (
        (["--workers", "64"], "--workers 64"),
        (["--threads-per-worker", "0"], "--threads"),
        (["--resume"], "--resume"),
        (["--scheduler", "bogus://127.0.0.1:9"], "--scheduler bogus"),
        (["--set", "design"], "--set 'design'"),
        (["--worker-timeout", "0"], "--worker-timeout"),
    ):
        assert main(["sweep", str(path), "--out", str(tmp_path / "o"), *flags]) == 2
        assert expected in capsys.readouterr().err


# --- local cluster vs serial ----------------------------------------------------------------------


@pytest.mark.dask
def test_two_local_workers_give_the_serial_results(tmp_path):
    sweep = load_sweep(sweep_file(tmp_path, daily="true"))
    summary = run_sweep(sweep, tmp_path / "out", Cores(workers=2), batch=1)
    runs = expand(sweep, MODEL_VERSION)
    assert (summary.total, summary.done, summary.failed) == (8, 8, 0)
    stored = load(tmp_path / "out").set_index("run_id")
    assert sorted(stored.index) == sorted(r.run_id for r in runs)
    assert stored["worker"].nunique() == 2  # both workers took part
    days = load(tmp_path / "out", "days")
    for run in runs:
        serial = run_task(task_of(run, sweep))
        row = stored.loc[run.run_id]
        assert {k: row[k] for k in sweep.kpis} == serial["kpis"]
        assert (row["seed"], row["replicate"], row["ownership.model"]) == (
            run.seed,
            run.replicate,
            run.params["ownership.model"],
        )
        mine = days[days["run_id"] == run.run_id].sort_values("day").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, serial["days"])
    again = run_sweep(sweep, tmp_path / "out", Cores(workers=2))
    assert (again.done, again.skipped) == (0, 8)
    assert len(load(tmp_path / "out")) == 8


@pytest.mark.dask
def test_a_local_cluster_leaves_this_process_environment_as_it_was(tmp_path, monkeypatch):
    """The nannies write NUMBA_NUM_THREADS=1 into the driver's environment; a numba compile here afterwards would
    read it and refuse (its threads were launched with another count), so the driver's values come back."""
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    sweep = load_sweep(sweep_file(tmp_path, population=300, replicates=1))
    with client_for(Cores(workers=1), sweep) as client:
        assert client.run(lambda: os.environ["NUMBA_NUM_THREADS"]) and os.environ.get("NUMBA_NUM_THREADS") == "1"
    assert "NUMBA_NUM_THREADS" not in os.environ


@pytest.mark.dask
def test_failing_runs_are_recorded_and_max_failures_stops(tmp_path, monkeypatch):
    # the driver claims another model version: every worker refuses the run, as it would a mismatched install
    monkeypatch.setattr("cxsim.sweep.MODEL_VERSION", "0-other")
    sweep = load_sweep(sweep_file(tmp_path, replicates=3))
    summary = run_sweep(sweep, tmp_path / "all", Cores(workers=1), batch=1)
    assert (summary.done, summary.failed) == (0, 12) and not summary.stopped
    errors = load(tmp_path / "all", "errors")
    assert len(errors) == 12 and errors["error"].str.contains("model version").all()
    stopped = run_sweep(sweep, tmp_path / "few", Cores(workers=1), batch=1, max_failures=2)
    assert "max-failures" in stopped.stopped and 2 <= stopped.failed < 12


@pytest.mark.dask
def test_progress_and_the_dashboard_address(tmp_path, capsys):
    path = sweep_file(tmp_path, population=300, replicates=1)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "1", "--progress"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"cxsim: Dask dashboard at http://127\.0\.0\.1:\d+/status", err)
    assert "4/4 [" in err and re.search(r"workers=1, running=\d+, failed=0", err)


@pytest.mark.dask
def test_a_store_refuses_other_kpis(tmp_path, capsys):
    path = sweep_file(tmp_path, population=300, replicates=1)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "1"]) == 0
    path.write_text(path.read_text().replace('"nps"]', '"csat"]'))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "1"]) == 2
    assert "kpis" in capsys.readouterr().err


@pytest.mark.dask
def test_a_run_not_stored_or_stored_twice_is_named_and_exits_1(tmp_path, monkeypatch, capsys):
    from cxsim.sweepstore import Store

    path = sweep_file(tmp_path, population=300, replicates=1)
    runs = expand(load_sweep(path), MODEL_VERSION)
    lost = runs[1].run_id
    flush = Store.flush

    def losing(self, rows, days, errors):  # a result that reaches the driver but never the store
        flush(self, [r for r in rows if r["run_id"] != lost], days, errors)

    monkeypatch.setattr(Store, "flush", losing)
    out = tmp_path / "o"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert f"1 runs of the design are not stored: {lost}" in err
    monkeypatch.setattr(Store, "flush", flush)
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 0  # a restart adds it
    part = sorted((out / "runs").glob("part-*.parquet"))[0]
    shutil.copy(part, part.with_name("part-99999999999999999999-1.parquet"))
    twice = [r.run_id for r in runs if r.run_id in set(pd.read_parquet(part)["run_id"])]  # in design order
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 1
    assert f"{len(twice)} runs of the design are stored more than once: {', '.join(twice)}" in capsys.readouterr().err


# --- a separate scheduler and workers -------------------------------------------------------------


def dask_scheduler(where: Path) -> tuple[subprocess.Popen, Path]:
    """`dask scheduler` on 127.0.0.1 as a separate process, and the file that names its address."""
    file = where / "scheduler.json"
    proc = subprocess.Popen(
        [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0"]
        + ["--scheduler-file", file],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while not file.exists() and time.time() < deadline:
        time.sleep(0.2)
    return proc, file


def dask_workers(file: Path, where: Path, processes: int = 2, threads: int = 1) -> subprocess.Popen:
    """`dask worker` processes on 127.0.0.1 (one numba thread each) for the scheduler that `file` names."""
    return subprocess.Popen(
        [BIN / "dask", "worker", "--scheduler-file", file, "--host", "127.0.0.1", "--dashboard-address"]
        + ["127.0.0.1:0", "--nworkers", str(processes), "--nthreads", str(threads), "--local-directory", where],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "NUMBA_NUM_THREADS": "1"},
    )


@contextlib.contextmanager
def bare_scheduler(where: Path):
    """A scheduler with no workers yet, a client on it, and `add(processes, threads)` to start workers."""
    from distributed import Client

    procs = []
    try:
        proc, file = dask_scheduler(where)
        procs.append(proc)
        with Client(scheduler_file=str(file), timeout="60s") as client:

            def add(processes=1, threads=1):
                procs.append(dask_workers(file, where, processes, threads))

            yield client, add
    finally:
        for p in reversed(procs):
            stop(p, timeout=30)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """`dask scheduler` and `dask worker` (two worker processes) on 127.0.0.1, started as separate processes."""
    with bare_scheduler(tmp_path_factory.mktemp("dask")) as (client, add):
        add(processes=2)
        client.wait_for_workers(2, timeout=120)
        address = client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        yield address


def connected_clients(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: sum(c.startswith("Client-") for c in dask_scheduler.clients))


def cxsim(*args, **kw):
    return subprocess.Popen(
        [BIN / "cxsim", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


@pytest.mark.dask
@pytest.mark.slow
def test_sweep_against_a_running_scheduler(tmp_path, scheduler):
    path = sweep_file(tmp_path)
    proc = cxsim("sweep", path, "--scheduler", scheduler, "--out", tmp_path / "out")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "8 runs: 8 done, 0 skipped" in out
    assert sorted(load(tmp_path / "out")["run_id"]) == sorted(r.run_id for r in expand(load_sweep(path), MODEL_VERSION))


@pytest.mark.dask
@pytest.mark.slow
def test_two_sweeps_on_one_scheduler_store_every_run_once(tmp_path):
    """Two drivers submit the same runs, in tasks of different sizes, before any worker is there."""
    path = sweep_file(tmp_path, replicates=6, steps=3)  # 36 runs
    sweep = load_sweep(path)
    with bare_scheduler(tmp_path) as (client, add_workers):
        before = connected_clients(client)
        drivers = [
            cxsim("sweep", path, "--scheduler", client.scheduler.address, "--out", tmp_path / f"batch{b}", "--batch", b)
            for b in (4, 1)
        ]
        deadline = time.time() + 120
        while connected_clients(client) < before + 2 and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # both have submitted what they submit before a worker is there
        add_workers(processes=2)
        for proc in drivers:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            assert "36 runs: 36 done, 0 skipped" in out
    expected = sorted(r.run_id for r in expand(sweep, MODEL_VERSION))
    for b in (4, 1):
        assert sorted(load(tmp_path / f"batch{b}")["run_id"]) == expected  # every run, once
    pd.testing.assert_frame_equal(results(tmp_path / "batch4"), results(tmp_path / "batch1"))
    stored = load(tmp_path / "batch1").set_index("run_id")
    for run in expand(sweep, MODEL_VERSION)[:6]:
        assert {k: stored.loc[run.run_id, k] for k in sweep.kpis} == run_task(task_of(run, sweep))["kpis"]


@pytest.mark.dask
def test_a_scheduler_without_workers_is_waited_for_a_bounded_time(tmp_path):
    path = sweep_file(tmp_path)
    with bare_scheduler(tmp_path) as (client, _):
        address = client.scheduler.address
        proc = cxsim("sweep", path, "--scheduler", address, "--out", tmp_path / "o", "--worker-timeout", 2)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert f"--scheduler {address}: no worker connected within 2 s" in err and "Traceback" not in err


@pytest.mark.dask
@pytest.mark.slow
def test_killed_worker_loses_nothing_and_duplicates_nothing(tmp_path, scheduler):
    from distributed import Client

    path = sweep_file(tmp_path, population=4000, days=120, replicates=6, steps=3)  # 36 runs of about 0.1 s
    proc = cxsim(
        "sweep", path, "--scheduler", scheduler, "--out", tmp_path / "out", "--batch", "1", "--flush-seconds", "0.5"
    )
    with Client(scheduler, timeout="30s") as client:
        deadline = time.time() + 120
        busy = []
        while not busy and time.time() < deadline:
            busy = [w for w, keys in client.processing().items() if any("cxsim-run" in str(k) for k in keys)]
            time.sleep(0.05)
        assert busy, "no run was ever seen processing"
        pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        client.wait_for_workers(2, timeout=60)  # the nanny brought the worker back
        assert pid not in client.run(os.getpid).values()
    runs = load(tmp_path / "out")
    expected = sorted(r.run_id for r in expand(load_sweep(path), MODEL_VERSION))
    assert sorted(runs["run_id"]) == expected  # every run, once
    assert load(tmp_path / "out", "errors").empty


@pytest.mark.dask
@pytest.mark.slow
def test_the_tasks_in_flight_follow_the_threads_of_workers_that_join_late(tmp_path):
    path = sweep_file(tmp_path, population=4000, days=120, replicates=20, steps=5)  # 200 runs of about 0.1 s
    with bare_scheduler(tmp_path) as (client, add_workers):
        add_workers(processes=1, threads=1)
        client.wait_for_workers(1, timeout=120)
        proc = cxsim("sweep", path, "--scheduler", client.scheduler.address, "--out", tmp_path / "o", "--batch", 1)
        busy, joined = 0, False  # the most runs the workers held at once
        while proc.poll() is None:
            running = sum(str(k).startswith("cxsim-run") for keys in client.processing().values() for k in keys)
            if running and not joined:
                add_workers(processes=1, threads=6)  # it joins while the sweep runs
                joined = True
            busy = max(busy, running)
            time.sleep(0.05)
        out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert busy >= 6, f"at most {busy} runs in flight on 1 + 6 threads"


@pytest.mark.dask
def test_a_result_lost_with_its_worker_does_not_block_the_driver(tmp_path):
    """A task finished, then its worker died before its result was gathered (a job ended): the driver goes on,
    to replace the job, instead of waiting for a recomputation that only a new worker could do."""
    from distributed import wait

    from cxsim.sweep import TICK, collect

    with bare_scheduler(tmp_path) as (client, _):
        worker = subprocess.Popen(
            [BIN / "dask", "worker", client.scheduler.address, "--no-nanny", "--host", "127.0.0.1"]
            + ["--no-dashboard", "--nthreads", "1", "--local-directory", tmp_path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            client.wait_for_workers(1, timeout=60)
            future = client.submit(sum, [1, 2], key="cxsim-test-lost")
            wait(future, timeout=60)  # finished: the result sits in the worker's memory
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            start = time.monotonic()
            assert collect(future, ["r"]) is None
            assert time.monotonic() - start < 3 * TICK
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def fake_slurm(where: Path, reject: str = "") -> dict:
    """`sbatch` and `scancel` that run each job at once on this machine, in a session of its own (or reject
    every job with `reject` on stderr); every job's pid goes to `jobs`. Returns the environment to use."""
    bin = where / "bin"
    bin.mkdir()
    submit = (
        f'echo "{reject}" >&2\nexit 1\n'
        if reject
        else 'd=$(dirname "$0")\ncp "$1" "$d/job-$$.sh"\n'
        'setsid bash "$d/job-$$.sh" > "$d/job-$$.log" 2>&1 < /dev/null &\n'
        'echo $! >> "$d/jobs"\necho "Submitted batch job $!"\n'
    )
    for name, text in (("sbatch", submit), ("scancel", 'kill -TERM -- "-$1" 2>/dev/null\nexit 0\n')):
        (bin / name).write_text("#!/bin/bash\n" + text)
        (bin / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin}:{os.environ['PATH']}"}


@pytest.mark.dask
def test_a_rejected_slurm_submission_exits_2_with_the_schedulers_message(tmp_path):
    rejected = "sbatch: error: Batch job submission failed: Invalid partition name specified"
    env = fake_slurm(tmp_path, reject=rejected)
    path = sweep_file(tmp_path)
    proc = cxsim(
        "sweep", path, "--cluster", "slurm", "--queue", "nope", "--interface", "lo", "--out", tmp_path / "o", env=env
    )
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    assert f"cxsim: --cluster slurm: sbatch rejected the job: {rejected}" in err and "Traceback" not in err


@pytest.mark.dask
@pytest.mark.slow
def test_a_lost_slurm_job_is_replaced_and_nothing_is_lost(tmp_path):
    """The job ends under the sweep (walltime, preemption, scancel): a new job takes over its runs."""
    env = fake_slurm(tmp_path)
    path = sweep_file(tmp_path, population=4000, days=120, replicates=6, steps=3)  # 36 runs of about 0.1 s
    out = tmp_path / "o"
    args = ["--cluster", "slurm", "--cores", "1", "--interface", "lo", "--batch", "1", "--flush-seconds", "0.3"]
    proc = cxsim("sweep", path, "--out", out, *args, "--progress", "--dashboard-address", "127.0.0.1:0", env=env)
    jobs = tmp_path / "bin" / "jobs"
    try:
        wait_for_parts(out, 1, proc)
        first = int(jobs.read_text().split()[0])
        os.killpg(first, signal.SIGKILL)  # the job and its workers are gone at once, as at the walltime
        text, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        for pid in map(int, jobs.read_text().split()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert f"job {first} lost" in err and "submitted a replacement" in err
    assert len(jobs.read_text().split()) == 2  # one replacement
    assert re.search(r"Dask dashboard at http://127\.0\.0\.1:\d+/status", err)  # asked for, on loopback
    assert re.search(r"<\d\d:\d\d, .*workers=1, running=\d+, queued jobs=\d, failed=0", err)  # time left
    assert "36 runs: 36 done, 0 skipped" in text
    assert sorted(load(out)["run_id"]) == sorted(r.run_id for r in expand(load_sweep(path), MODEL_VERSION))


def wait_for_parts(out: Path, n: int, proc, timeout=120):
    deadline = time.time() + timeout
    while len(list((out / "runs").glob("part-*.parquet"))) < n and time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


@pytest.mark.dask
@pytest.mark.slow
def test_interrupted_sweep_resumes_without_redoing_or_duplicating(tmp_path, scheduler):
    path = sweep_file(tmp_path, population=4000, days=120, replicates=8, steps=3)  # 48 runs of about 0.1 s
    out = tmp_path / "out"
    args = ["sweep", path, "--scheduler", scheduler, "--out", out, "--batch", "1", "--flush-seconds", "0.3"]

    first = cxsim(*args)  # Ctrl-C: what has finished is committed, exit 130
    wait_for_parts(out, 1, first)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    after_int = set(load(out)["run_id"])

    second = cxsim(*args)  # kill -9 of the driver: no flush, no goodbye
    wait_for_parts(out, len(list((out / "runs").glob("part-*"))) + 1, second)
    second.kill()
    second.wait()
    after_kill = load(out)
    assert after_int <= set(after_kill["run_id"]) and len(after_kill) < 48, "killed too late to test resuming"

    third = cxsim(*args)
    text, err = third.communicate(timeout=300)
    assert third.returncode == 0, err
    assert f"48 runs: {48 - len(after_kill)} done, {len(after_kill)} skipped" in text
    assert not load(out).duplicated("run_id").any()
    whole = cxsim("sweep", path, "--scheduler", scheduler, "--out", tmp_path / "whole")
    assert whole.wait(timeout=300) == 0
    pd.testing.assert_frame_equal(results(out), results(tmp_path / "whole"))
    assert not list(out.rglob(".part-*"))  # no temp file left behind


# --- SLURM (no SLURM here: the job script and cluster settings are checked) ------------------------


@pytest.mark.dask
def test_slurm_job_script_and_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    cfg = Cluster(
        queue="short",
        account="cx",
        cores=8,
        memory="16GB",
        walltime="02:00:00",
        jobs=3,
        interface="lo",
        job_extra_directives=("--constraint=avx512",),
    )
    with batch_cluster("slurm", cfg, threads=2) as cluster:
        script = cluster.job_script()
    for line in (
        "#SBATCH -p short",
        "#SBATCH -A cx",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH -t 02:00:00",
        "#SBATCH --mem=15G",
        "#SBATCH --constraint=avx512",
        "export NUMBA_NUM_THREADS=2",
        f"export NUMBA_CACHE_DIR={tmp_path / 'cache'}",
        sys.executable,
    ):
        assert line in script, line
    assert "--nworkers 4" in script and "--nthreads 1" in script  # 4 processes x 2 numba threads = 8 cores
    assert "tcp://127.0.0.1:" in script

    from cxsim.cli import parser
    from cxsim.sweep import from_arguments

    path = sweep_file(tmp_path)
    path.write_text(path.read_text() + '\n[cluster]\nqueue = "long"\ncores = 16\nmemory = "32GB"\n')
    args = parser().parse_args(["sweep", str(path), "--cluster", "slurm", "--cores", "4", "--jobs", "5"])
    sweep, _, cores, _ = from_arguments(args)
    assert cores.cluster == "slurm"
    assert (sweep.cluster.queue, sweep.cluster.cores, sweep.cluster.memory, sweep.cluster.jobs) == (
        "long",
        4,
        "32GB",
        5,
    )


BATCH_SCRIPTS = {  # what each batch system's job script must hold for 8 cores in 4 workers of 2 numba threads
    "pbs": ["#PBS -q short", "#PBS -A cx", "#PBS -l select=1:ncpus=8:mem=15GB", "#PBS -l walltime=02:00:30"],
    "sge": ["#$ -q short", "#$ -P cx", "#$ -l h_rt=02:00:30", "#$ -pe smp 8"],
    "lsf": ["#BSUB -q short", '#BSUB -P "cx"', "#BSUB -n 8", "#BSUB -M 16000000", "#BSUB -W 02:01"],
    "htcondor": ["RequestCpus = 8", "MY.DaskWorkerMemory = 16000000000", "MY.DaskWorkerDisk = 2000000000"]
    + ["+MaxRuntime = 7200"],
}


@pytest.mark.dask
@pytest.mark.parametrize("kind", list(BATCH_SCRIPTS))
def test_other_batch_systems_job_scripts(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    condor = kind == "htcondor"
    cfg = Cluster(
        queue=None if condor else "short",
        account=None if condor else "cx",
        cores=8,
        memory="16GB",
        disk="2GB",
        walltime="02:00:30",
        interface="lo",
        job_extra_directives=("+MaxRuntime = 7200",) if condor else ("-pe smp 8",) if kind == "sge" else (),
    )
    with batch_cluster(kind, cfg, threads=2) as cluster:
        script = cluster.job_script()
    for line in BATCH_SCRIPTS[kind] + ["export NUMBA_NUM_THREADS=2", f"export NUMBA_CACHE_DIR={tmp_path / 'cache'}"]:
        assert line in script, line
    assert "--nworkers 4" in script and "--nthreads 1" in script and "--interface lo" in script
    assert sys.executable in script and "tcp://127.0.0.1:" in script


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--cluster", "htcondor", "--queue", "short"], "--cluster htcondor: HTCondor has no queue or account"),
        (["--cluster", "lsf", "--walltime", "90"], "--walltime 90: expected HH:MM:SS for LSF"),
        (["--cluster", "pbs", "--memory", "lots"], "--memory lots: expected a size such as 8GB"),
        (["--cluster", "slurm", "--cores", "0"], "--cores: input should be greater than or equal to 1, got 0"),
    ],
)
def test_bad_batch_settings_exit_2(tmp_path, capsys, flags, expected):
    out = tmp_path / "o"
    assert main(["sweep", str(sweep_file(tmp_path)), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert f"cxsim: {expected}" in err and "Traceback" not in err
    assert not out.exists()


# --- analysis -------------------------------------------------------------------------------------


@pytest.mark.dask
@pytest.mark.slow
def test_sensitivity_finds_price_drives_revenue(tmp_path, capsys):
    text = """
name = "price"
scenario = "base"
population = 300
days = 20
kpis = ["revenue", "retention"]
[design]
kind = "sobol"
samples = 8
by = ["ownership.model"]
[parameters]
market.price_per_month = { range = [20.0, 80.0] }
departments.marketing.budget = { range = [1e6, 4e6] }
"ownership.model" = ["cco_led", "siloed"]
"""
    path = sweep_file(tmp_path, "price.toml", text=text)
    out = tmp_path / "out"
    assert main(["sensitivity", str(path), "--out", str(out), "--workers", "2", "--plot", str(tmp_path / "s.png")]) == 0
    printed = capsys.readouterr().out
    assert "S1" in printed and "ST_conf" in printed
    table = pd.read_csv(out / "sensitivity.csv")
    assert len(table) == 2 * 2 * 2  # groups x KPIs x parameters
    for model in ("cco_led", "siloed"):
        rev = table[(table["kpi"] == "revenue") & (table["ownership.model"] == model)].set_index("parameter")
        assert rev.loc["market.price_per_month", "ST"] > 0.8 > rev.loc["departments.marketing.budget", "ST"]
    for png in (out / "sensitivity.png", tmp_path / "s.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(load(out, "design")) == 2 * 8 * 4 and load(out, "design")["revenue"].notna().all()


@pytest.mark.dask
def test_plot_kpi_against_parameters(tmp_path):
    from cxsim.plots import kpi_against

    sweep = load_sweep(sweep_file(tmp_path, population=300, replicates=2))
    run_sweep(sweep, tmp_path / "out", Cores(workers=1))
    fig = kpi_against(
        tmp_path / "out", "profit", "departments.service.budget", hue="ownership.model", path=tmp_path / "p.png"
    )
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and [t.get_text() for t in ax.get_legend().get_texts()] == [
        "ownership.model = cco_led",
        "ownership.model = siloed",
    ]
    runs = load(tmp_path / "out")
    means = runs[runs["ownership.model"] == "cco_led"].groupby("departments.service.budget")["profit"].mean()
    assert list(ax.lines[0].get_ydata()) == pytest.approx(list(means))
    assert (tmp_path / "p.png").stat().st_size > 10_000


NAN_SWEEP = """
name = "nan"
scenario = "base"
kpis = ["revenue", "nps"]
[design]
kind = "sobol"
samples = 8
[parameters]
market.price_per_month = { range = [20.0, 80.0] }
departments.marketing.budget = { range = [1e6, 4e6] }
"""


def synthetic_store(tmp_path, monkeypatch, samples=8):
    """A Sobol sweep whose store the analysis reads from memory: revenue mostly follows the price."""
    from cxsim import sensitivity
    from cxsim.sweepfile import unit_design

    sweep = load_sweep(sweep_file(tmp_path, "nan.toml", text=NAN_SWEEP.replace("8", str(samples))))
    X = unit_design(sweep)
    design = pd.DataFrame(
        {
            "point": range(len(X)),
            "run_id": [f"r{i}" for i in range(len(X))],
            "revenue": 100.0 * X[:, 0] + X[:, 1] + 30.0 * X[:, 0] * X[:, 1],
            "nps": 10.0 * X[:, 1],
        }
    )
    tables = {"design": design, "runs": design[["run_id"]]}
    monkeypatch.setattr(sensitivity.sweeping, "load", lambda out, table="runs": tables[table])
    return sweep, tables


def test_sensitivity_skips_a_kpi_undefined_at_some_points_and_keeps_the_others(tmp_path, monkeypatch, capsys):
    """NPS is undefined where no customer is left: that KPI gets no indices, the others still do."""
    from cxsim import sensitivity

    sweep, tables = synthetic_store(tmp_path, monkeypatch)
    design = tables["design"]
    design.loc[3, "nps"] = float("nan")
    table = sensitivity.analyze(sweep, tmp_path).set_index(["kpi", "parameter"])
    assert table.loc[("nps", "market.price_per_month")].isna().all()
    assert table.loc[("revenue", "market.price_per_month"), "ST"] > 0.9
    assert "nps is undefined at 1 design points" in capsys.readouterr().err
    tables["runs"] = design[["run_id"]].iloc[1:]  # a run missing from the store is a failure
    with pytest.raises(RuntimeError, match="1 runs of the design have no results"):
        sensitivity.analyze(sweep, tmp_path)


@pytest.mark.parametrize("samples, warned", [(8, True), (256, False)])
def test_sensitivity_warns_where_the_sample_is_too_small_for_the_intervals(
    tmp_path, monkeypatch, capsys, samples, warned
):
    from cxsim import sensitivity

    sweep, _ = synthetic_store(tmp_path, monkeypatch, samples)
    sensitivity.analyze(sweep, tmp_path)
    err = capsys.readouterr().err
    assert ("revenue: the widest 95% interval" in err) is warned, err
    if warned:
        assert f"at N = {samples}" in err and "design.samples" in err


def test_sensitivity_plot_legend_covers_no_bar(tmp_path, monkeypatch):
    from cxsim import sensitivity

    sweep, _ = synthetic_store(tmp_path, monkeypatch)
    table = pd.DataFrame(
        [
            {"kpi": "revenue", "parameter": p, "S1": s, "S1_conf": 0.05, "ST": s, "ST_conf": 0.05}
            for p, s in zip(sweep.free, (0.05, 0.95), strict=True)  # the long bars at the bottom right
        ]
    )
    fig = sensitivity.plot(table, sweep)
    fig.canvas.draw()
    legend = (fig.legends or [fig.axes[0].get_legend()])[0].get_window_extent()
    bars = [patch.get_window_extent() for ax in fig.axes for patch in ax.patches]
    assert bars and not any(legend.overlaps(bar) for bar in bars)
