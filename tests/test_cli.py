"""The command line: the JSON contract, output files, exit codes and clean errors."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import stop

from cxsim import load_scenario, run
from cxsim.cli import main

CONTRACT_KPIS = [
    "active_customers",
    "acquisitions",
    "churned",
    "retention",
    "silent_churn_share",
    "csat",
    "nps",
    "nps_survey",
    "complaints",
    "mean_service_wait_hours",
    "revenue",
    "cost",
    "profit",
    "wom_positive",
    "wom_negative",
]
SMALL = ["--days", "30", "--population", "800", "--replicates", "2"]


def run_json(capsys, *args):
    assert main(["run", "base", *SMALL, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_run_json_contract(capsys):
    out = run_json(capsys)
    assert {"scenario", "engine", "seed", "days", "population", "replicates", "kpis", "departments"} <= set(out)
    assert (out["days"], out["population"], out["replicates"]) == (30, 800, 2)
    for k in CONTRACT_KPIS:
        kpi = out["kpis"][k]
        assert len(kpi["values"]) == 2 and kpi["mean"] == pytest.approx(sum(kpi["values"]) / 2)
        lo, hi = kpi["ci95"]
        assert lo <= kpi["mean"] <= hi
    assert set(out["departments"]) >= {"marketing", "sales", "digital", "product", "fulfilment", "billing", "service"}
    for d in out["departments"].values():
        assert set(d) == {"budget", "failures", "churn_attributed"}
    k = out["kpis"]
    assert k["profit"]["values"] == pytest.approx(
        [r - c for r, c in zip(k["revenue"]["values"], k["cost"]["values"], strict=True)]
    )


def test_results_table_prints_money_readably():
    table = run(load_scenario("base", population=800, days=30), replicates=2, progress=False).table()
    assert list(table.columns) == ["mean", "ci95_low", "ci95_high"] and (table.dtypes == "float64").all()
    revenue = f"{table.loc['revenue', 'mean']:,.0f}"
    text = str(table)
    assert "e+" not in text and revenue in next(line for line in text.splitlines() if line.startswith("revenue"))
    assert revenue in table._repr_html_()
    assert type(table[["mean"]]) is pd.DataFrame  # derived tables are plain DataFrames


def test_engines_agree_through_the_cli(capsys):
    assert run_json(capsys, "--engine", "agents")["kpis"] == run_json(capsys, "--engine", "numba")["kpis"]


def test_set_changes_results(capsys):
    base = run_json(capsys)
    cut = run_json(capsys, "--set", "departments.service.budget=1000")
    assert cut["departments"]["service"]["budget"] < base["departments"]["service"]["budget"]


def test_out_writes_tidy_parquet_and_a_plot(tmp_path, capsys):
    assert main(["run", "base", *SMALL, "--out", str(tmp_path)]) == 0
    assert "csat" in capsys.readouterr().out
    runs = pd.read_parquet(tmp_path / "runs.parquet")
    days = pd.read_parquet(tmp_path / "days.parquet")
    depts = pd.read_parquet(tmp_path / "departments.parquet")
    assert len(runs) == 2 and set(CONTRACT_KPIS) <= set(runs.columns)
    assert len(days) == 2 * 30 and {"replicate", "day", "active_customers", "csat"} <= set(days.columns)
    assert len(depts) == 2 * 8
    png = (tmp_path / "trajectories.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_check(capsys):
    assert main(["check", "base"]) == 0
    assert "ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, key",
    [
        ("[market]\npopulaton = 5\n", "market.populaton"),
        ("[customers]\ncomplaint_propensity = 1.3\n", "customers.complaint_propensity"),
        ("[departments.billing]\nbudget = -1\n", "departments.billing.budget"),
        ("[market]\npopulation = 0\n", "market.population"),
        ("seed = 1\ndays = = 3\n", "line 2"),
    ],
)
def test_bad_input_exits_2_with_file_and_key_and_no_traceback(tmp_path, content, key):
    bad = tmp_path / "bad.toml"
    bad.write_text(content)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "cxsim", "run", str(bad), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.returncode == 2
    assert "bad.toml" in proc.stderr and key in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not out.exists()  # nothing written half-way


def test_bad_option_values_exit_2(capsys):
    assert main(["run", "base", "--days", "0"]) == 2
    assert "days" in capsys.readouterr().err
    assert main(["run", "base", "--threads", "0"]) == 2


@pytest.mark.parametrize("command", [[], ["run"], ["compare"], ["lesson"], ["check"], ["sweep"], ["sensitivity"]])
def test_help_prints(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([*command, "--help"])
    out = capsys.readouterr().out
    assert exit.value.code == 0 and "usage: cxsim" in out
    if not command:
        assert all(c in out for c in ("run", "compare", "lesson", "check", "sweep", "sensitivity"))


@pytest.mark.slow
def test_a_cold_cache_says_it_is_compiling_once(tmp_path):
    """An empty numba cache: the first run announces the compile and its time, the second is silent."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    command = [sys.executable, "-m", "cxsim", "run", "base", "--days", "2", "--population", "300", "--replicates", "1"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "compiling the simulator for this machine, once" in first.stderr
    assert re.search(r"compiled in \d+ s", first.stderr)
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "compiling" not in second.stderr
    assert second.stdout.splitlines()[0] == first.stdout.splitlines()[0]


