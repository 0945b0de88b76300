"""cxsim calibrate: the file's validation, the likelihoods, and a small optimize calibration end to end."""

import json
import math
import textwrap

import numpy as np
import pytest

from cxsim import cli, load_scenario
from cxsim.calibration import calibrate, load_calibration
from cxsim.calibration.targets import TARGETS, Observation, Simulated
from cxsim.kpis import KPIS
from cxsim.model import CXModel
from cxsim.sweep import Cores
from tests.conftest import required_module

required_module("optuna", "make setup installs the calibrate extra")

SMALL = """
scenario = "base"
days = 120
replicates = 2
seed = 3
population = 3000
trials = 16
batch = 4
rerun_top = 3
[parameters]
"customers.complaint_propensity" = { low = 0.05, high = 0.6 }
"""
TRUE_PROPENSITY = 0.35


def write(tmp_path, text: str, name="cal.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def truth():
    """complaints per customer-year of runs at a known complaint propensity, on seeds the calibration never uses."""
    s = load_scenario("base", [f"customers.complaint_propensity={TRUE_PROPENSITY}"], population=3000, days=120)
    from cxsim.calibration.targets import summarize

    values = [
        summarize(CXModel(s, seed=seed).run(), ["complaints_per_customer_year"], [])["scalar"][
            "complaints_per_customer_year"
        ][0]
        for seed in (101, 102)
    ]
    return float(np.mean(values))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, truth):
    """One small optimize calibration through the command line, with --json."""
    folder = tmp_path_factory.mktemp("calibrate")
    path = write(
        folder,
        SMALL
        + f"""
[targets.complaints_per_customer_year]
value = {truth}
kind = "normal"
sigma = {0.06 * truth}
[targets.nps_survey]
value = 30
responses = 400
kind = "survey_nps"
""",
    )
    out = folder / "out"
    return path, out


