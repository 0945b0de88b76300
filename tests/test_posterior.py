"""`cxsim compare --posterior DIR`: parameter draws from a calibration's posterior, the same for every scenario of a
replicate, and the split of each paired interval's variance into parameter uncertainty and the simulation's noise."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from cxsim import cli, load_scenario
from cxsim.calibration.posterior import posterior_draws, read_posterior
from cxsim.comparison import Arm, compare
from cxsim.scenario import ScenarioError
from cxsim.stats import variance_split

KEY = "customers.complaint_propensity"
SMALL = dict(population=1000, days=60)


def calibration(folder, values, weights, estimate, method="abc", key=KEY):
    """A calibration folder laid out as `cxsim calibrate` writes it (setup.json, summary.json, calibrated.toml and
    posterior.parquet), with the posterior's particles given."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "setup.json").write_text(json.dumps({"file": "cal.toml", "method": method, "identity": "{}"}))
    p = {"estimate": estimate, "interval": [min(values), max(values)], "prior": [0.05, 0.6], "log": False}
    (folder / "summary.json").write_text(
        json.dumps({"method": method, "parameters": {key: p | {"at_prior_bound": False}}})
    )
    w = np.asarray(weights, float)
    pd.DataFrame({key: values, "weight": w / w.sum(), "generation": 2}).to_parquet(folder / "posterior.parquet")
    table, leaf = key.rsplit(".", 1)
    (folder / "calibrated.toml").write_text(
        f'name = "calibrated"\nextends = "base"\ndays = {SMALL["days"]}\n[{table}]\n{leaf} = {estimate!r}\n'
    )
    return folder


