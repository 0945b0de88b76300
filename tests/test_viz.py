"""The teaching view without a browser: the model behind the page, lessons, the components rendered by solara."""

import json
import re
import shlex
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import required_module

from cxsim import kernel as K
from cxsim import metrics
from cxsim.cli import _load, main, parser
from cxsim.domain import ACTIVE, CHURNED, NO_DEPT
from cxsim.model import CXModel
from cxsim.scenario import ScenarioError

solara = required_module("solara", "the viz extra: make setup installs it")
import ipyvuetify as v  # noqa: E402

from cxsim.viz import app, check, compare, components  # noqa: E402
from cxsim.viz.teaching import FREE_PLAY, SHOWN, PairModel, TeachingModel, lessons, prepare  # noqa: E402
from cxsim.viz.widgets import CustomerGridWidget, LineChartWidget  # noqa: E402

FIXTURES = Path(__file__).parent / "lessons"
OUTAGE = str(FIXTURES / "billing_outage.toml")


@pytest.fixture(autouse=True)
def fixture_lessons(monkeypatch):
    monkeypatch.setenv("CXSIM_LESSONS", str(FIXTURES))
    app.chosen_lesson.set(FREE_PLAY)
    app.chosen_ownership.set(None)
    app.chosen_compare.set(None)
    components.selected_customer.set(-1)
    prepare()  # the page shows "compiling" until the simulator is ready


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stepped(model, days):
    for _ in range(days):
        model.step()
    return model


def test_teaching_model_is_the_cli_run_it_prints():
    model = stepped(
        TeachingModel(
            lesson=OUTAGE,
            ownership="siloed",
            promise_markup=0.1,
            handoff_consistency=0.3,
            billing_budget=2e5,
            population=300,
            seed=7,
        ),
        12,
    )
    args = parser().parse_args(shlex.split(model.command_line())[1:])
    scenario, _ = _load(args)
    assert scenario == model.config
    o = scenario.ownership
    assert (o.model, o.promise_markup, o.handoff_consistency, o.objective) == ("siloed", 0.1, 0.3, "own_kpi")
    assert scenario.departments.billing.budget == pytest.approx(2e5 * 300 / 100_000)
    assert TeachingModel(population=200).command_line().startswith("cxsim run base --population 200 ")
    unmoved = TeachingModel(population=200, billing_budget=800_000, handoff_consistency=0.8, promise_markup=0.0)
    assert unmoved.overrides == []  # controls left at the lesson's values add nothing
    plain = stepped(CXModel(scenario), 12)
    np.testing.assert_array_equal(plain.history, model.history)  # the records change nothing
    np.testing.assert_array_equal(plain.ledger, model.ledger)


def test_ownership_model_starts_from_its_preset_and_the_lesson_keeps_its_own():
    silo = TeachingModel(lesson=str(FIXTURES / "silo_start.toml"), population=200)
    assert silo.config.ownership.model == "siloed" and silo.config.ownership.handoff_consistency == 0.5
    cco = TeachingModel(lesson=str(FIXTURES / "silo_start.toml"), ownership="cco_led", population=200)
    assert cco.config.ownership.handoff_consistency == 0.8 and cco.config.ownership.objective == "journey"


def test_journey_records_what_happened_to_each_shown_customer():
    model = TeachingModel(lesson=OUTAGE, population=400, seed=3)
    assert len(model.shown) == 400 and sorted(model.shown) == list(range(400))
    events = []
    for _ in range(40):
        model.step()
        events.append(model.population.events[model.shown].copy())
    np.testing.assert_array_equal(model.journey_events[:40], np.array(events))
    billing_failed = 1 << (K.EVENT.failed + K.BILLING)
    j = int(np.flatnonzero((model.journey_events[:40] & billing_failed).any(axis=0))[0])
    days, told = model.journey(j)
    assert len(days) == 40 and days.attitude.between(-5, 5).all()
    failed_days = np.flatnonzero(model.journey_events[:40, j] & billing_failed)
    assert [d for d, words in told if words == "billing failed them"] == list(failed_days)
    open_now = np.count_nonzero((model.population.state == ACTIVE) & (model.population.complaint != NO_DEPT))
    assert model.open_complaints[39] == open_now


def test_at_most_SHOWN_customers_are_drawn_and_recorded():
    model = TeachingModel(population=5000, engine="numba")
    assert len(model.shown) == SHOWN and len(set(model.shown.tolist())) == SHOWN
    assert model.journey_events.shape == (model.config.days, SHOWN)


