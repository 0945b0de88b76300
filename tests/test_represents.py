"""A simulated market is a sample of the real one (`market.represents`): the scenario speaks for the company, counts
and money are reported for it, rates are the sample's, and the contact centre's queue is the represented market's."""

import json
import math

import numpy as np
import pytest
from scipy.special import stdtrit

from cxsim import kernel as K
from cxsim import load_scenario, metrics, run
from cxsim.cli import main
from cxsim.kpis import COLUMNS, DEFINITIONS, IDENTIFIERS, KPIS, SCALED, kind
from cxsim.model import CXModel
from cxsim.scenario import ScenarioError, sample_of
from cxsim.schema import DEPARTMENT_DEFAULTS

MILLION = 1_000_000
# the base organisation in a market of a million people: 40 % of them its customers, ten times the base's budgets
COMPANY = [f"market.represents={MILLION}", "market.initial_customers=400000"] + [
    f"departments.{name}.{key}={10 * d[key]}"
    for name, d in DEPARTMENT_DEFAULTS.items()
    for key in ("budget", "reference_budget")
]


def company(population, overrides=(), **options):
    return load_scenario("base", [*COMPANY, *overrides], population=population, **options)


def test_the_file_speaks_for_the_company_and_the_sample_divides_by_k():
    s = company(4000)
    assert (s.market.population, s.market.represents, s.market.scale) == (4000, MILLION, 250.0)
    # --population changes only the sample: the company's customers and budgets stay as the file has them
    assert s.market.initial_customers == 400_000 and s.departments.service.budget == 17e6
    sample = sample_of(s)
    assert sample.market.initial_customers == 1600 and sample.market.represents == MILLION
    assert sample.departments.service.budget == 17e6 / 250 and sample.departments.service.reference_budget == 17e6 / 250
    assert sample_of(sample) is sample and sample.is_sample and not s.is_sample  # a sample is not sampled again
    assert sample_of(company(16000)).market.initial_customers == 6400
    # the rest of the scenario is the company's as it is
    assert sample.model_dump(exclude={"market", "departments"}) == s.model_dump(exclude={"market", "departments"})
    # without represents, --population scales initial customers and budgets as it always has
    plain = load_scenario("base", population=4000)
    assert plain.market.initial_customers == 1600 and plain.departments.service.budget == pytest.approx(1.7e6 / 25)
    assert sample_of(plain) is plain


def test_a_market_that_stands_for_itself_dumps_as_before_and_a_represented_one_round_trips():
    assert "represents" not in load_scenario("base").model_dump()["market"]  # sweep run ids hash the dump
    s = company(4000)
    again = type(s).model_validate_json(s.model_dump_json())
    assert again == s and again.market.represents == MILLION and not again.is_sample


def test_a_sample_larger_than_its_market_or_customers_beyond_it_are_refused():
    with pytest.raises(ScenarioError, match=r"key market\.represents: expected at least market\.population"):
        company(2 * MILLION)
    with pytest.raises(ScenarioError, match=r"initial_customers \(2,000,000\) must not exceed represents"):
        company(4000, ["market.initial_customers=2000000"])
    # with represents, the company's customers may outnumber the simulated people
    assert company(4000, ["market.initial_customers=900000"]).market.initial_customers == 900_000


def test_counts_and_money_are_the_markets_and_rates_the_samples():
    s = company(3000, days=40)
    m = CXModel(s).run()
    k = s.market.scale
    h, last = m.history[: m.day], m.history[m.day - 1]
    kpis = metrics.run_kpis(m)
    assert kpis["active_customers"] == k * last[K.TALLY.active]
    assert kpis["complaints"] == pytest.approx(k * h[:, K.TALLY.complaints].sum())
    assert kpis["revenue"] == pytest.approx(k * m.ledger[: m.day, 0].sum())
    assert kpis["market_share"] == last[K.TALLY.active] / 3000  # the sample's share is the market's
    assert kpis["csat"] == pytest.approx(100 * last[K.TALLY.satisfied] / last[K.TALLY.active])
    days = metrics.daily_table(m)
    assert (days.contacts == k * h[:, K.TALLY.contacts]).all() and (days.pool == k * m.ledger[: m.day, 2]).all()
    assert (days.wait_hours == m.ledger[: m.day, 4]).all()
    depts = metrics.department_table(m).set_index("department")
    assert depts.loc["billing", "budget"] == pytest.approx(k * m.departments[5].budget)
    assert m.departments[5].config.budget == 8e6 / k  # the model runs the sample's budgets


def test_every_kpi_and_table_column_declares_its_kind():
    assert set(KPIS) == set(DEFINITIONS) and all(d.kind in (*SCALED, "rate") for d in DEFINITIONS.values())
    assert set(COLUMNS.values()) <= {*SCALED, "rate"} and not set(COLUMNS) & set(DEFINITIONS)
    m = CXModel(load_scenario("base", population=300, days=3)).run()
    for table in (metrics.daily_table(m), metrics.department_table(m)):
        for column in table.columns:
            assert column in IDENTIFIERS or kind(column), column