def arms(folder, population=SMALL["population"], days=None):
    """The calibrated base against the same with billing failing often (more failures: more complaints, the more
    so the more complaint-prone the customers are)."""
    toml = folder / "calibrated.toml"
    return [
        Arm(toml, population=population, days=days, name="base"),
        Arm(toml, ("departments.billing.failure_rate=0.05",), population=population, days=days, name="billing"),
    ]


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A wide posterior of the complaint propensity, which moves the complaints the billing failures cause."""
    folder = calibration(tmp_path_factory.mktemp("wide"), list(np.linspace(0.05, 0.6, 8)), [1] * 8, 0.3)
    return folder, compare(arms(folder, 1500, 90), posterior=folder, draws=8, progress=False)


def test_every_scenario_of_a_replicate_runs_the_same_draw_on_the_same_seed(wide):
    folder, c = wide
    base, billing = (r.runs for r in c.results)
    assert base.seed.tolist() == billing.seed.tolist() == list(range(42, 50))
    assert base.point.tolist() == billing.point.tolist() == [d["point"] for d in c.posterior["drawn"]]
    assert base[KEY].tolist() == billing[KEY].tolist() == [d[KEY] for d in c.posterior["drawn"]]
    assert base[KEY].nunique() > 1  # the draws differ between replicates
    for r in c.central:  # and the centre runs the estimate on the same seeds
        assert r.runs[KEY].tolist() == [0.3] * 8 and r.runs.seed.tolist() == base.seed.tolist()
    drawn = posterior_draws(folder, 8, 42)
    assert drawn[KEY].tolist() == base[KEY].tolist()


def test_the_split_sums_to_the_total_and_a_wide_strong_parameter_takes_a_clear_share(wide):
    _, c = wide
    for kpi, row in c.kpis.items():
        v = row["billing"]["variance"]
        if v["total"] is None:
            continue
        assert v["parameters"] + v["noise"] == pytest.approx(v["total"]), kpi
        assert v["parameters"] >= 0 and v["noise"] >= 0, kpi
        assert v["total"] == pytest.approx(np.var(np.subtract(*[r.runs[kpi] for r in c.results[::-1]]), ddof=1))
    complaints = c.kpis["complaints"]["billing"]
    assert complaints["variance"]["parameter_share"] > 0.5, complaints["variance"]
    width = np.diff(complaints["diff_ci95"])[0]
    assert width > 1.5 * np.diff(complaints["diff_ci95_at_centre"])[0]  # parameter uncertainty widens it
    for years in c.horizons.values():
        assert "variance" in years["csat"]["billing"]


def test_a_single_point_posterior_leaves_no_share_to_the_parameters(tmp_path):
    values = [0.1, 0.3, 0.5]
    folder = calibration(tmp_path / "point", values, [0, 1, 0], 0.3)
    c = compare(arms(folder), posterior=folder, draws=4, progress=False)
    assert {d["point"] for d in c.posterior["drawn"]} == {1}
    shares = [row["billing"]["variance"]["parameter_share"] for row in c.kpis.values()]
    assert all(s in (0.0, None) for s in shares) and shares.count(0.0) > 5
    assert c.kpis["complaints"]["billing"]["diff_ci95"] == c.kpis["complaints"]["billing"]["diff_ci95_at_centre"]


def test_draws_are_a_pure_function_of_the_posterior_the_count_and_the_seed(tmp_path):
    folder = calibration(tmp_path / "c", [0.1, 0.2, 0.4, 0.5], [0.6, 0.0, 0.3, 0.1], 0.2)
    a, b = posterior_draws(folder, 12, 7), posterior_draws(read_posterior(folder), 12, 7)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(posterior_draws(folder, 13, 7).head(12), a)  # more draws extend the fewer
    assert not posterior_draws(folder, 12, 8)["point"].equals(a["point"])
    many = posterior_draws(folder, 4000, 1)["point"].value_counts(normalize=True)
    assert 1 not in many.index  # a point of weight 0 is never drawn
    assert many[0] == pytest.approx(0.6, abs=0.03) and many[2] == pytest.approx(0.3, abs=0.03)


def test_the_same_runs_whatever_the_order_of_the_scenarios_and_the_threads(tmp_path):
    folder = calibration(tmp_path / "c", [0.1, 0.3, 0.5], [1, 1, 1], 0.3)
    one = compare(arms(folder), posterior=folder, draws=2, progress=False, threads=1)
    other = compare(arms(folder)[::-1], posterior=folder, draws=2, progress=False, threads=2)
    pd.testing.assert_frame_equal(one.results[0].runs, other.results[1].runs)
    pd.testing.assert_frame_equal(one.results[1].runs, other.results[0].runs)


def test_a_scenario_that_sets_a_calibrated_key_itself_keeps_its_value_and_says_so(tmp_path):
    folder = calibration(tmp_path / "c", [0.1, 0.3, 0.5], [1, 1, 1], 0.3)
    toml = folder / "calibrated.toml"
    own = Arm(toml, (f"{KEY}=0.2",), population=SMALL["population"], name="own")
    c = compare([arms(folder)[0], own], posterior=folder, draws=3, progress=False)
    assert c.results[1].runs[KEY].tolist() == [0.2] * 3
    assert c.results[0].runs[KEY].nunique() > 1
    assert c.posterior["held"] == {"base": {}, "own": {KEY: "--set"}}
    assert any(f"own sets {KEY} itself (--set)" in n for n in c.posterior["notes"])
    # siloed extends base, the calibration's scenario; a scenario that does not is named
    siloed = Arm("siloed", population=SMALL["population"], days=SMALL["days"])
    c = compare([arms(folder)[0], siloed], posterior=folder, draws=2, progress=False)
    assert not any("does not extend" in n for n in c.posterior["notes"])
    (tmp_path / "world.toml").write_text('extends = "base"\nname = "world"\n[market]\nprice_per_month = 40.0\n')
    text = (folder / "calibrated.toml").read_text().replace('extends = "base"', 'extends = "../world.toml"')
    (folder / "calibrated.toml").write_text(text)
    c = compare(
        [Arm(toml, population=800, days=20), siloed.__class__("siloed", population=800, days=20)],
        posterior=folder,
        draws=2,
        progress=False,
    )
    assert any(n.startswith("siloed does not extend the calibration's scenario") for n in c.posterior["notes"])


def test_optimize_draws_its_approximate_posterior_as_abc_draws_its_particles(tmp_path):
    folder = calibration(tmp_path / "opt", [0.30, 0.28, 0.35], [1, 1, 1], 0.3, method="optimize")
    post = read_posterior(folder)
    assert post.method == "optimize" and post.points["point"].tolist() == [0, 1, 2]
    assert post.weights == pytest.approx([1 / 3] * 3)
    assert "approximate posterior" in post.notes[0] and "linearised" in post.notes[0]


def test_variance_split_sums_and_says_when_it_cannot():
    split = variance_split([1.0, 3.0, 2.0, 6.0], [1.0, 2.0, 1.5, 2.5])
    assert split["parameters"] + split["noise"] == pytest.approx(split["total"])
    assert split["parameter_share"] == pytest.approx(
        1 - np.var([1, 2, 1.5, 2.5], ddof=1) / np.var([1, 3, 2, 6], ddof=1)
    )
    # noise above the total (a sampling accident): capped, the parameters' part is zero
    assert variance_split([1.0, 1.1], [0.0, 5.0])["parameter_share"] == 0.0
    assert variance_split([2.0, 2.0], [2.0, 2.0])["parameter_share"] is None
    assert variance_split([1.0, math.nan, 2.0], [1.0, 1.0, math.nan])["total"] is None


def test_loaded_scenarios_are_refused_with_a_posterior(tmp_path):
    folder = calibration(tmp_path / "c", [0.1, 0.3], [1, 1], 0.3)
    with pytest.raises(ScenarioError, match="files or bundled names"):
        compare([load_scenario("base"), load_scenario("siloed")], posterior=folder, draws=2)


def _broken(tmp_path, what: str):
    folder = calibration(tmp_path / "c", [0.1, 0.3, 0.5], [1, 1, 1], 0.3)
    if what == "no setup":
        (folder / "setup.json").unlink()
    elif what == "unfinished":
        (folder / "summary.json").unlink()
    elif what == "no posterior":
        (folder / "posterior.parquet").unlink()
    elif what == "stale key":
        summary = json.loads((folder / "summary.json").read_text())
        summary["parameters"] = {"customers.complaint_propensty": summary["parameters"][KEY]}
        (folder / "summary.json").write_text(json.dumps(summary))
    elif what == "missing column":
        pd.read_parquet(folder / "posterior.parquet").drop(columns="weight").to_parquet(folder / "posterior.parquet")
    elif what == "out of range":
        table = pd.read_parquet(folder / "posterior.parquet")
        table.loc[1, KEY] = 1.5
        table.to_parquet(folder / "posterior.parquet")
    return folder


@pytest.mark.parametrize(
    "what, draws, message",
    [
        ("no folder", 3, "no such folder"),
        ("no setup", 3, "not a calibration (no setup.json)"),
        ("unfinished", 3, "the calibration has not finished (no summary.json)"),
        ("no posterior", 3, "posterior.parquet: missing"),
        ("stale key", 3, "not a scenario key of this cxsim (did you mean 'customers.complaint_propensity'?)"),
        ("missing column", 3, "posterior.parquet: column weight: missing"),
        ("out of range", 3, f"key {KEY}: expected a number <= 1.0, got 1.5"),
        ("fine", 1, "--draws: expected a whole number >= 2"),
    ],
)
def test_bad_posterior_input_exits_2_naming_file_and_key_and_writes_nothing(tmp_path, capsys, what, draws, message):
    folder = tmp_path / "nothing" if what == "no folder" else _broken(tmp_path, what)
    out = tmp_path / "out"
    args = ["compare", "base", "siloed", "--posterior", str(folder)]
    code = cli.main([*args, "--draws", str(draws), "--population", "500", "--days", "5", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not out.exists()


def test_compare_posterior_on_the_command_line_reports_the_split(tmp_path, capsys):
    folder = calibration(tmp_path / "c", list(np.linspace(0.05, 0.6, 5)), [1] * 5, 0.3)
    out = tmp_path / "out"
    args = ["compare", str(folder / "calibrated.toml"), "--vary", "ownership.model=siloed,cco_led"]
    args += ["--posterior", str(folder), "--replicates", "3", "--population", "800", "--days", "40", "--out", str(out)]
    assert cli.main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["replicates"] == 3 and result["posterior"]["draws"] == 3
    assert set(result["kpis"]["complaints"]["cco_led"]["variance"]) >= {
        "total",
        "parameters",
        "noise",
        "parameter_share",
    }
    assert (out / "central_runs.parquet").is_file()
    report = (out / "report.md").read_text()
    assert "## Parameter uncertainty" in report and "from parameters" in report
    assert cli.main([*args, "--kpis", "complaints"]) == 0
    text = capsys.readouterr().out
    assert "95% CI of diff at the centre" in text and re.search(r"cco_led .* \d+ %\n", text), text
    with pytest.raises(SystemExit):
        cli.main(["compare", "base", "--draws", "x"])
    assert cli.main(["compare", "base", "--draws", "3", "--population", "500", "--days", "5"]) == 2
    assert "only with --posterior" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("method", ["optimize", "abc"])
def test_a_real_calibration_carries_into_a_comparison(tmp_path, capsys, method):
    """The folder as `cxsim calibrate` writes it (not a hand-made one), at the smallest scale."""
    from tests.conftest import required_module

    required_module("optuna" if method == "optimize" else "pyabc", "make setup installs the calibrate extra")
    head = (
        'method = "optimize"\ntrials = 8\nbatch = 4\nrerun_top = 2\n'
        if method == "optimize"
        else ('method = "abc"\nparticles = 6\ngenerations = 1\n')
    )
    (tmp_path / "cal.toml").write_text(
        head
        + 'scenario = "base"\ndays = 40\nreplicates = 1\nseed = 2\npopulation = 800\n[parameters]\n'
        + f'"{KEY}" = {{ low = 0.05, high = 0.6 }}\n'
        + '[targets.complaints_per_customer_year]\nvalue = 0.6\nkind = "normal"\nsigma = 0.06\n'
    )
    out = tmp_path / "cal"
    assert cli.main(["calibrate", str(tmp_path / "cal.toml"), "--out", str(out), "--workers", "1", "--json"]) == 0
    capsys.readouterr()
    post = read_posterior(out)
    assert post.method == method and post.keys == [KEY] and post.distinct >= 1
    args = ["compare", str(out / "calibrated.toml"), "--vary", "ownership.model=siloed,cco_led", "--population", "800"]
    assert cli.main([*args, "--posterior", str(out), "--draws", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["posterior"]["method"] == method and len(result["posterior"]["drawn"]) == 3
    assert result["posterior"]["held"] == {"siloed": {}, "cco_led": {}}
    assert result["kpis"]["complaints"]["cco_led"]["variance"]["total"] is not None


def test_a_whole_number_key_is_drawn_and_set_as_a_whole_number(tmp_path):
    key = "ownership.review_every_days"
    folder = calibration(tmp_path / "c", [30, 60, 90], [1, 1, 1], 60, key=key)
    c = compare(arms(folder, 800, 20), posterior=folder, draws=3, progress=False)
    assert all(isinstance(d[key], int) for d in c.posterior["drawn"])
    assert set(c.results[1].runs[key]) <= {30, 60, 90} and c.central[0].runs[key].tolist() == [60] * 3