def test_daily_table_ends_at_the_run_kpis():
    model = TeachingModel(population=600, engine="numba")
    model.config = model.config.model_copy(update={"days": 60})
    model.run()
    daily, kpis = model.daily(), metrics.run_kpis(model)
    assert len(daily) == 60
    assert daily.nps_survey.iloc[-1] == pytest.approx(kpis["nps_survey"])
    assert daily.csat.iloc[-1] == pytest.approx(kpis["csat"])


def test_lessons_are_read_from_the_directory_with_free_play_first(tmp_path):
    found = lessons(FIXTURES)
    assert list(found) == [FREE_PLAY, "billing_outage", "silo_start"]
    assert found["billing_outage"].name == "Billing outage (test lesson)"
    assert "three weeks" in found["billing_outage"].description
    (tmp_path / "broken.toml").write_text('extends = "nowhere.toml"\n')
    with pytest.raises(ScenarioError, match="broken.toml"):
        lessons(tmp_path)


def test_viz_command_rejects_bad_input_before_starting(capsys):
    assert main(["viz", "--lesson", "no_such_lesson", "--lessons", str(FIXTURES)]) == 2
    assert "no_such_lesson: no such lesson; known: base, billing_outage, silo_start" in capsys.readouterr().err
    assert main(["viz", "--lessons", str(FIXTURES / "silo_start.toml")]) == 2
    assert "expected a directory" in capsys.readouterr().err
    assert main(["viz", "--port", "0"]) == 2
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ScenarioError, match="cannot listen"):
            check(busy.getsockname()[1], None, None)


# --- side by side: two organisations, the same customers and luck


def same_run(a, b):
    """Two organisations gave identical numbers: tallies, ledger, every customer and the journey records."""
    np.testing.assert_array_equal(a.history, b.history)
    np.testing.assert_array_equal(a.ledger, b.ledger)
    for field_a, field_b in zip(a.population, b.population, strict=True):
        np.testing.assert_array_equal(field_a, field_b)
    np.testing.assert_array_equal(a.journey_attitude, b.journey_attitude)
    np.testing.assert_array_equal(a.journey_events, b.journey_events)


@pytest.mark.parametrize("spec", ["cco_led,cco_led", "billing_budget=800000"])
def test_with_nothing_differing_both_sides_give_identical_numbers(spec):
    pair = stepped(PairModel(compare=spec, population=300), 25)
    a, b = pair.sides
    assert a.config == b.config
    same_run(a, b)
    assert all(not f for f in compare.fates(pair))


def test_the_sides_share_their_luck_and_differ_only_in_the_contrast():
    pair = stepped(PairModel(compare="cco_led,siloed", population=300, seed=5, service_budget=2e6), 25)
    a, b = pair.sides
    assert (a.config.ownership.model, b.config.ownership.model) == ("cco_led", "siloed")
    assert a.config.departments.service.budget == b.config.departments.service.budget  # a moved slider: both
    alone = stepped(TeachingModel(ownership="siloed", population=300, seed=5, service_budget=2e6), 25)
    same_run(alone, b)  # each side is the run it would be on its own
    assert not np.array_equal(a.history, b.history)
    np.testing.assert_array_equal(a.shown, b.shown)  # the same customers drawn in the same places
    control = stepped(PairModel(lesson=OUTAGE, compare="control", population=300), 6)
    np.testing.assert_array_equal(control.sides[0].history[:3], control.sides[1].history[:3])  # until the outage
    assert not np.array_equal(control.sides[0].history[3:6], control.sides[1].history[3:6])


