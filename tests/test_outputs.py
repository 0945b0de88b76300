"""Outputs whole or absent, sweep stores that never mix, bad input refused before any computing (issue 14)."""

import errno
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxsim import files
from cxsim.cli import main
from cxsim.sweep import MODEL_VERSION, design_table, store_meta
from cxsim.sweepfile import expand, load_sweep
from cxsim.sweepstore import Store, load

SMALL = ["--days", "10", "--population", "300", "--replicates", "2"]


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fail_on_write(monkeypatch, n: int):
    """Make the n-th file written into an output folder fail as a full disk would."""
    calls = {"n": 0}
    real = files.fsync

    def fsync(path):
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(files, "fsync", fsync)


# --- 1. run --out / compare --out: replaced whole or left as it was -----------------------------------


@pytest.mark.parametrize(
    "command",
    [["run", "base", *SMALL], ["compare", "base", "siloed", *SMALL]],
    ids=["run", "compare"],
)
def test_a_failed_write_leaves_the_output_folder_as_it_was(tmp_path, monkeypatch, capsys, command):
    out = tmp_path / "out"
    assert main([*command, "--out", str(out)]) == 0
    before = snapshot(out)
    fail_on_write(monkeypatch, 3)
    assert main([*command, "--seed", "7", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "No space left" in err and "left as it was" in err and "internal error" not in err
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary sibling left behind


def test_a_rerun_replaces_the_output_folder_whole(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compare", "base", "siloed", *SMALL, "--out", str(out)]) == 0
    assert main(["run", "base", *SMALL, "--seed", "7", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "days.parquet",
        "departments.parquet",
        "runs.parquet",
        "trajectories.png",
    ]
    assert set(pd.read_parquet(out / "runs.parquet")["seed"]) == {7, 8}


def test_an_output_folder_holding_other_files_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["run", "base", *SMALL, "--out", str(tmp_path)]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# --- 2-4. the sweep store ----------------------------------------------------------------------------

SWEEP = """
name = "t"
scenario = "base"
population = 300
days = 5
replicates = 1
kpis = ["retention", "profit"]
daily = true

[design]
kind = "grid"

[parameters]
"ownership.model" = ["cco_led", "siloed"]
"""


def stored(tmp_path, out, extra=(), **options):
    """A sweep's store filled by hand (no Dask): every run committed, one part per run."""
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    sweep = load_sweep(path, extra, **options)
    runs = expand(sweep, MODEL_VERSION)
    store = Store(out, store_meta(sweep, runs))
    store.begin(design_table(runs))
    for run in runs:
        day = pd.DataFrame({"run_id": [run.run_id] * 2, "day": [0, 1], "csat": [0.5, 0.6]})
        store.flush([{"run_id": run.run_id, "retention": 0.9, "profit": 1.0}], [day], [])
    store.close()
    return path, runs


def test_a_sweep_keeps_files_it_did_not_write(tmp_path):
    out = tmp_path / "o"
    stored(tmp_path, out)
    mine = [out / "runs" / ".gitkeep", out / "errors" / ".env", out / "days" / "part-mine.parquet"]
    for p in mine:
        p.write_text("mine")
    (out / "runs" / ".part-00000000000000000001-1.parquet.abc.parquet").write_text("torn")  # the store's own
    sweep = load_sweep(tmp_path / "s.toml")
    Store(out, store_meta(sweep, expand(sweep, MODEL_VERSION))).close()
    assert all(p.read_text() == "mine" for p in mine)
    assert not list((out / "runs").glob(".part-*"))


@pytest.mark.parametrize(
    "change, named",
    [
        (["--population", "600"], "population"),
        (["--set", "seed=3"], "seed"),
        (["--set", 'parameters.ownership.model=["cco_led","shared"]'], "parameters"),
        (["--set", "set.customers.complaint_propensity=0.4"], "set"),
    ],
)
def test_a_store_refuses_another_sweep_naming_what_differs(tmp_path, capsys, change, named):
    out = tmp_path / "o"
    path, runs = stored(tmp_path, out)
    before = snapshot(out)
    assert main(["sweep", str(path), "--out", str(out), *change]) == 2
    err = capsys.readouterr().err
    assert named in err and str(out) in err and "Traceback" not in err
    assert snapshot(out) == before and len(load(out)) == len(runs)


def test_the_same_sweep_resumes_its_store(tmp_path, capsys):
    out = tmp_path / "o"
    path, runs = stored(tmp_path, out)
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    assert f"{len(runs)} skipped" in capsys.readouterr().out


@pytest.mark.parametrize("table", ["runs", "days"])
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_part_is_moved_aside_and_its_runs_redone(tmp_path, capsys, table, damage):
    out = tmp_path / "o"
    path, runs = stored(tmp_path, out)
    part = sorted((out / table).glob("part-*.parquet"))[0]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    sweep = load_sweep(path)
    store = Store(out, store_meta(sweep, runs))
    assert len(store.done()) == len(runs) - 1  # the damaged part's run is to be redone
    store.close()
    err = capsys.readouterr().err
    assert part.name in err and "damaged" in err and "redone" in err
    assert (out / "damaged" / table / part.name).exists() and not part.exists()
    assert len(load(out)) == len(runs) - 1 and len(load(out, "days")) == 2 * (len(runs) - 1)


def test_parts_and_their_folder_are_synced_before_and_after_the_rename(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(files, "fsync", lambda p: synced.append(Path(p)))
    files.atomic_write(tmp_path / "a.json", lambda p: Path(p).write_text(json.dumps({})))
    assert synced[0].name.startswith(".a.json.") and synced[1] == tmp_path


def test_a_sweep_that_cannot_start_leaves_no_store(tmp_path, monkeypatch, capsys):
    import contextlib

    from cxsim.scenario import ScenarioError

    @contextlib.contextmanager
    def unreachable(cores, sweep):
        raise ScenarioError("--scheduler tcp://127.0.0.1:1: cannot connect")
        yield

    monkeypatch.setattr("cxsim.sweep.client_for", unreachable)
    path = tmp_path / "s.toml"
    path.write_text(SWEEP)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_a_damaged_sweep_record_is_refused(tmp_path, capsys):
    out = tmp_path / "o"
    path, _ = stored(tmp_path, out)
    (out / "sweep.json").write_text('{"name": "t", "kpis": [')
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "sweep.json" in err and "damaged" in err and "internal error" not in err


# --- 5-10, 14. crashes and hangs: refused before any computing, exit 2 ---------------------------------


@pytest.mark.parametrize(
    "argv, named",
    [
        (["run", "base", "--population", "2", "--days", "5"], "population"),
        (["check", "base", "--set", "market.population=1"], "market.population"),
        (["check", "base", "--population", "1000000000000"], "memory"),
        (["run", "base", "--population", "1000000000000", "--days", "1"], "memory"),
        (["lesson", "billing_ripple", "--population", "1000000000000"], "memory"),
        (["run", "base", *SMALL, "--threads", "99"], "--threads"),
        (["compare", "base", "siloed", *SMALL, "--threads", "99"], "--threads"),
        (["run", "base", *SMALL, "--out", "{tmp}/file/out"], "is a file"),
        (["bench", "--sizes", "", "--out", "{tmp}/b"], "--sizes"),
        (["bench", "--sizes", "1e30", "--out", "{tmp}/b"], "--sizes"),
        (["sweep", "{tmp}/s.toml", "--out", "{tmp}/file/out"], "is a file"),
    ],
)
def test_bad_input_is_refused_before_any_computing(tmp_path, monkeypatch, capsys, argv, named):
    (tmp_path / "file").write_text("a regular file")
    (tmp_path / "s.toml").write_text(SWEEP)
    monkeypatch.setattr("cxsim.experiment.CXModel", None)  # no model is ever built
    monkeypatch.setattr("cxsim.bench.run_bench", None)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert named in err and "internal error" not in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "s.toml"]


def test_the_memory_check_knows_the_customers_arrays():
    from cxsim.customers import FIELDS
    from cxsim.memory import STATE_BYTES_PER_CUSTOMER

    assert sum(np.dtype(dtype).itemsize for dtype in FIELDS.values()) == STATE_BYTES_PER_CUSTOMER


def test_a_design_too_large_for_memory_is_refused_with_its_count(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(
        SWEEP.replace('"ownership.model" = ["cco_led", "siloed"]', "")
        + '"market.price_per_month" = { range = [10.0, 90.0], steps = 10000 }\n'
        + '"market.switching_cost" = { range = [0.1, 0.9], steps = 10000 }\n'
    )
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "100,000,000 runs" in err and "s.toml" in err
    assert not (tmp_path / "o").exists()


def test_sensitivity_plot_into_a_missing_folder_is_refused_before_the_sweep(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(
        SWEEP.replace('kind = "grid"', 'kind = "morris"\nsamples = 2').replace(
            '"ownership.model" = ["cco_led", "siloed"]',
            '"market.price_per_month" = { range = [10.0, 90.0] }\n"market.switching_cost" = { range = [0.1, 0.9] }',
        )
    )
    argv = ["sensitivity", str(path), "--out", str(tmp_path / "o"), "--plot", str(tmp_path / "no" / "p.png")]
    assert main(argv) == 2
    assert "--plot" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
