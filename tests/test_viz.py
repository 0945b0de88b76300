"""The teaching view without a browser: the model behind the page, lessons, the components rendered by solara."""

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from conftest import required_module

from cxsim import kernel as K
from cxsim import metrics
from cxsim.cli import _load, main, parser
from cxsim.domain import ACTIVE, NO_DEPT
from cxsim.model import CXModel
from cxsim.scenario import ScenarioError

solara = required_module("solara", "the viz extra: make setup installs it")
import ipyvuetify as v  # noqa: E402

from cxsim.viz import app, check, components  # noqa: E402
from cxsim.viz.teaching import FREE_PLAY, SHOWN, TeachingModel, lessons, prepare  # noqa: E402
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
    scenario = _load(args)
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
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ScenarioError, match="cannot listen"):
            check(busy.getsockname()[1], None, None)


# --- the page rendered by solara (no browser)


def html_texts(rc, css_class):
    return [
        w.unsafe_innerHTML
        for w in rc.find(solara.widgets.HTML).widgets
        if css_class in (w.attributes or {}).get("class", "")
    ]


def kpi_values(rc):
    return re.findall(r'class="cx-kpi-value"[^>]*>([^<]*)<', "".join(html_texts(rc, "")))


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
        assert chart.series and all(len(s["values"]) == 3 for s in chart.series)
    active = next(c for c in charts if c.title == "Active customers").series[0]["values"]
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
    assert len(journey.series[0]["values"]) == 5
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
    import socket
    import subprocess
    import sys
    import time

    from conftest import stop

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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
