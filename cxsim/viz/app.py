"""The teaching page (`cxsim viz`, or `solara run cxsim/viz/app.py`): Mesa's SolaraViz around a lesson.

The lesson and the ownership model set the starting point: choosing either builds
a fresh model and resets the sliders to its values. The sliders (promise markup,
handoff consistency, budgets, population, seed, engine) are Mesa model
parameters: Reset rebuilds the model with them. Step, Play/Pause and Reset are
SolaraViz's own.
"""

from __future__ import annotations

import os
from html import escape

import solara
from mesa.visualization import Slider, SolaraViz

from cxsim.presets import PRESETS
from cxsim.viz.components import COMPONENTS, Note
from cxsim.viz.teaching import (
    CLASSROOM,
    FREE_PLAY,
    POPULATIONS,
    Lesson,
    TeachingModel,
    budget_slider_range,
    lessons,
    scenario_of,
)

TITLE = "cxsim: who should own the customer experience?"

# per browser session: the chosen lesson, and the ownership model (None: the lesson's own)
chosen_lesson = solara.reactive(os.environ.get("CXSIM_LESSON") or FREE_PLAY)
chosen_ownership = solara.reactive(None)


def model_params(lesson: Lesson, scenario, ownership: str | None) -> dict:
    """Mesa model parameters: fixed lesson and ownership, sliders starting at the scenario's values."""
    o = scenario.ownership
    params = {
        "lesson": str(lesson.path),
        "ownership": ownership,
        "promise_markup": Slider("promise markup over delivered quality", o.promise_markup, -0.5, 0.5, 0.05),
        "handoff_consistency": Slider("handoff consistency", o.handoff_consistency, 0.0, 1.0, 0.05),
    }
    for name, dept in scenario.departments:
        low, high, step = budget_slider_range(dept.budget)
        params[f"{name}_budget"] = {
            "type": "SliderInt",
            "label": f"{name} budget / year",
            "value": round(dept.budget),
            "min": low,
            "max": high,
            "step": step,
        }
    params["population"] = {
        "type": "Select",
        "label": "people in the market",
        "value": CLASSROOM["population"],
        "values": list(POPULATIONS),
    }
    params["seed"] = {
        "type": "SliderInt",
        "label": "seed",
        "value": scenario.seed,
        "min": 0,
        "max": max(100, scenario.seed),
    }
    params["engine"] = {
        "type": "Select",
        "label": "engine (same results; numba is faster)",
        "value": CLASSROOM["engine"],
        "values": ["agents", "numba"],
    }
    return params


def describe_event(ev) -> str:
    where = "every department" if ev.aim == "all" else ev.aim
    until = f" for {ev.duration} days" if ev.duration else " from then on"
    change = f"raised by {ev.size:.0%}" if ev.size >= 0 else f"lowered by {-ev.size:.0%}"
    what = {
        "outage": f"{where} fails {ev.size:.0%} of encounters",
        "budget_cut": f"{where} loses {ev.size:.0%} of its budget",
        "promise": f"the promise is {change}",
        "price": f"the price is {change}",
        "competitor": f"the competitor's quality moves by {ev.size:+.2f}"
        if ev.aim == "quality"
        else f"the competitor's price is {change}",
    }[ev.kind]
    return f"day {ev.day}: {what}{until}"


@solara.component
def LessonCard(catalogue: dict[str, Lesson], lesson: Lesson, scenario):
    """Pick a lesson and an ownership model; read what the lesson is about."""

    def pick_lesson(key):
        chosen_ownership.set(None)
        chosen_lesson.set(key)

    def pick_ownership(name):
        chosen_ownership.set(None if name == lesson_scenario.ownership.model else name)

    lesson_scenario = solara.use_memo(lambda: scenario_of(lesson.path, None), [lesson.key])
    with solara.Card("Lesson", classes=["cx-lesson"]):
        solara.v.Select(
            label="lesson",
            items=[{"text": item.name, "value": key} for key, item in catalogue.items()],
            v_model=lesson.key,
            on_v_model=pick_lesson,
            class_="cx-lesson-select",
        )
        Note(escape(lesson.description) or "<i>(no description)</i>", classes=["cx-lesson-description"])
        if scenario.events:
            Note("<br>".join(f"· {describe_event(ev)}" for ev in scenario.events), small=True)
        solara.Select(
            "ownership model",
            value=scenario.ownership.model,
            values=list(PRESETS),
            on_value=pick_ownership,
            classes=["cx-ownership-select"],
        )
        if scenario.ownership.promise_policy == "fixed":
            Note("This ownership model keeps the promise fixed: the markup has no effect.", small=True)
        Note(
            "Changing the lesson or the ownership model starts afresh. Move the sliders below, then press "
            "Reset to rebuild the model with them.",
            small=True,
        )


@solara.component
def Layout(children=[]):  # noqa: B006 (solara's signature)
    """No layout around `Page`: the page makes its own AppLayout (see `Page`)."""
    return solara.Div(children=children)


@solara.component
def Lab(catalogue: dict[str, Lesson], lesson: Lesson, ownership: str | None):
    """The lesson card and Mesa's SolaraViz for one lesson and ownership model."""
    scenario = solara.use_memo(lambda: scenario_of(lesson.path, ownership), [])
    model = solara.use_memo(lambda: TeachingModel(lesson=str(lesson.path), ownership=ownership), [])
    with solara.Sidebar():
        LessonCard(catalogue, lesson, scenario)
    SolaraViz(model, components=COMPONENTS, model_params=model_params(lesson, scenario, ownership), name=TITLE)


@solara.component
def Page():
    """One AppLayout per lesson and ownership model: choosing either mounts everything afresh, Mesa's sidebar
    too (its ModelCreator reads the model parameters only when it mounts, and the sidebar lives in the layout)."""
    catalogue = solara.use_memo(lessons, [])
    key = chosen_lesson.value if chosen_lesson.value in catalogue else FREE_PLAY
    ownership = chosen_ownership.value
    return solara.AppLayout(children=[Lab(catalogue, catalogue[key], ownership)]).key(f"{key}/{ownership}")
