"""Ownership models: labels carry no outcome, and each objective moves budget as documented."""

import numpy as np
import pytest
from conftest import simulate, small

from cxsim import kernel as K
from cxsim.domain import BILLING, DEPARTMENTS, DIGITAL, FULFILMENT, MARKETING, N_DEPT, PRODUCT, SERVICE
from cxsim.model import CXModel
from cxsim.presets import FUNNELS, OBJECTIVES, PRESETS
from cxsim.scenario import diff_parameters, load_scenario
from cxsim.schema import Event


def test_two_labels_with_identical_mechanisms_give_identical_results():
    cmo = small(population=1500, days=150, overrides=["ownership.model=cmo_led"])
    relabelled = cmo.model_copy(update={"ownership": cmo.ownership.model_copy(update={"model": "cco_led"})})
    a, b = simulate(cmo), simulate(relabelled)
    assert np.array_equal(a.history, b.history) and np.array_equal(a.ledger, b.ledger)
    # and the mechanisms do matter: the real CCO preset gives a different history
    cco = simulate(small(population=1500, days=150, overrides=["ownership.model=cco_led"]))
    assert not np.array_equal(a.history, cco.history)


def test_every_preset_is_a_valid_distinct_mechanism_set():
    seen = set()
    for name, preset in PRESETS.items():
        s = load_scenario(None, [f"ownership.model={name}"])
        assert s.ownership.objective in OBJECTIVES
        key = tuple(sorted((k, str(v)) for k, v in preset.items()))
        assert key not in seen, f"{name} duplicates another preset's mechanisms"
        seen.add(key)


@pytest.mark.parametrize("name", list(PRESETS))
def test_ownership_scenario_files_change_only_the_ownership(name):
    base, other = load_scenario("base"), load_scenario(name)
    changed = {k.split(".")[0] for k in diff_parameters(base, other)}
    assert changed <= {"ownership", "name", "description"}
    assert other.ownership.model == name and other.name == name and other.description


def owner_for(objective: str, **ownership):
    """A CCO-led model at classroom size whose owner has `objective`, no noise and no delay."""
    s = small(
        population=800,
        days=60,
        overrides=[
            f'ownership.objective="{objective}"',
            "ownership.listening_noise=0",
            *(f"ownership.{k}={v}" for k, v in ownership.items()),
        ],
    )
    return CXModel(s).owner


def window(**tallies) -> np.ndarray:
    """Window totals: 1000 encounters and the standard failure count at every department, plus `tallies`."""
    t = np.zeros(K.N_TALLIES)
    t[K.TALLY.encounters : K.TALLY.encounters + N_DEPT] = 1000.0
    for name, value in tallies.items():
        t[getattr(K.TALLY, name)] = value
    return t


def standard_failures(owner) -> np.ndarray:
    return np.array([d.config.failure_rate * 1000.0 for d in owner.model.departments])


def test_journey_funds_the_department_whose_failures_hurt_most():
    owner = owner_for("journey")
    t = window()
    t[K.TALLY.failures : K.TALLY.failures + N_DEPT] = 10.0
    t[K.TALLY.failures + K.BILLING] = 200.0
    before = owner.shares.copy()
    owner.reallocate(owner.needs(t))
    assert owner.shares[BILLING] > before[BILLING]
    assert np.argmax(owner.shares / owner.base_shares) == BILLING
    assert owner.shares.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("source, block", [("surveys", "survey_detractors_by"), ("social", "posts_negative_by")])
def test_survey_and_social_listening_fund_what_detractors_and_posts_blame(source, block):
    """Heard through surveys (or social posts), the owner funds the department the detractors (posters) blame,
    and is deaf to failures nobody names there and to what is blamed on no department."""
    owner = owner_for("journey", listening_source=f'"{source}"')
    t = window()
    t[K.TALLY.failures + K.BILLING] = 500.0  # failures no detractor names
    start = getattr(K.TALLY, block)
    t[start : start + N_DEPT] = 2.0
    t[start + K.PRODUCT] = 20.0
    t[start + N_DEPT] = 1000.0  # blamed on no department: not heard
    need = owner.needs(t)
    assert np.argmax(need) == PRODUCT and need[BILLING] < need[PRODUCT]
    # no listening noise here: need = heard signal / base share
    assert need[PRODUCT] / need[SERVICE] == pytest.approx(
        10.0 * owner.base_shares[SERVICE] / owner.base_shares[PRODUCT]
    )


def test_complaint_listening_cannot_see_what_nobody_complains_about():
    owner = owner_for("journey", listening_source='"complaints"')
    t = window()
    t[K.TALLY.failures + K.BILLING] = 500.0  # failures nobody complains about
    t[K.TALLY.complaints_by : K.TALLY.complaints_by + N_DEPT] = 5.0
    t[K.TALLY.complaints_by + K.DIGITAL] = 50.0
    need = owner.needs(t)
    assert np.argmax(need) == DIGITAL and need[BILLING] < need[DIGITAL]


