"""cxsim calibrate --synthetic: the identifiability check recovers a parameter its target sees and reports one
it cannot see as not identified; its rules (verdict, binomial interval, truths, folders) without runs."""

import json
import textwrap

import pandas as pd
import pytest

from cxsim import cli
from cxsim.calibration import load_calibration, synthetic
from tests.conftest import required_module

required_module("optuna", "make setup installs the calibrate extra")

# complaints per customer-year at 2,000 people over 90 days: its run-to-run standard deviation is about 0.059
# (12 seeds at a propensity of 0.35; each truth's pair of data runs measures it too), and the replicate mean of
# 2 runs adds half as much variance again, so a stated sigma of 0.07 is about what the likelihood needs to
# cover 90 % (0.059 x sqrt(1.5) = 0.072; synthetic.md's table compares them; at 0.04 the check says
# "weakly identified: the intervals cover the truth too rarely", 3 of 6)
FILE = """
scenario = "base"
days = 90
replicates = {replicates}
seed = 7
population = 2000
trials = {trials}
batch = 4
rerun_top = 2
rerun_replicates = 1
[parameters]
"{key}" = {{ low = {low}, high = {high}{log} }}
[targets.complaints_per_customer_year]
value = 0.4
kind = "normal"
sigma = 0.07
"""


def write(folder, key="customers.complaint_propensity", low=0.05, high=0.6, trials=8, replicates=2, log=False):
    path = folder / "cal.toml"
    text = FILE.format(key=key, low=low, high=high, trials=trials, replicates=replicates, log=", log = true" * log)
    path.write_text(textwrap.dedent(text))
    return path


