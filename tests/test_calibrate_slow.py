"""cxsim calibrate at a small scale: ABC-SMC, resume after a kill, and the same results on Dask workers."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from cxsim import cli
from cxsim.calibration import calibrate, load_calibration
from cxsim.sweep import Cores
from tests.conftest import required_module

required_module("optuna", "make setup installs the calibrate extra")

BASE = """
scenario = "base"
days = {days}
replicates = 2
seed = 5
population = {population}
[parameters]
"customers.complaint_propensity" = {{ low = 0.05, high = 0.6 }}
[targets.complaints_per_customer_year]
value = 0.6
kind = "normal"
sigma = 0.036
"""


def write(tmp_path, head: str, days=120, population=3000):
    path = tmp_path / "cal.toml"
    path.write_text(textwrap.dedent(head) + BASE.format(days=days, population=population))
    return path


@pytest.mark.slow
def test_abc_gives_a_weighted_posterior_around_the_identified_value(tmp_path, capsys):
    required_module("pyabc", "make setup installs the calibrate extra")
    path = write(tmp_path, 'method = "abc"\nparticles = 12\ngenerations = 2\n', days=90)
    out = tmp_path / "out"
    assert cli.main(["calibrate", str(path), "--out", str(out), "--json", "--workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    posterior = pd.read_parquet(out / "posterior.parquet")
    assert {"customers.complaint_propensity", "weight"} <= set(posterior.columns)
    assert posterior.weight.sum() == pytest.approx(1.0) and len(posterior) == 12
    p = summary["parameters"]["customers.complaint_propensity"]
    lo, hi = p["interval"]
    # 0.6 complaints per customer-year is a complaint propensity of about 0.37 in this world (optimize and a
    # longer ABC agree); two generations already narrow the prior's 0.55 to well under half
    assert lo <= 0.37 <= hi and hi - lo < 0.25, p
    assert lo <= p["estimate"] <= hi
    t = summary["targets"]["complaints_per_customer_year"]
    assert t["verdict"] in ("fitted", "within error"), t
    assert (out / "calibrated.toml").is_file() and (out / "abc.db").is_file()
    # resume with more generations: the finished ones are kept, one more is added
    path.write_text(path.read_text().replace("generations = 2", "generations = 3"))
    assert cli.main(["calibrate", str(path), "--out", str(out), "--resume", "--json", "--workers", "1"]) == 0
    more = json.loads(capsys.readouterr().out)
    assert "3 generations" in more["notes"][0]
    assert set(pd.read_parquet(out / "posterior.parquet").generation) == {2}
    # another setting that changes the runs is another calibration: refused
    path.write_text(path.read_text().replace("replicates = 2", "replicates = 3"))
    assert cli.main(["calibrate", str(path), "--out", str(out), "--resume", "--workers", "1"]) == 2
    assert "another file" in capsys.readouterr().err


def _complete(db) -> list[tuple]:
    """(trial number, value) of the finished trials in an Optuna SQLite storage."""
    with sqlite3.connect(db, timeout=10) as c:
        rows = c.execute(
            "select t.number, v.value from trials t join trial_values v on v.trial_id = t.trial_id "
            "where t.state = 'COMPLETE' order by t.number"
        ).fetchall()
    return rows


@pytest.mark.slow
def test_resume_after_a_kill_keeps_every_finished_trial_and_repeats_none(tmp_path):
    path = write(tmp_path, "trials = 60\nbatch = 2\nrerun_top = 2\n", days=60, population=2000)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "cxsim", "calibrate", str(path), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    db = out / "optuna.db"
    deadline = time.monotonic() + 120
    before = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    before = _complete(db)
                except sqlite3.OperationalError:  # the tables are being created
                    before = []
                if len(before) >= 6:
                    break
            time.sleep(0.2)
        assert proc.poll() is None, "the calibration finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    before = _complete(db)
    assert 6 <= len(before) < 60
    assert not (out / "summary.json").exists()
    # without --resume the folder is refused; with it the calibration goes on
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = subprocess.run([*command, "--resume", "--json"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    after = _complete(db)
    assert len(after) == 60, "exactly the trials asked for: none repeated, none lost"
    assert set(before) <= set(after), "every trial finished before the kill is kept, with its value"
    # the remaining trials, then the re-runs of the best 2 on 2 fresh seeds and the information's 2 points on them
    assert summary["runs"] == (60 - len(before)) * 2 + 2 * 2 + 2 * 2
    trials = pd.read_parquet(out / "trials.parquet")
    assert (trials.state == "COMPLETE").sum() == 60


@pytest.mark.slow
@pytest.mark.dask
def test_the_same_calibration_in_this_process_and_on_two_dask_workers(tmp_path):
    required_module("distributed", "make setup installs the cluster extra")
    path = write(tmp_path, "trials = 8\nbatch = 4\nrerun_top = 2\n", days=60, population=2000)
    cal = load_calibration(path)
    one = calibrate(cal, tmp_path / "one", Cores(workers=1), progress=False)
    two = calibrate(cal, tmp_path / "two", Cores(workers=2), progress=False)
    a = pd.read_parquet(tmp_path / "one" / "trials.parquet")
    b = pd.read_parquet(tmp_path / "two" / "trials.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert one["parameters"] == two["parameters"]
    assert {k: v["simulated"] for k, v in one["targets"].items()} == {
        k: v["simulated"] for k, v in two["targets"].items()
    }