@pytest.mark.parametrize(
    "lesson, spec, sliders",
    [
        (FREE_PLAY, "cco_led,siloed", {"billing_budget": 9e5}),
        (OUTAGE, "control", {"promise_markup": 0.2}),
        (OUTAGE, "handoff_consistency=0.4", {"handoff_consistency": 0.6, "sales_budget": 1e6}),
    ],
)
def test_pair_prints_the_compare_command_whose_first_replicate_it_is(lesson, spec, sliders, capsys):
    pair = stepped(PairModel(lesson=lesson, compare=spec, **sliders), 20)  # agents: the page's engine
    command = shlex.split(pair.compare_command())
    assert command[:2] == ["cxsim", "compare"] and command[-2:] == ["--replicates", "10"]
    assert main([*command[1:-2], "--replicates", "1", "--days", "20", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["scenarios"]) == 2
    for side, label in zip(pair.sides, result["scenarios"], strict=True):
        kpis = metrics.run_kpis(side)
        for kpi in ("active_customers", "acquisitions", "churned", "complaints", "revenue", "cost"):
            assert result["kpis"][kpi][label]["mean"] == pytest.approx(kpis[kpi], rel=1e-12), (label, kpi)


def test_bad_contrasts_are_refused_with_what_was_expected(capsys):
    for spec, words in [
        ("cco_led,nobody", "expected two ownership models A,B"),
        ("cco_led", "expected two ownership models A,B"),
        ("control", "base is not a lesson with a [lesson] control"),
        ("no_setting=1", "settings: promise_markup, handoff_consistency"),
        ("handoff_consistency=3", "key ownership.handoff_consistency: expected a number <= 1.0"),
    ]:
        assert main(["viz", "--compare", spec]) == 2
        err = capsys.readouterr().err
        assert f"--compare {spec}:" in err and words in err and "Traceback" not in err
    check(free_port(), "billing_outage", FIXTURES, "control")  # a lesson with a control: fine


def test_customers_whose_fate_differs_are_marked_and_told():
    pair = stepped(PairModel(compare="cco_led,siloed", population=400, engine="numba"), 200)
    told = compare.fates(pair)
    a, b = (side.population.state[side.shown] for side in pair.sides)
    kept = [j for j in range(len(told)) if a[j] == ACTIVE and b[j] == CHURNED]
    assert kept and all(told[j] == "kept by cco_led, lost by siloed" for j in kept)
    assert [bool(f) for f in told] == list(a != b)
    cells = components.customer_cells(pair.sides[1], told)
    assert all(cells[j][3] == 1 and cells[j][2].endswith("kept by cco_led, lost by siloed") for j in kept)
    assert sum(c[3] for c in cells) == np.count_nonzero(a != b)


def test_lessons_carry_a_guide_and_a_control():
    found = lessons(FIXTURES)
    outage = found["billing_outage"]
    assert outage.notice == ("Complaints queue at service while billing fails.",) and outage.try_this
    assert outage.control.resolve() == lessons()[FREE_PLAY].path
    assert found["silo_start"].control is None and found["silo_start"].notice == ()


# --- the page rendered by solara (no browser)


def html_texts(rc, css_class):
    return [
        w.unsafe_innerHTML
        for w in rc.find(solara.widgets.HTML).widgets
        if css_class in (w.attributes or {}).get("class", "")
    ]


def kpi_values(rc):
    return re.findall(r'class="cx-kpi-value"[^>]*>([^<]*)<', "".join(html_texts(rc, "")))


def series(chart) -> list[dict]:
    return json.loads(chart.series_json)


def grid_cells(rc):
    return json.loads(rc.find(CustomerGridWidget).widget.cells_json)


@pytest.fixture
def page():
    box, rc = solara.render(app.Page(), handle_error=False)
    yield rc
    rc.close()


def test_page_steps_and_every_panel_draws(page):
    rc = page
    assert "Day 0 of 365" in html_texts(rc, "cx-day")[0]
    assert len(grid_cells(rc)) == 500 and rc.find(CustomerGridWidget).widget.columns == 23
    before = kpi_values(rc)
    for _ in range(3):
        rc.find(v.Btn, children=["Step"]).widget.click()
    assert "Day 3 of 365" in html_texts(rc, "cx-day")[0]
    after = kpi_values(rc)
    assert len(after) == 8 and after != before
    colours = {c[0] for c in grid_cells(rc)}
    assert len(colours) > 3  # prospects, and customers in several shades of attitude
    charts = rc.find(LineChartWidget).widgets
    assert len(charts) == len(components.CHARTS)
    for chart in charts:
        assert series(chart) and all(len(s["values"]) == 3 for s in series(chart))
    active = series(next(c for c in charts if c.title == "Active customers"))[0]["values"]
    reference = stepped(TeachingModel(lesson=str(lessons()[FREE_PLAY].path)), 3)  # the page's own defaults
    assert active == [float(x) for x in reference.history[:3, K.TALLY.active]]
    departments = html_texts(rc, "")
    assert any("<b>Departments</b>" in t and t.count("<tr>") == 8 for t in departments)


def test_clicking_a_customer_shows_their_journey(page):
    rc = page
    for _ in range(5):
        rc.find(v.Btn, children=["Step"]).widget.click()
    active = next(j for j, c in enumerate(grid_cells(rc)) if "customer for" in c[2])
    rc.find(CustomerGridWidget).widget.vue_pick(active)
    head = html_texts(rc, "cx-journey-head")
    assert len(head) == 1 and "<b>Customer" in head[0] and "attitude" in head[0]
    journey = next(c for c in rc.find(LineChartWidget).widgets if c.title == "attitude day by day")
    assert len(series(journey)[0]["values"]) == 5
    assert rc.find(CustomerGridWidget).widget.selected == active


def test_choosing_ownership_and_lesson_rebuilds_the_model(page):
    rc = page
    rc.find(v.Btn, children=["Step"]).widget.click()
    rc.find(v.Select, label="ownership model").widget.v_model = "siloed"
    day = html_texts(rc, "cx-day")[0]
    assert "Day 0" in day and "<code>siloed</code>" in day and "handoff consistency 0.50" in day
    rc.find(v.Btn, children=["Step"]).widget.click()
    rc.find(v.Btn, children=["Reset"]).widget.click()  # Reset keeps the chosen ownership model
    day = html_texts(rc, "cx-day")[0]
    assert "Day 0" in day and "<code>siloed</code>" in day and "handoff consistency 0.50" in day
    rc.find(v.Select, label="lesson").widget.v_model = "billing_outage"
    rc.find(v.Btn, children=["Step"]).widget.click()
    rc.find(v.Btn, children=["Reset"]).widget.click()
    day = html_texts(rc, "cx-day")[0]
    assert "Day 0" in day and "Billing outage (test lesson)" in day and "<code>cco_led</code>" in day
    assert any("three weeks" in t for t in html_texts(rc, "cx-lesson-description"))


@pytest.mark.slow
def test_sigterm_to_cxsim_viz_stops_its_server_and_frees_the_port():
    import contextlib
    import os
    import signal
    import subprocess
    import sys

    from conftest import stop

    port = free_port()
    viz = subprocess.Popen(
        [sys.executable, "-m", "cxsim", "viz", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        deadline = time.monotonic() + 90
        while not listening():
            assert viz.poll() is None and time.monotonic() < deadline, "the page server did not start"
            time.sleep(0.5)
        os.kill(viz.pid, signal.SIGTERM)  # the cxsim process only, as `kill PID` would
        viz.wait(timeout=30)
        deadline = time.monotonic() + 30
        while listening() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not listening(), "the server outlived cxsim viz and keeps the port"
    finally:
        with contextlib.suppress(ProcessLookupError):  # the whole process group, if any of it is left
            stop(viz)


def pair_numbers(rc) -> list[tuple[str, str, str]]:
    """(A, B, B - A) as shown on each side-by-side KPI card."""
    text = "".join(html_texts(rc, ""))
    a = re.findall(r'class="cx-pair-a"[^>]*>([^<]*)<', text)
    b = re.findall(r'class="cx-pair-b"[^>]*>([^<]*)<', text)
    d = re.findall(r'class="cx-pair-diff"[^>]*>B - A ([^<]*)<', text)
    return list(zip(a, b, d, strict=True))


def render_pair(spec):
    app.chosen_compare.set(spec)
    return solara.render(app.Page(), handle_error=False)[1]


def test_side_by_side_page_steps_both_and_shows_their_difference():
    rc = render_pair("cco_led,siloed")
    try:
        day = html_texts(rc, "cx-day")[0]
        assert "Day 0 of 365" in day and "<b>cco_led</b>" in day and "<b>siloed</b>" in day
        grids = rc.find(CustomerGridWidget).widgets
        assert len(grids) == 2 and all(len(json.loads(g.cells_json)) == 500 for g in grids)
        assert not rc.find(v.Tab).widgets  # no stray "Page 0" tab
        for _ in range(3):
            rc.find(v.Btn, children=["Step"]).widget.click()
        assert "Day 3 of 365" in html_texts(rc, "cx-day")[0]
        numbers = pair_numbers(rc)
        assert len(numbers) == 8
        reference = stepped(PairModel(compare="cco_led,siloed"), 3)
        active = [f"{side.history[2, K.TALLY.active]:,.0f}" for side in reference.sides]
        assert numbers[0][:2] == tuple(active)
        charts = [c for c in rc.find(LineChartWidget).widgets if c.band]
        assert len(charts) == len(compare.PAIR_CHARTS)
        for chart in charts:
            assert chart.band == [0, 1] and [s["name"] for s in series(chart)] == ["cco_led", "siloed"]
            assert all(len(s["values"]) == 3 for s in series(chart))
        departments = [t for t in html_texts(rc, "") if "<b>Departments</b>" in t]
        assert len(departments) == 1 and departments[0].count("<tr>") == 8 and departments[0].count(" / ") >= 21
        command = html_texts(rc, "cx-command")[0]
        assert "cxsim compare base --vary ownership.model=cco_led,siloed --population 500 --seed 42" in command
        j = next(j for j, c in enumerate(json.loads(grids[0].cells_json)) if "customer for" in c[2])
        grids[0].vue_pick(j)
        assert [g.selected for g in rc.find(CustomerGridWidget).widgets] == [j, j]
        heads = html_texts(rc, "cx-journey-head")
        assert len(heads) == 2 and "cco_led" in heads[0] and "siloed" in heads[1]
        journeys = [c for c in rc.find(LineChartWidget).widgets if c.title == "attitude day by day"]
        assert len(journeys) == 2 and journeys[0].ylim == journeys[1].ylim and len(journeys[0].ylim) == 2
    finally:
        rc.close()


def test_side_by_side_page_with_nothing_differing_shows_no_difference():
    rc = render_pair("shared,shared")
    try:
        for _ in range(4):
            rc.find(v.Btn, children=["Step"]).widget.click()
        numbers = pair_numbers(rc)
        assert all(a == b for a, b, _ in numbers)
        assert {d for a, _, d in numbers if a != "-"} <= {"+0", "+0.0"}
        for chart in (c for c in rc.find(LineChartWidget).widgets if c.band):
            assert series(chart)[0]["values"] == series(chart)[1]["values"]
        assert "<b class='cx-differ-count'>0</b>" in "".join(html_texts(rc, ""))
    finally:
        rc.close()


def test_switching_between_one_organisation_and_two(page):
    rc = page
    assert not rc.find(v.Tab).widgets
    rc.find(v.Switch).widget.v_model = True
    assert "<b>cco_led</b>" in html_texts(rc, "cx-day")[0] and len(rc.find(CustomerGridWidget).widgets) == 2
    rc.find(v.Select, label="lesson").widget.v_model = "billing_outage"
    assert "Billing outage (test lesson)" in html_texts(rc, "cx-day")[0]
    guide = [t for t in html_texts(rc, "") if "<b>Things to notice</b>" in t]
    assert len(guide) == 1 and "Complaints queue at service" in guide[0] and "<b>Try this</b>" in guide[0]
    rc.find(v.Select, label="what differs").widget.v_model = "the lesson against its control"
    day = html_texts(rc, "cx-day")[0]
    assert "<b>base</b>" in day and "<b>Billing outage (test lesson)</b>" in day
    assert re.search(r"cxsim compare base \S*billing_outage.toml --population 500 ", html_texts(rc, "cx-command")[0])
    rc.find(v.Select, label="what differs").widget.v_model = "one setting moved on side B"
    assert "promise markup +0.30" in html_texts(rc, "cx-day")[0]
    rc.find(v.Select, label="setting").widget.v_model = "service budget / year"
    assert app.chosen_compare.value == "service_budget=1700000"
    rc.find(v.Slider, label="side B: service budget / year").widget.v_model = 1_000_000
    assert app.chosen_compare.value == "service_budget=1000000"
    assert "--vary departments.billing.budget" not in html_texts(rc, "cx-command")[0]
    assert "--vary departments.service.budget=1700000.0,1000000.0" in html_texts(rc, "cx-command")[0]
    rc.find(v.Switch).widget.v_model = False
    assert len(rc.find(CustomerGridWidget).widgets) == 1 and "Day 0" in html_texts(rc, "cx-day")[0]


def test_page_says_it_is_compiling_until_the_simulator_is_ready(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(app, "prepared", lambda: False)
    monkeypatch.setattr(app, "prepare", lambda: release.wait(30))
    box, rc = solara.render(app.Page(), handle_error=False)
    try:
        assert any("numba is compiling the simulator" in t for t in html_texts(rc, ""))
        assert not rc.find(CustomerGridWidget).widgets
        release.set()
        deadline = time.monotonic() + 30
        while not rc.find(CustomerGridWidget).widgets:
            assert time.monotonic() < deadline, "the page did not appear after compiling"
            time.sleep(0.2)
        assert "Day 0 of 365" in html_texts(rc, "cx-day")[0]
    finally:
        rc.close()