@pytest.mark.parametrize("objective", ["acquisition", "conversion"])
def test_growth_objectives_fund_their_funnel_when_sales_fall(objective):
    owner = owner_for(objective)
    reference = window(acquisitions=100.0, lost_sales=5.0)
    assert np.all(owner.needs(reference) == 1.0)  # the first review sets the reference
    worse = window(acquisitions=50.0, lost_sales=50.0)
    need = owner.needs(worse)
    funnel = list(FUNNELS[objective])
    assert np.all(need[funnel] > 1.0)
    assert np.all(np.delete(need, funnel) == 1.0)
    before = owner.shares.copy()
    owner.reallocate(need)
    assert np.all(owner.shares[funnel] > before[funnel])
    # acquisitions above the reference never take money from the funnel
    assert np.all(owner.needs(window(acquisitions=200.0)) == 1.0)


def test_service_objective_staffs_up_when_contacts_rise():
    owner = owner_for("service")
    owner.needs(window(contacts=100.0))
    need = owner.needs(window(contacts=150.0))
    assert need[SERVICE] == pytest.approx(1.5)
    assert np.all(np.delete(need, SERVICE) == 1.0)


def test_service_objective_hears_its_listening_source():
    owner = owner_for("service", listening_source='"complaints"')
    t = window(contacts=100.0)
    t[K.TALLY.complaints_by + BILLING] = 40.0
    owner.needs(t)
    t[K.TALLY.complaints_by + FULFILMENT] = 20.0  # complaints up by half; contacts unchanged
    assert owner.needs(t)[SERVICE] == pytest.approx(1.5)


def test_an_owner_that_weighs_cost_sees_less_need_where_work_costs_more_than_planned():
    owner = owner_for("journey", cost_weight=0.5)
    for d, ratio in zip(owner.model.departments, (4.0, 1.0, 1.0, 1.0, 0.25, 1.0, 1.0), strict=True):
        d.spend_ratio = ratio
    assert owner.cost_factor() == pytest.approx([0.5, 1, 1, 1, 2, 1, 1])
    assert np.all(owner_for("journey").cost_factor() == 1.0)  # the default weighs no cost


def test_silos_argue_from_their_own_failure_rate():
    owner = owner_for("own_kpi")
    t = window()
    t[K.TALLY.failures : K.TALLY.failures + N_DEPT] = standard_failures(owner)
    t[K.TALLY.failures + K.FULFILMENT] *= 2.0
    need = owner.needs(t)
    assert need[FULFILMENT] == pytest.approx(2.0)
    assert np.allclose(np.delete(need, FULFILMENT), 1.0)


def test_consensus_is_the_geometric_mean_of_journey_and_own_kpi():
    t = window()
    t[K.TALLY.failures : K.TALLY.failures + N_DEPT] = 20.0
    t[K.TALLY.failures + K.PRODUCT] = 80.0
    journey, own, both = (owner_for(o).needs(t) for o in ("journey", "own_kpi", "consensus"))
    assert both == pytest.approx(np.sqrt(journey * own))


def test_scope_and_floor_bound_the_reallocation():
    owner = owner_for(
        "journey", listening_scope='["billing", "service", "product"]', min_budget_fraction=0.8, reallocation_rate=1.0
    )
    t = window()
    t[K.TALLY.failures + K.BILLING] = 500.0
    before = owner.shares.copy()
    owner.reallocate(owner.needs(t))
    unheard = [DEPARTMENTS.index(d) for d in ("marketing", "sales", "digital", "fulfilment")]
    assert np.allclose(owner.shares[unheard], before[unheard])
    assert np.all(owner.shares >= 0.8 * owner.base_shares - 1e-12)
    assert owner.shares[BILLING] > before[BILLING]


def test_fixed_objective_never_moves_budget():
    m = simulate(small(population=800, days=120, overrides=['ownership.objective="fixed"']))
    assert np.array_equal(m.owner.shares, m.owner.base_shares)


def test_cmo_raises_marketing_share_when_acquisitions_fall():
    """A marketing outage from day 45 cuts acquisitions; the CMO answers with more money for the funnel."""
    s = load_scenario("cmo_led", ["ownership.listening_noise=0"], population=3000, days=240)
    quiet = CXModel(s).run()
    outage = s.model_copy(update={"events": (Event(day=45, kind="outage", target="marketing", size=0.8),)})
    hit = CXModel(outage).run()
    acquisitions = K.TALLY.acquisitions
    assert hit.history[60:, acquisitions].sum() < quiet.history[60:, acquisitions].sum()
    assert hit.owner.shares[MARKETING] > quiet.owner.shares[MARKETING]
    assert hit.owner.shares[MARKETING] > hit.owner.base_shares[MARKETING]


def test_a_survey_or_social_owner_runs_and_hears_differently_from_a_complaint_owner():
    shares = {}
    for source in ("complaints", "surveys", "social"):
        s = small(population=2000, days=120, overrides=[f'ownership.listening_source="{source}"'])
        shares[source] = simulate(s).owner.shares
    assert not np.array_equal(shares["surveys"], shares["complaints"])
    assert not np.array_equal(shares["social"], shares["complaints"])
