"""What customers are worth over years: discounted profit, customer equity, and comparisons at horizons."""

import json

import numpy as np
import pytest
from conftest import simulate, small

from cxsim import kernel as K
from cxsim import metrics, report
from cxsim.cli import main
from cxsim.comparison import compare
from cxsim.domain import ACTIVE


def test_discounting_a_year_of_daily_flows():
    flows = np.full(365, 2.0)
    assert metrics.discounted(flows, 0.0) == pytest.approx(730.0)
    assert metrics.discounted(flows, 0.1) == pytest.approx(sum(2.0 * 1.1 ** -(t / 365) for t in range(1, 366)))


def test_npv_profit_is_profit_undiscounted_and_less_when_discounted():
    plain = metrics.run_kpis(simulate(small(overrides=["finance.discount_rate=0.0"])))
    assert plain["npv_profit"] == pytest.approx(plain["profit"], rel=1e-12)
    discounted = metrics.run_kpis(simulate(small()))
    assert discounted["profit"] == plain["profit"] > 0  # the rate changes no decision
    assert plain["profit"] * 1.1 ** -(60 / 365) < discounted["npv_profit"] < plain["profit"]


def test_customer_equity_sums_each_active_customers_lifetime_value():
    """Against the closed form m v r / (1 + d - r), written out here in numpy from the population's arrays."""
    model = simulate(small())
    p, pop, s = model.params, model.population, model.config
    active = pop.state == ACTIVE
    a = (1 - p.memory_weight) * pop.satisfaction.astype(float) + p.memory_weight * 0.5 * (
        pop.peak.astype(float) + pop.last.astype(float)
    )
    r = np.exp(-p.churn_base * np.exp(-p.churn_attitude * a + p.churn_incident * pop.incident.astype(float)))
    cycle = s.journey.billing_cycle_days / 365.0
    margin = model.market_day.price * 12.0 * cycle * s.finance.contribution_margin  # the last day's price
    d = (1.0 + s.finance.discount_rate) ** cycle - 1.0
    expected = np.sum((margin * pop.value.astype(float) * r / (1.0 + d - r))[active])
    assert active.sum() > 100 and metrics.customer_equity(model) == pytest.approx(expected, rel=1e-9)
    half = simulate(small(overrides=["finance.contribution_margin=0.3"]))
    assert metrics.customer_equity(half) == pytest.approx(expected / 2, rel=1e-9)
    dearer = simulate(small(overrides=["finance.discount_rate=0.3"]))
    assert metrics.customer_equity(dearer) < expected


@pytest.fixture(scope="module")
def two_owners():
    siloed = small(days=400, overrides=['ownership.model="siloed"']).model_copy(update={"name": "siloed"})
    cco = small(days=400, overrides=['ownership.model="cco_led"']).model_copy(update={"name": "cco_led"})
    return compare([siloed, cco], replicates=3, progress=False, horizon_years=(1, 3))


def test_horizons_pair_the_replicates_at_each_year_the_runs_reach(two_owners):
    c = two_owners
    assert list(c.horizons) == [1]  # 3 years lie beyond 400 days
    at = c.horizons[1]
    assert set(at) == set(metrics.HORIZON_KPIS)
    values = {}
    for r in c.results:
        by_run = [d.iloc[:365] for _, d in r.days.groupby("replicate", sort=True)]
        values[r.scenario.name] = np.array([d["profit"].sum() for d in by_run])
        assert at["profit"][r.scenario.name]["values"] == pytest.approx(values[r.scenario.name].tolist())
        assert at["active_customers"][r.scenario.name]["values"] == [d["active_customers"].iloc[-1] for d in by_run]
    assert at["profit"]["cco_led"]["diff"] == pytest.approx(np.mean(values["cco_led"] - values["siloed"]))
    assert at["npv_profit"]["cco_led"]["mean"] < at["profit"]["cco_led"]["mean"]


def test_horizons_in_the_json_and_the_report(two_owners):
    c = two_owners
    assert json.loads(json.dumps(c.to_dict(), allow_nan=False))["horizons"]["1"]["profit"]["cco_led"]["diff"]
    text = report.render(c, None)
    assert "## Over the years" in text and "after 1 year (day 365)" in text and "after 3 years" not in text


@pytest.mark.parametrize("value", ["0", "1,x", "", "200", "0.001"])  # 0.001 years: less than a day
def test_bad_horizons_exit_2(value, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["compare", "base", "--days", "5", "--population", "300", "--horizons", value])
    assert exit.value.code == 2
    assert "argument --horizons: expected comma-separated years > 0" in capsys.readouterr().err


def test_an_unbiased_survey_agrees_with_the_truth_over_the_same_window():
    """With full response and no self-selection the survey samples the active customer-days at random: its NPS and
    CSAT agree with the true ones over the run within sampling error."""
    fair = ["customers.survey_rate=0.2", "customers.survey_response_rate=1.0", "customers.survey_self_selection=0"]
    model = simulate(small(population=3000, days=120, overrides=fair))
    kpis = metrics.run_kpis(model)
    n = kpis["nps_survey"], kpis["nps_run"]
    responses = model.history[:, K.TALLY.surveyed].sum()
    se_nps = 100.0 / np.sqrt(responses)  # at most: the rating's share spread is below 1 on each side
    se_csat = 50.0 / np.sqrt(responses)
    assert responses > 10_000
    assert abs(n[0] - n[1]) < 3 * se_nps
    assert abs(kpis["csat_survey"] - kpis["csat_run"]) < 3 * se_csat


def test_yearly_table_means_stocks_and_sums_flows_per_replicate():
    s = small(population=2000, days=400)
    days = compare([s], replicates=2, progress=False).results[0].days
    table = metrics.yearly_table(days)
    assert list(table.index) == [1, 2]
    first = days[days.day < 365]
    assert table.loc[1, "active_customers"] == pytest.approx(first.active_customers.mean())
    assert table.loc[1, "acquisitions"] == pytest.approx(first.acquisitions.sum() / 2)
    churn = 100 * 30 * first.churned.sum() / first.active_customers.sum()
    assert table.loc[1, "monthly_churn"] == pytest.approx(churn)