def test_a_budget_far_from_its_reference_warns_but_runs(capsys):
    """A firm's own budget entered without its reference budget: check says so, and still passes."""
    assert main(["check", "base", "--set", "departments.marketing.budget=180e6"]) == 0
    err = capsys.readouterr().err
    assert "warning: base: key departments.marketing.budget: 180,000,000 a year is 72 times its " in err
    assert "set reference_budget too" in err
    assert (
        main(
            [
                "check",
                "base",
                "--set",
                "departments.marketing.budget=180e6",
                "--set",
                "departments.marketing.reference_budget=150e6",
            ]
        )
        == 0
    )
    assert main(["check", "base"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_no_bundled_scenario_draws_a_budget_warning():
    from cxsim.scenario import SCENARIOS, budget_warnings

    files = sorted(SCENARIOS.rglob("*.toml"))
    assert len(files) > 10 and [w for f in files for w in budget_warnings(load_scenario(f))] == []


# --- sweep files: types from the scenario's keys, clean messages ---------------------------------


def sweep_with(tmp_path, parameters: str, design: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text(f'scenario = "base"\npopulation = 400\ndays = 5\n{design}\n[parameters]\n{parameters}\n')
    return path


@pytest.mark.parametrize("kind", ["grid", "sobol", "morris", "latin_hypercube"])
def test_a_float_key_with_integer_bounds_gives_floats(tmp_path, kind):
    from cxsim.sweepfile import load_sweep, points

    design = "" if kind == "grid" else f'[design]\nkind = "{kind}"\nsamples = 8'
    steps = ", steps = 5" if kind == "grid" else ""
    sweep = load_sweep(
        sweep_with(
            tmp_path,
            f'"market.promise" = {{ range = [0, 1]{steps} }}\n"market.population" = {{ range = [1000, 2000]{steps} }}',
            design,
        )
    )
    pts = points(sweep)
    promise = [p["market.promise"] for p in pts]
    assert all(type(x) is float for x in promise) and all(type(p["market.population"]) is int for p in pts)
    if kind == "grid":
        assert sorted(set(promise)) == [0.0, 0.25, 0.5, 0.75, 1.0]
    else:  # sampled inside the range, not only at its ends
        assert len(set(promise)) > 2 and any(0 < x < 1 for x in promise)


def test_a_float_key_given_whole_values_gets_floats(tmp_path):
    from cxsim.sweepfile import load_sweep, points

    sweep = load_sweep(sweep_with(tmp_path, '"market.promise" = [0, 1]\n"market.population" = [1000, 2000]'))
    assert {(type(p["market.promise"]), type(p["market.population"])) for p in points(sweep)} == {(float, int)}


@pytest.mark.parametrize(
    "parameters, expected",
    [
        (
            '"market.promise" = { range = [nan, 1], steps = 3 }',
            "key parameters.market.promise.range.0: expected a finite number, got nan",
        ),
        (
            '"market.promise" = [nan]',
            "key parameters.market.promise.values.0: expected true or false, an integer, a finite number or a "
            "string, got nan",
        ),
        (
            '"market.promise" = { range = [0, "a"], steps = 3 }',
            "key parameters.market.promise.range.1: expected a number, got 'a'",
        ),
        (
            '"ownership.model" = { range = [0, 1], steps = 3 }',
            "key parameters.ownership.model: a `range` needs a numeric scenario key",
        ),
        (
            '"market.population" = { range = [1000.5, 2000], steps = 3 }',
            "key parameters.market.population: expected whole-number bounds for an integer key",
        ),
    ],
)
def test_bad_sweep_values_are_named_in_the_files_words(tmp_path, capsys, parameters, expected):
    path = sweep_with(tmp_path, parameters + '\n"market.price_per_month" = [40.0]')
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cxsim: {path}: {expected}") and "tuple[" not in err and "bool" not in err


def test_a_scenario_path_in_a_sweep_file_stays_a_path(tmp_path, capsys, monkeypatch):
    (tmp_path / "adir").mkdir()
    path = sweep_with(tmp_path, '"market.price_per_month" = [40.0]')
    path.write_text(path.read_text().replace('scenario = "base"', 'scenario = "adir/"'))
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "s.toml", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert "key scenario: cannot read scenario file" in err and "adir" in err and "bundled" not in err


# --- events after the last day, lesson files, --vary, one replicate -----------------------------

LESSONS = Path(__file__).parent.parent / "cxsim" / "scenarios" / "lessons"
TINY = ["--days", "5", "--population", "300", "--replicates", "1"]


def test_an_event_after_the_last_day_warns_in_run_and_compare(capsys):
    ripple = str(LESSONS / "billing_ripple.toml")
    late = f"{ripple}: key events[0]: the outage event on day 120 starts after the run's last day, day 4 (--days 5"
    assert main(["run", ripple, *TINY]) == 0
    assert f"cxsim: warning: {late}" in capsys.readouterr().err
    assert main(["compare", "base", ripple, *TINY, "--vary", "ownership.model=siloed,cco_led"]) == 0
    assert capsys.readouterr().err.count(late) == 1  # once, however many scenarios share the event
    assert main(["check", "base", "--set", 'events=[{day = 400, kind = "promise", size = 0.1}]']) == 0
    assert "--set: key events[0]: the promise event on day 400 starts after" in capsys.readouterr().err
    assert main(["run", ripple, *TINY[2:], "--days", "121"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_lesson_refuses_an_event_after_the_last_day(capsys, tmp_path):
    assert main(["lesson", "billing_ripple", "--days", "30", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "key events[0]: the outage event on day 120 starts after the run's last day, day 29 (--days 30" in err
    assert "expected --days 121 or more" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def lesson_file(tmp_path, lesson: str) -> Path:
    path = tmp_path / "lesson.toml"
    path.write_text(f'extends = "base"\nname = "l"\n[lesson]\n{lesson}\n')
    (tmp_path / "control.toml").write_text('extends = "base"\nname = "c"\n')
    return path


@pytest.mark.parametrize(
    "lesson, expected",
    [
        ('control = "control.toml"\nexpect = { retentoin = "higher" }', "key lesson.expect: unknown KPI retentoin"),
        ('control = "nope.toml"\nexpect = { retention = "higher" }', "key lesson.control: cannot read scenario file"),
    ],
)
def test_check_refuses_the_lesson_files_that_lesson_refuses(tmp_path, capsys, lesson, expected):
    path = lesson_file(tmp_path, lesson)
    for command in ("check", "lesson"):
        assert main([command, str(path), *TINY]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"cxsim: {path}: {expected}") and "Traceback" not in err


def test_check_passes_a_good_lesson_and_refuses_a_late_event(tmp_path, capsys):
    path = lesson_file(tmp_path, 'control = "control.toml"\nexpect = { retention = "higher" }')
    assert main(["check", str(path)]) == 0
    assert "a lesson against c" in capsys.readouterr().out
    assert main(["check", str(LESSONS / "billing_ripple.toml"), "--days", "30"]) == 2
    assert "expected --days 121 or more" in capsys.readouterr().err


def test_vary_errors_are_labelled_vary(capsys):
    assert main(["compare", "base", *TINY, "--vary", "market.promise=0.5,2"]) == 2
    assert capsys.readouterr().err.startswith("cxsim: --vary: key market.promise: expected a number <= 1")
    assert main(["compare", "base", *TINY, "--vary", "a b=1,2"]) == 2
    assert capsys.readouterr().err.startswith("cxsim: --vary 'a b=1': expected KEY=VALUE")
    assert main(["compare", "base", *TINY, "--set", "market.promise=2"]) == 2
    assert capsys.readouterr().err.startswith("cxsim: --set: key market.promise")


def test_one_replicate_says_why_there_is_no_interval(capsys):
    assert main(["compare", "siloed", "cco_led", *TINY, "--kpis", "retention,csat"]) == 0
    out = capsys.readouterr().out
    short = out.split("in short")[1]
    assert "n/a" in out.split("in short")[0] and "noise" not in short
    assert "n/a (one replicate: no interval; --replicates 2 or more gives one): retention, csat" in short


@pytest.mark.slow
@pytest.mark.dask
def test_repeated_ctrl_c_in_a_sweeps_shutdown_keeps_the_summary(tmp_path):
    """Ctrl-C, then Ctrl-C again and again while the sweep saves its results and closes its cluster."""
    path = tmp_path / "s.toml"
    path.write_text(
        'scenario = "base"\npopulation = 2000\ndays = 300\nreplicates = 100\n'
        '[parameters]\n"market.price_per_month" = [40.0, 50.0]\n'
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxsim", "sweep", str(path), "--out", str(out), "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for _ in range(600):  # until the cluster is up and the design recorded
            if (out / "design.parquet").exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        for _ in range(40):
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGINT)
            time.sleep(0.1)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            stop(proc)
    assert proc.returncode == 130, stderr
    assert "stopped: interrupted; results in" in stdout
    assert "Traceback" not in stderr


def test_a_lesson_writes_its_report(tmp_path, capsys):
    """A lesson has `lesson.*` keys that its control lacks; they label it, they are not parameters that differ."""
    assert main(["lesson", "start_small", *TINY, "--out", str(tmp_path / "out")]) == 0
    differ = (tmp_path / "out" / "report.md").read_text().split("## Parameters that differ from the baseline")[1]
    assert "| departments.marketing.budget |" in differ and "lesson" not in differ


@pytest.mark.parametrize("replicates", ["0", "-1"])
def test_a_lesson_refuses_a_bad_replicates(capsys, replicates):
    assert main(["lesson", "start_small", "--population", "300", "--days", "5", "--replicates", replicates]) == 2
    assert "cxsim: --replicates: key replicates: expected a number >= 1" in capsys.readouterr().err


def test_compare_names_an_empty_scenario_name(capsys):
    assert main(["compare", "", *TINY]) == 2
    assert "cxsim: no bundled scenario named ''" in capsys.readouterr().err
