"""`cxsim compare` and lessons: common random numbers, paired intervals, the report, and each lesson's claim."""

import json

import numpy as np
import pandas as pd
import pytest

from cxsim import lessons, load_scenario
from cxsim.cli import _varied, main, parser
from cxsim.comparison import compare
from cxsim.stats import shown, verdict

SMALL = dict(population=2000, days=120)
HEADLINE = ["active_customers", "churned", "retention", "csat", "nps", "complaints", "revenue", "profit"]


@pytest.fixture(scope="module")
def pair():
    base = load_scenario("base", **SMALL)
    promise = load_scenario("base", ["ownership.promise_markup=0.1", 'name="markup"'], seed=7, **SMALL)
    return compare([base, promise], replicates=5, progress=False)


def test_every_scenario_runs_with_the_baselines_seeds(pair):
    assert pair.results[1].runs.seed.tolist() == pair.baseline.runs.seed.tolist() == [42, 43, 44, 45, 46]


def test_paired_intervals_are_narrower_than_unpaired(pair):
    for kpi in HEADLINE:
        s = pair.kpis[kpi]["markup"]
        paired, unpaired = np.diff(s["diff_ci95"])[0], np.diff(s["diff_ci95_unpaired"])[0]
        assert paired < unpaired, kpi
        diffs = pair.results[1].runs[kpi] - pair.baseline.runs[kpi]
        assert s["diff"] == pytest.approx(diffs.mean())


def test_a_scenario_against_itself_differs_by_nothing():
    base = load_scenario("base", **SMALL)
    c = compare([base, base.model_copy(update={"name": "again"})], replicates=2, progress=False)
    for kpi, row in c.kpis.items():
        assert row["again"]["diff"] in (0.0, None) or np.isnan(row["again"]["diff"]), kpi
        assert row["again"]["verdict"] in ("noise", "n/a")
    assert c.parameter_differences() == {"again": {}}


def test_compare_json_and_report(tmp_path, capsys):
    out = tmp_path / "report"
    args = ["compare", "siloed", "cco_led", "--population", "800", "--days", "40", "--replicates", "2"]
    assert main([*args, "--json", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["baseline"] == "siloed" and result["scenarios"] == ["siloed", "cco_led"]
    assert result["replicates"] == 2 and result["population"] == 800
    retention = result["kpis"]["retention"]
    assert "diff" not in retention["siloed"]
    assert {"mean", "ci95", "diff", "diff_ci95", "verdict"} <= set(retention["cco_led"])
    assert result["parameter_differences"]["cco_led"]["ownership.objective"] == ["own_kpi", "journey"]
    assert set(result["departments"]["cco_led"]) >= {"marketing", "service", "none"}
    files = {p.name for p in out.iterdir()}
    assert {
        "report.md",
        "report.html",
        "comparison.json",
        "runs.parquet",
        "days.parquet",
        "departments.parquet",
        "effects.png",
        "trajectories.png",
        "churn_by_department.png",
        "budgets.png",
    } <= files
    assert not [f for f in files if f.startswith(".")]  # no temp files left behind
    report = (out / "report.md").read_text()
    assert "## Parameters that differ from the baseline" in report and "ownership.objective" in report
    assert "<table>" in (out / "report.html").read_text()
    assert set(pd.read_parquet(out / "runs.parquet").scenario) == {"siloed", "cco_led"}
    for png in ("effects.png", "trajectories.png", "churn_by_department.png", "budgets.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_prints_a_table_per_kpi_and_the_clear_differences(capsys):
    assert (
        main(
            [
                "compare",
                "base",
                "--vary",
                "ownership.model=siloed,cco_led,cmo_led",
                "--population",
                "800",
                "--days",
                "40",
                "--replicates",
                "2",
                "--kpis",
                "retention,csat",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "baseline siloed" in text
    assert text.count("\nretention:") == 1 and text.count("\ncsat:") == 1 and "\nnps:" not in text
    for label in ("siloed", "cco_led", "cmo_led"):
        assert f"\n{label} " in text
    assert "in short (95% paired intervals):" in text and "cco_led vs siloed: " in text


def test_set_applies_to_every_compared_scenario(capsys):
    assert (
        main(
            [
                "compare",
                "siloed",
                "cco_led",
                "--set",
                "market.price_per_month=80",
                "--population",
                "600",
                "--days",
                "20",
                "--replicates",
                "1",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert "market.price_per_month" not in result["parameter_differences"]["cco_led"]


@pytest.mark.parametrize(
    "ci, side, clear",
    [
        ([0.1, 2.0], "higher", "clear"),
        ([-2.0, -0.1], "lower", "clear"),
        ([0.5, 0.5], "higher", "clear"),
        ([-1.0, 1.0], None, "noise"),
        ([0.0, 1.0], None, "noise"),
        ([-1.0, 0.0], None, "noise"),
        ([None, None], None, "n/a"),
    ],
)
def test_an_effect_is_shown_when_its_paired_interval_excludes_zero_on_its_side(ci, side, clear):
    assert [d for d in ("higher", "lower") if shown(ci, d)] == ([side] if side else [])
    assert verdict(ci) == clear


def test_vary_says_what_was_varied():
    args = parser().parse_args(["compare", "base", "siloed", "--vary", "ownership.model = cmo_led, sales_led"])
    scenarios, _ = _varied(args)
    base, siloed = load_scenario("base"), load_scenario("siloed")
    assert [s.name for s in scenarios] == ["base/cmo_led", "base/sales_led", "siloed/cmo_led", "siloed/sales_led"]
    assert scenarios[0].description == f"{base.description} — with ownership.model = cmo_led"
    assert scenarios[3].description == f"{siloed.description} — with ownership.model = sales_led"


@pytest.mark.parametrize(
    "args, message",
    [
        (["base", "base"], "scenario names must differ"),
        (["base", "--vary", "ownership.model"], "expected KEY=VALUE1,VALUE2"),
        (["base", "--vary", "ownership.model=cco_led,nobody"], "nobody"),
        (["base", "--out", "README.md"], "expected a directory"),
    ],
)
def test_compare_bad_input_exits_2_with_a_clear_message(args, message, capsys, tmp_path):
    assert main(["compare", *args, "--population", "500", "--days", "5", "--replicates", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_lesson_files_are_complete():
    found = lessons.available()
    assert {
        "broken_promise",
        "billing_ripple",
        "silos_and_ai_agent",
        "budget_cut_spiral",
        "start_small",
        "cx_leader_above_silos",
        "customer_owns_experience",
    } <= set(found)
    for path in found.values():
        lesson, control = lessons.load(path)
        assert lesson.description and lesson.lesson.expect and lesson.name != control.name
        assert lesson.lesson.notice and lesson.lesson.try_this  # the page's guide beside the run


@pytest.mark.parametrize("name", sorted(lessons.available()))
def test_each_lesson_shows_the_effect_it_claims(name):
    _, outcomes = lessons.run(lessons.available()[name], replicates=4, progress=False, population=10_000)
    missing = [(o.kpi, o.expected, o.diff, o.ci95) for o in outcomes if not o.shown]
    assert not missing, f"{name}: claimed effects not shown against the control: {missing}"