def check(capsys, path, out, truths, *extra):
    argv = ["calibrate", str(path), "--synthetic", "--truths", str(truths), "--out", str(out), "--json"]
    assert cli.main([*argv, "--workers", "1", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_a_parameter_its_target_sees_is_identified_with_coverage(tmp_path, capsys):
    path, out = write(tmp_path), tmp_path / "out"
    summary = check(capsys, path, out, 6)
    p = summary["parameters"]["customers.complaint_propensity"]
    assert summary["fitted"] == 6 and not summary["failed"]
    assert p["verdict"] == "identified" and p["intervals"] == "consistent with 90 %", p
    assert p["fits"] == 6 and p["coverage"] == p["covered"] / 6
    lo, hi = p["coverage_interval"]
    assert lo <= 0.9 <= hi and p["width_prior"] <= 0.4 and p["correlation"] > 0.9, p
    for f in summary["fits"]:  # coverage is what the intervals say, truth by truth
        est = f["parameters"]["customers.complaint_propensity"]
        a, b = est["interval"]
        assert est["covered"] == (a <= f["values"]["customers.complaint_propensity"] <= b)
        assert f["seed"] == 7 + 2000 * (f["truth"] - 1) and min(f["data_seeds"]) >= 7 + 10**9
    table = pd.read_parquet(out / "synthetic.parquet")
    assert len(table) == 6 and {"truth", "parameter", "value", "estimate", "low", "high", "covered"} <= set(table)
    assert "observed.complaints_per_customer_year" in table
    assert "identified" in (out / "synthetic.md").read_text() and (out / "synthetic.png").is_file()
    noise = summary["targets"]["complaints_per_customer_year"]
    assert noise["stated_error"] == pytest.approx(0.07) and noise["sample_noise"] > 0
    # --resume with more truths: the six are kept, only the seventh runs
    more = check(capsys, path, out, 7, "--resume")
    assert more["fitted"] == 7 and more["fits"][:6] == summary["fits"]
    assert (
        more["runs"] - summary["runs"] == more["fits"][6]["runs"] == 2 + 8 * 2 + 2 + 2
    )  # data, trials, re-runs, information
    # a normal calibration is refused in the synthetic check's folder, and so is reading it as a posterior
    assert cli.main(["calibrate", str(path), "--out", str(out), "--workers", "1"]) == 2
    assert "holds a synthetic check" in capsys.readouterr().err
    from cxsim.calibration.posterior import read_posterior
    from cxsim.scenario import ScenarioError

    with pytest.raises(ScenarioError, match="synthetic check"):
        read_posterior(out)


@pytest.mark.slow
def test_a_parameter_the_targets_cannot_see_is_not_identified(tmp_path, capsys):
    # billing's lag_days, how fast its budget takes effect: the base keeps billing's budget at its reference, so
    # over 90 days it moves complaints (and churn, NPS, contacts, share) by under 0.03 standard deviations of
    # the run-to-run noise across its prior (measured with common random numbers, docs/CALIBRATION.md)
    path = write(tmp_path, key="departments.billing.lag_days", low=10.0, high=120.0, trials=6, replicates=1)
    summary = check(capsys, path, tmp_path / "out", 3)
    p = summary["parameters"]["departments.billing.lag_days"]
    assert p["verdict"] == "not identified", p
    assert p["width_prior"] >= 0.7 and "coverage" in p and p["fits"] == 3


def test_the_verdict_rules():
    v = synthetic.verdict
    assert v(0.9, 0.1, 9, 10, (0.55, 1.0))[0] == "not identified"  # the interval is the prior
    assert v(0.3, 0.3, 9, 10, (0.55, 1.0))[0] == "not identified"  # the estimates do not follow the truth
    assert v(0.2, 0.05, 9, 10, (0.55, 1.0))[0] == "identified"
    word, why = v(0.2, 0.05, 5, 10, synthetic.clopper_pearson(5, 10))  # narrow, but it covers too rarely
    assert word == "weakly identified" and "too rarely" in why
    assert v(0.55, 0.1, 9, 10, (0.55, 1.0))[0] == "weakly identified"
    assert "cannot test" in v(0.2, 0.05, 3, 3, synthetic.clopper_pearson(3, 3))[1]


def test_clopper_pearson_is_the_exact_interval():
    assert synthetic.clopper_pearson(0, 10)[0] == 0.0 and synthetic.clopper_pearson(10, 10)[1] == 1.0
    lo, hi = synthetic.clopper_pearson(9, 10)
    assert lo == pytest.approx(0.5550, abs=1e-4) and hi == pytest.approx(0.9975, abs=1e-4)


def test_truths_come_from_the_priors_and_more_truths_extend_them(tmp_path):
    cal = load_calibration(write(tmp_path, key="customers.base_monthly_churn", low=0.003, high=0.03, log=True))
    few, many = synthetic.draw_truths(cal, 3), synthetic.draw_truths(cal, 200)
    assert many[:3] == few
    x = [t["customers.base_monthly_churn"] for t in many]
    assert min(x) >= 0.003 and max(x) <= 0.03
    below = sum(v < 0.003 * 10**0.5 for v in x)  # log-uniform: half the draws below the geometric middle
    assert 70 < below < 130


def test_a_calibration_folder_is_not_a_synthetic_check(tmp_path, capsys):
    path = write(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "setup.json").write_text(json.dumps({"file": str(path), "identity": "x"}))
    assert cli.main(["calibrate", str(path), "--synthetic", "--out", str(out), "--workers", "1"]) == 2
    assert "holds a calibration" in capsys.readouterr().err
    assert cli.main(["calibrate", str(path), "--truths", "3", "--workers", "1"]) == 2
    assert "only with --synthetic" in capsys.readouterr().err
    assert cli.main(["calibrate", str(path), "--synthetic", "--truths", "0", "--out", str(tmp_path / "n")]) == 2
    assert "--truths" in capsys.readouterr().err and not (tmp_path / "n").exists()
    assert cli.main(["calibrate", str(path), "--synthetic", "--resume", "--out", str(tmp_path / "m")]) == 2
    assert "no synthetic check to resume" in capsys.readouterr().err and not (tmp_path / "m").exists()