def test_optimize_recovers_a_parameter_it_can_identify(fitted, capsys):
    path, out = fitted
    assert cli.main(["calibrate", str(path), "--out", str(out), "--json", "--workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    p = summary["parameters"]["customers.complaint_propensity"]
    lo, hi = p["interval"]
    assert lo <= TRUE_PROPENSITY <= hi, p
    assert hi - lo < 0.25, "the interval is narrower than the prior"
    assert lo <= p["estimate"] <= hi
    # the interval joins the trials' range and the information's
    assert lo <= p["interval_trials"][0] and p["interval_trials"][1] <= hi
    assert lo <= p["interval_fisher"][0] and p["interval_fisher"][1] <= hi
    # the JSON contract
    assert set(summary) >= {"parameters", "targets", "calibrated"}
    for t in summary["targets"].values():
        assert set(t) >= {"observed", "simulated", "interval", "verdict"}
        assert t["verdict"] in ("fitted", "within error") or t["verdict"].startswith("out of reach")
    assert summary["targets"]["complaints_per_customer_year"]["verdict"] in ("fitted", "within error")
    assert summary["calibrated"] == str(out / "calibrated.toml")
    names = ("trials.parquet", "best.parquet", "posterior.parquet", "calibrated.toml", "report.md", "report.html")
    for name in names:
        assert (out / name).is_file(), name
    import pandas as pd

    draws = pd.read_parquet(out / "posterior.parquet")  # the approximate posterior the information interval is of
    assert len(draws) == 4000 and draws.weight.sum() == pytest.approx(1.0)
    assert draws["customers.complaint_propensity"].between(0.05, 0.6).all()

    trials = pd.read_parquet(out / "trials.parquet")
    assert "customers.complaint_propensity" in trials and "nll" in trials
    assert (trials.state == "COMPLETE").sum() == 16
    best = pd.read_parquet(out / "best.parquet")
    assert list(best["rank"]) == [1, 2, 3] and best.nll.is_monotonic_increasing


def test_calibrated_scenario_runs_and_reproduces_the_target(fitted, truth, capsys):
    path, out = fitted
    assert cli.main(["run", str(out / "calibrated.toml"), "--population", "3000", "--replicates", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    s = load_scenario(str(out / "calibrated.toml"), population=3000)
    assert s.days == 120
    summary = json.loads((out / "summary.json").read_text())
    assert s.customers.complaint_propensity == pytest.approx(
        summary["parameters"]["customers.complaint_propensity"]["estimate"]
    )
    # complaints per customer-year from the run's KPIs, within 3 sigma of the target
    active_years = result["kpis"]["active_customers"]["mean"] * 120 / 365  # roughly: customers about stable
    rate = result["kpis"]["complaints"]["mean"] / active_years
    assert abs(rate - truth) < 3 * 0.06 * truth + 0.1 * truth


def test_a_folder_with_a_calibration_is_refused_without_resume(fitted, capsys):
    path, out = fitted
    before = sorted(p.name for p in out.iterdir())
    assert cli.main(["calibrate", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "holds a calibration already" in err and "--resume" in err
    assert sorted(p.name for p in out.iterdir()) == before


def test_resume_of_a_finished_calibration_runs_no_trial_again(fitted, capsys):
    path, out = fitted
    assert cli.main(["calibrate", str(path), "--out", str(out), "--resume", "--json", "--workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # only the re-runs of the best 3 on 2 fresh seeds and the information's 2 points (one parameter) on them
    assert summary["runs"] == 3 * 2 + 2 * 2


def test_resume_of_another_file_is_refused(fitted, tmp_path, capsys):
    path, out = fitted
    other = write(tmp_path, path.read_text().replace("replicates = 2", "replicates = 3"))
    assert cli.main(["calibrate", str(other), "--out", str(out), "--resume", "--workers", "1"]) == 2
    assert "another file" in capsys.readouterr().err


def test_a_series_with_holdout_on_a_scenario_file(tmp_path):
    (tmp_path / "churn.csv").write_text("month,value\n1,0.012\n2,0.013\n3,0.012\n")
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "mine.toml").write_text('extends = "base"\n[market]\nswitching_cost = 0.4\n')
    path = write(
        tmp_path,
        SMALL.replace("trials = 16", "trials = 4")
        .replace("rerun_top = 3", "rerun_top = 1")
        .replace('"base"', '"scenarios/mine.toml"')
        + """
[targets.monthly_churn]
series = "churn.csv"
kind = "rate"
holdout_months = 1
""",
    )
    summary = calibrate(load_calibration(path), tmp_path / "out", Cores(workers=1), progress=False)
    t = summary["targets"]["monthly_churn"]
    assert t["months"] == [1, 2, 3] and len(t["simulated"]) == 3 and len(t["interval"]) == 3
    assert t["holdout"]["months"] == [3] and t["holdout"]["rmse"] is not None
    assert 0.0 < t["simulated"][0] < 0.1
    # the scenario file is found beside the calibration file, and calibrated.toml extends it
    calibrated = load_scenario(summary["calibrated"])
    assert calibrated.market.switching_cost == 0.4
    assert calibrated.customers.complaint_propensity == pytest.approx(
        summary["parameters"]["customers.complaint_propensity"]["estimate"]
    )


# --- the file's validation: exit 2, the file, the key and what was expected named, nothing written ---

GOOD_TARGET = """
[targets.monthly_churn]
value = 0.014
kind = "rate"
"""
BAD = {
    "unknown top-level key": (
        SMALL.replace("replicates = 2", "replicate = 2") + GOOD_TARGET,
        ["replicate", "did you mean 'replicates'"],
    ),
    "not a scenario key": (
        SMALL.replace('complaint_propensity"', 'complaint_propensty"') + GOOD_TARGET,
        [
            'parameters."customers.complaint_propensty"',
            "not a scenario key",
            "did you mean 'customers.complaint_propensity'",
        ],
    ),
    "prior outside the schema": (
        SMALL.replace("high = 0.6", "high = 1.5") + GOOD_TARGET,
        ['parameters."customers.complaint_propensity"', "leaves the scenario's range", "<= 1"],
    ),
    "low above high": (SMALL.replace("low = 0.05", "low = 0.7") + GOOD_TARGET, ["complaint_propensity", "low < high"]),
    "a text key": (
        SMALL + '"ownership.model" = { low = 0, high = 1 }\n' + GOOD_TARGET,
        ['parameters."ownership.model"', "numeric"],
    ),
    "unknown target": (
        SMALL + GOOD_TARGET.replace("monthly_churn", "monthly_chrn"),
        ["targets.monthly_chrn", "did you mean 'monthly_churn'"],
    ),
    "a rate above 1": (
        SMALL + GOOD_TARGET.replace("0.014", "1.4"),
        ["targets.monthly_churn.value", "cannot produce 1.4", "[0, 1]"],
    ),
    "NPS above 100": (
        SMALL + '[targets.nps_survey]\nvalue = 120\nresponses = 100\nkind = "survey_nps"\n',
        ["targets.nps_survey.value", "cannot produce 120", "[-100, 100]"],
    ),
    "a negative count": (
        SMALL + '[targets.complaints]\nvalue = -5\nkind = "count"\n',
        ["targets.complaints.value", "cannot produce -5"],
    ),
    "normal without sigma": (
        SMALL + '[targets.csat_survey]\nvalue = 70\nkind = "normal"\n',
        ["targets.csat_survey.sigma", "needs sigma"],
    ),
    "survey_nps without responses": (
        SMALL + '[targets.nps_survey]\nvalue = 10\nkind = "survey_nps"\n',
        ["targets.nps_survey.responses", "needs responses"],
    ),
    "a kind the target cannot take": (
        SMALL + '[targets.monthly_churn]\nvalue = 0.01\nkind = "survey_nps"\nresponses = 5\n',
        ["targets.monthly_churn.kind", "'rate', 'normal'"],
    ),
    "a field of another kind": (
        SMALL + '[targets.monthly_churn]\nvalue = 0.01\nkind = "rate"\nsigma = 0.1\n',
        ["targets.monthly_churn.sigma", "not a field of kind = 'rate'"],
    ),
    "a misspelt target field": (
        SMALL + '[targets.monthly_churn]\nvalue = 0.01\nkind = "rate"\ndenominatr = 5\n',
        ["targets.monthly_churn.denominatr", "unknown key", "did you mean 'denominator'"],
    ),
    "an unknown kind": (
        SMALL + '[targets.monthly_churn]\nvalue = 0.01\nkind = "binomial"\n',
        ["targets.monthly_churn.kind", "expected one of"],
    ),
    "an abc key under optimize": (
        "particles = 10\n" + SMALL + GOOD_TARGET,
        ["key particles", 'only for method = "abc"'],
    ),
    "no targets": (SMALL, ["key targets"]),
    "a series month after the run": (
        SMALL + '[targets.monthly_churn]\nseries = "s.csv"\nkind = "rate"\n',
        ["targets.monthly_churn.series", "month 9", "last whole month, 3"],
    ),
    "a bad scenario": (SMALL.replace('"base"', '"bsae"') + GOOD_TARGET, ["key scenario", "did you mean 'base'"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_exit_2_names_file_key_and_expectation(case, tmp_path, capsys):
    text, expected = BAD[case]
    (tmp_path / "s.csv").write_text("month,value\n1,0.01\n9,0.01\n")
    path = write(tmp_path, text)
    out = tmp_path / "out"
    assert cli.main(["calibrate", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err or case == "a bad scenario", err
    for words in expected:
        assert words in err, (case, err)
    assert "Traceback" not in err
    assert not out.exists(), "nothing written"


def test_too_many_workers_refused_before_anything_is_written(tmp_path, capsys):
    path = write(tmp_path, SMALL + GOOD_TARGET)
    assert cli.main(["calibrate", str(path), "--out", str(tmp_path / "out"), "--workers", "999"]) == 2
    assert "--workers 999" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- the targets and their likelihoods ---


def test_every_per_run_kpi_is_a_target_with_the_named_ones():
    assert set(KPIS) <= set(TARGETS)
    for name in (
        "monthly_churn",
        "nps_survey",
        "csat_survey",
        "complaints_per_customer_year",
        "contacts_per_customer_year",
        "market_share",
    ):
        assert name in TARGETS


def test_likelihoods_are_smallest_at_the_observed_value():
    cases = [
        (Observation(TARGETS["monthly_churn"], "rate", 0.014, denominator=10_000), lambda v: Simulated(v, 5000.0)),
        (Observation(TARGETS["csat_survey"], "rate", 70.0, denominator=800), lambda v: Simulated(v, 100.0)),
        (Observation(TARGETS["complaints"], "count", 500.0, dispersion=20.0), lambda v: Simulated(v)),
        (Observation(TARGETS["complaints"], "count", 500.0), lambda v: Simulated(v)),
        (
            Observation(TARGETS["complaints_per_customer_year"], "count", 0.3, exposure=1e4),
            lambda v: Simulated(v, 50.0),
        ),
        (Observation(TARGETS["market_share"], "normal", 0.4, sigma=0.02), lambda v: Simulated(v)),
    ]
    for obs, sim in cases:
        x = obs.value
        at = obs.nll(sim(x))
        assert at < obs.nll(sim(x * 1.1)) and at < obs.nll(sim(x * 0.9)), obs
    nps = Observation(TARGETS["nps_survey"], "survey_nps", 20.0, responses=1000.0)
    assert nps.nll(Simulated(20.0, None, 0.45, 0.25)) < nps.nll(Simulated(30.0, None, 0.5, 0.2))
    exact = Observation(TARGETS["nps_survey"], "survey_nps", 20.0, responses=1000.0, promoters=0.45)
    assert exact.nll(Simulated(20.0, None, 0.45, 0.25)) < exact.nll(Simulated(20.0, None, 0.55, 0.35))
    # the normal approximation's sd is the multinomial's: 100 sqrt((p + d - (p - d)^2) / n)
    assert nps.nps_sd(0.45, 0.25) == pytest.approx(100 * math.sqrt((0.7 - 0.04) / 1000))
    # a normal target's NLL is the textbook one
    normal = Observation(TARGETS["market_share"], "normal", 0.4, sigma=0.02)
    assert normal.nll(Simulated(0.42)) == pytest.approx(0.5 + math.log(0.02) + 0.5 * math.log(2 * math.pi))


def test_the_documented_file_is_valid(tmp_path):
    """docs/CALIBRATION.md's example file, every key of it, passes validation (with a CSV for its series)."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "CALIBRATION.md").read_text()
    block = doc.split("## The file", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    path = write(tmp_path, block)
    (tmp_path / "csat.csv").write_text("month,value\n" + "".join(f"{m},{70 + m % 3}\n" for m in range(1, 13)))
    with pytest.raises(Exception, match="only for method"):  # it lists the keys of both methods
        load_calibration(path)
    lines = [
        ln for ln in block.splitlines() if ln.split("=")[0].strip() not in ("particles", "generations", "min_epsilon")
    ]
    path.write_text("\n".join(lines))
    cal = load_calibration(path)
    assert {t.name for t in cal.targets} >= {"monthly_churn", "nps_survey", "complaints", "csat_survey"}
    # the base stands for itself (no market.represents): its count target is compared at the sample's scale, said so
    assert cal.scale == 1.0 and any("targets.complaints" in w for w in cal.warnings)


def test_abc_sampler_accepts_the_same_particles_whatever_the_batch(tmp_path):
    """What DeterministicSampler accepts depends on the proposals' order only: batches of 3 and of 8 (as
    different numbers of workers would finish them) give the same posterior."""
    pyabc = required_module("pyabc", "make setup installs the calibrate extra")
    import logging

    from cxsim.calibration.abc import DeterministicSampler

    logging.getLogger("ABC").setLevel(logging.WARNING)

    def posterior(batch: int):
        def evaluate(proposals):  # a toy model, deterministic in its parameter
            return [{"y": p["x"] ** 2 + 0.1 * math.sin(40 * p["x"])} for p in proposals]

        sampler = DeterministicSampler(evaluate, seed=7, batch=batch)
        sampler.observed = {"y": 0.25}
        sampler.show_progress = False
        abc = pyabc.ABCSMC(
            sampler.model,
            pyabc.Distribution(x=pyabc.RV("uniform", 0, 1)),
            pyabc.distance.AdaptivePNormDistance(p=2),
            population_size=10,
            sampler=sampler,
        )
        abc.new(f"sqlite:///{tmp_path / f'b{batch}.db'}", {"y": 0.25})
        history = abc.run(max_nr_populations=3)
        df, w = history.get_distribution()
        return sorted(zip(df["x"].round(12), np.round(w, 12), strict=True))

    assert posterior(3) == posterior(8)


def test_tallied_targets_equal_the_kpis_of_cxsim_run():
    """The targets read off the tallies are the KPIs `cxsim run` reports, at the simulated scale."""
    from cxsim import metrics
    from cxsim.calibration.targets import summarize

    s = load_scenario("base", population=2000, days=90)
    model = CXModel(s, seed=3).run()
    kpis = metrics.run_kpis(model)
    names = [k for k in KPIS if k in TARGETS]
    scalar = summarize(model, names, [])["scalar"]
    for name in names:
        assert scalar[name][0] == pytest.approx(kpis[name], nan_ok=True), name


def test_a_count_without_a_represented_market_is_warned_of(tmp_path):
    path = write(tmp_path, SMALL + '[targets.complaints]\nvalue = 600000\nkind = "count"\n')
    (warning,) = load_calibration(path).warnings
    assert "targets.complaints" in warning and "represents" in warning
    write(tmp_path, 'extends = "base"\n[market]\nrepresents = 2000000\ninitial_customers = 800000\n', "company.toml")
    path.write_text(path.read_text().replace('scenario = "base"', 'scenario = "company.toml"'))
    cal = load_calibration(path)
    assert cal.warnings == [] and cal.scale == pytest.approx(2_000_000 / 3000)


def test_counts_and_money_meet_the_users_figures_at_the_represented_scale():
    """With market.represents, a count target is the sample's count times k, as `cxsim run` reports it."""
    from cxsim import metrics
    from cxsim.calibration.file import TargetData
    from cxsim.calibration.targets import simulated, summarize

    s = load_scenario(
        "base", ["market.represents=2000000", "market.initial_customers=800000"], population=2000, days=60
    )
    model = CXModel(s, seed=3).run()
    names = ("complaints", "npv_profit", "monthly_churn")
    run = summarize(model, list(names), [])
    targets = [TargetData(n, Observation(TARGETS[n], "normal", 1.0, sigma=1.0)) for n in names]
    sims = simulated(targets, s.market.scale, [run])
    kpis = metrics.run_kpis(model)
    assert sims["complaints"].value == pytest.approx(kpis["complaints"])
    assert sims["npv_profit"].value == pytest.approx(kpis["npv_profit"])
    assert TARGETS["monthly_churn"].unit == "share" and 0 < sims["monthly_churn"].value < 0.1


def test_check_validates_a_calibration_file_as_calibrate_would(tmp_path, capsys):
    good = write(tmp_path, SMALL + '[targets.monthly_churn]\nvalue = 0.014\nkind = "rate"\n')
    assert cli.main(["check", str(good)]) == 0
    assert "a calibration, method optimize: 1 parameters, 1 targets" in capsys.readouterr().out
    bad = write(tmp_path, good.read_text().replace("complaint_propensity", "complaint_propensty"), "bad.toml")
    assert cli.main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "did you mean 'customers.complaint_propensity'" in err


def test_the_approximate_posterior_is_the_information_on_the_priors_box():
    from cxsim.calibration.file import Parameter
    from cxsim.calibration.information import Information

    ps = [Parameter("a", 0.0, 10.0, False, False), Parameter("b", 0.001, 0.1, True, False)]
    ps.append(Parameter("c", 0.0, 5.0, False, False))
    # a: standard deviation 0.1 of its prior; b: 0.02, its estimate 0.01 from the lower bound; c: moves no target
    info = Information(np.array([0.5, 0.01, 0.5]), np.diag([100.0, 2500.0, 0.0]), 0)
    d = info.posterior(ps, 4000, seed=3)
    w = d.weight.to_numpy()
    assert w.sum() == pytest.approx(1.0) and 1 / (w**2).sum() > 1000  # the importance weights' effective size

    def mean_sd(x):
        m = float((w * x).sum())
        return m, math.sqrt(float((w * (x - m) ** 2).sum()))

    assert mean_sd(d.a) == pytest.approx((5.0, 1.0), rel=0.05)
    assert d.b.between(0.001, 0.1).all() and d.b.min() < 0.00105  # truncated at the prior's bound
    assert mean_sd(d.c) == pytest.approx((2.5, 5 / math.sqrt(12)), rel=0.05)  # flat: the prior
    assert d.equals(info.posterior(ps, 4000, seed=3)) and not d.equals(info.posterior(ps, 4000, seed=4))

    # a ridge (b moves the one target 50 times less than a): a stays narrow, b spans its prior
    ridge = Information(np.array([0.5, 0.5]), np.outer([50.0, 1.0], [50.0, 1.0]), 0).posterior(ps[:2], 4000, 1)
    w = ridge.weight.to_numpy()
    assert mean_sd(ridge.a)[1] < 0.25  # 2.5 % of its prior: the target's own precision, 1/50
    ub = np.log10(ridge.b / 0.001) / 2
    assert float((w * (ub < 0.1)).sum()) > 0.05 and float((w * (ub > 0.9)).sum()) > 0.05