def test_without_represents_the_model_is_as_on_main():
    """Main's output at commit 10a1834 (before `market.represents`), one replicate of the base at 3,000 people."""
    r = run(load_scenario("base", population=3000, days=150), replicates=1, progress=False).runs.iloc[0]
    assert r.profit == 141762.62653460487 and r.active_customers == 1218.0
    assert r.npv_profit == 138983.28666271275 and r.mean_service_wait_hours == 0.03133437345536415
    # a sample that stands for itself (represents = population) is the same model, bit for bit
    s = load_scenario("base", population=3000, days=60)
    represented = s.model_copy(update={"market": s.market.model_copy(update={"represents": 3000})})
    itself, plain = (run(x, 1, progress=False) for x in (represented, s))
    assert itself.runs.drop(columns="scenario").equals(plain.runs.drop(columns="scenario"))
    assert itself.days.equals(plain.days) and itself.departments.equals(plain.departments)


# a broadband provider: 2 million subscribers among 6 million households, some 4.5 million contacts a year
BROADBAND = ["market.population=6000000", "market.initial_customers=2000000", "journey.support_per_day=0.0048"]


def test_the_contact_centre_is_staffed_for_the_represented_market():
    def centre(overrides):
        m = CXModel(load_scenario("base", BROADBAND + overrides, population=30_000, days=60)).run()
        contacts = m.history[: m.day, K.TALLY.contacts]
        return m.service.staff, float(np.sum(m.ledger[: m.day, 5] * contacts) / contacts.sum())

    # --population alone: the sample's 10,000 customers get a centre of their own, one agent, and a third abandon
    staff, abandonment = centre([])
    assert staff == 1 and abandonment > 0.2
    # standing for the 6 million: the market's 2 million subscribers have a centre of hundreds of agents
    staff, abandonment = centre(["market.represents=6000000"])
    assert staff > 100 and abandonment < 0.01


def _welch_agree(a, b, tests: int) -> tuple[bool, str]:
    """Whether two samples' means agree: |difference| within the Welch t quantile (two-sided 1 %, Bonferroni over
    `tests`) times the standard error of the difference, from the replicates' spread."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    tolerance = stdtrit(dof, 1 - 0.01 / 2 / tests) * math.sqrt(va + vb)
    diff = b.mean() - a.mean()
    return abs(diff) <= tolerance, f"{a.mean():.5g} vs {b.mean():.5g}: difference {diff:.3g}, tolerance {tolerance:.3g}"


@pytest.mark.slow
def test_two_sample_sizes_of_one_market_agree_within_sampling_error():
    """4,000 and 16,000 simulated people for the same million: the same rates, the same queue, the same company."""
    measured = {}
    for population in (4000, 16_000):
        r = run(company(population, days=365), replicates=8, progress=False)
        by = r.days.groupby("replicate")
        runs = r.runs.set_index("replicate")
        measured[population] = {
            "monthly_churn": by.apply(lambda d: 30 * d.churned.sum() / d.active_customers.sum()),
            "contacts_per_customer_year": by.apply(lambda d: 365 * d.contacts.sum() / d.active_customers.sum()),
            "abandonment": by.apply(lambda d: (d.abandonment * d.contacts).sum() / d.contacts.sum()),
            **{
                k: runs[k]
                for k in (
                    "csat",
                    "nps",
                    "market_share",
                    "mean_service_wait_hours",
                    "active_customers",
                    "churned",
                    "complaints",
                    "revenue",
                )
            },
        }
    small, large = measured[4000], measured[16_000]
    verdicts = {k: _welch_agree(small[k], large[k], len(small)) for k in small}
    assert all(ok for ok, _ in verdicts.values()), {k: why for k, (ok, why) in verdicts.items() if not ok}
    # the company's counts are the market's: about 400,000 customers, not the sample's 1,600 or 6,400
    assert 350_000 < large["active_customers"].mean() < 450_000


def test_check_and_run_say_what_one_simulated_person_stands_for(capsys, tmp_path):
    args = [*(x for o in COMPANY for x in ("--set", o)), "--population", "2000"]
    assert main(["check", "base", *args]) == 0
    out, err = capsys.readouterr()
    assert "2,000 simulated people standing for 1,000,000 in the market" in out
    assert "one simulated person stands for 500 people" in err and "400,000 customers on day 0 are 800" in err
    assert main(["run", "base", *args, "--days", "20", "--replicates", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert (result["population"], result["represents"]) == (2000, MILLION)
    assert result["kpis"]["active_customers"]["mean"] > 300_000 and "stands for 500" in err
    assert main(["run", "base", "--population", "800", "--days", "5", "--replicates", "1", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "represents" not in json.loads(out) and "stands for" not in err


def test_model_md_gives_each_kpi_its_kind():
    from test_docs import KEY, tables

    documented = {KEY.match(c[0]).group(1): c[2] for h, rows in tables("7.") if "kind" in h for c in rows}
    assert documented == {name: kpi.kind for name, kpi in DEFINITIONS.items()}
