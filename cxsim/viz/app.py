"""The teaching page (`cxsim viz`, or `solara run cxsim/viz/app.py`): Mesa's SolaraViz around a lesson.

The lesson, the ownership model and the mode (one organisation, or two side by
side differing in one thing) set the starting point: choosing any builds a fresh
model and resets the sliders to its values. The sliders (promise markup, handoff
consistency, budgets, population, seed, engine) are Mesa model parameters: Reset
rebuilds the model with them. Step, Play/Pause and Reset are SolaraViz's own; the
panels are laid out by `Board`.
"""

from __future__ import annotations

import functools
import os
from html import escape

import solara
from mesa.visualization import SolaraViz

from cxsim.domain import DEPARTMENTS
from cxsim.presets import PRESETS
from cxsim.scenario import ScenarioError
from cxsim.viz.compare import PAIR_COMPONENTS
from cxsim.viz.components import COMPONENTS, Board, GuidePanel, Note
from cxsim.viz.teaching import (
    CLASSROOM,
    DEFAULT_CONTRAST,
    FREE_PLAY,
    POPULATIONS,
    SETTINGS,
    Lesson,
    PairModel,
    TeachingModel,
    budget_slider_range,
    lessons,
    parse_contrast,
    prepare,
    prepared,
    scenario_of,
)

TITLE = "cxsim: who should own the customer experience?"

# per browser session: the chosen lesson, the ownership model (None: the lesson's own) and, in side-by-side
# mode, what the two organisations differ in (a `--compare` spec; None: one organisation)
chosen_lesson = solara.reactive(os.environ.get("CXSIM_LESSON") or FREE_PLAY)
chosen_ownership = solara.reactive(None)
chosen_compare = solara.reactive(os.environ.get("CXSIM_COMPARE") or None)

CONTRAST_KINDS = {
    "ownership": "two ownership models",
    "control": "the lesson against its control",
    "setting": "one setting moved on side B",
}
SETTING_LABELS = {
    "promise_markup": "promise markup over delivered quality",
    "handoff_consistency": "handoff consistency",
    **{f"{d}_budget": f"{d} budget / year" for d in DEPARTMENTS},
}
FIRST_SETTING = "promise_markup=0.3"  # what "one setting moved" starts with: the broken promise
PLAY_INTERVAL_MS = 50  # Mesa's pause between days during Play (its default, 100 ms, holds a pair below 5 days/s)


def setting_slider(name: str, scenario, value: float | None = None) -> dict:
    """A Mesa user parameter for one of `SETTINGS`, starting at the scenario's value (or `value`)."""
    start = float(functools.reduce(getattr, SETTINGS[name].split("."), scenario))
    value = start if value is None else value
    if name.endswith("_budget"):
        low, high, step = budget_slider_range(start)
        return dict(type="SliderInt", label=SETTING_LABELS[name], value=round(value), min=low, max=high, step=step)
    low, high = (-0.5, 0.5) if name == "promise_markup" else (0.0, 1.0)
    return dict(type="SliderFloat", label=SETTING_LABELS[name], value=value, min=low, max=high, step=0.05)


def model_params(fixed: dict, scenario, settings) -> dict:
    """Mesa model parameters: the fixed ones, then sliders starting at the scenario's values."""
    params = dict(fixed)
    params.update({name: setting_slider(name, scenario) for name in settings})
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
def LessonCard(catalogue: dict[str, Lesson], lesson: Lesson, scenario, single: bool):
    """Pick a lesson, one organisation or two side by side, and (one organisation) its ownership model."""

    def pick_lesson(key):
        chosen_ownership.set(None)
        chosen_lesson.set(key)

    def pick_ownership(name):
        chosen_ownership.set(None if name == lesson_scenario.ownership.model else name)

    def pick_mode(side_by_side):
        chosen_compare.set(("control" if lesson.control else DEFAULT_CONTRAST) if side_by_side else None)

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
        solara.Switch(
            label="side by side: two organisations, the same customers and luck",
            value=not single,
            on_value=pick_mode,
            classes=["cx-mode"],
        )
        if single:
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
            "Changing the lesson, the mode or what the sides differ in starts afresh. Move the sliders below, "
            "then press Reset to rebuild the model with them.",
            small=True,
        )


@solara.component
def CompareCard(lesson: Lesson, pair: PairModel):
    """What the two organisations differ in: two ownership models, the lesson against its control, one setting."""
    c = pair.contrast
    start = solara.use_memo(lambda: scenario_of(lesson.path, None), [lesson.key])

    def pick_kind(kind):
        chosen_compare.set({"ownership": DEFAULT_CONTRAST, "control": "control", "setting": FIRST_SETTING}[kind])

    def pick_owner(k, name):
        names = list(c.ownership)
        names[k] = name
        chosen_compare.set(",".join(names))

    def pick_setting(words):
        """Side B starts at side A's value of the newly chosen setting (then move its slider)."""
        chosen = next(n for n, w in SETTING_LABELS.items() if w == words)
        chosen_compare.set(f"{chosen}={setting_slider(chosen, start)['value']}")

    name, _, value = c.spec.partition("=")
    with solara.Card("Side by side", classes=["cx-compare"]):
        kinds = {k: words for k, words in CONTRAST_KINDS.items() if k != "control" or lesson.control}
        solara.Select(
            "what differs",
            value=CONTRAST_KINDS[c.kind],
            values=list(kinds.values()),
            on_value=lambda words: pick_kind(next(k for k, w in kinds.items() if w == words)),
            classes=["cx-contrast-kind"],
        )
        if c.kind == "ownership":
            for k in (0, 1):
                solara.Select(
                    f"side {'AB'[k]}: ownership model",
                    value=c.ownership[k],
                    values=list(PRESETS),
                    on_value=lambda n, k=k: pick_owner(k, n),
                    classes=[f"cx-side-{'ab'[k]}-select"],
                )
        elif c.kind == "setting":
            solara.Select(
                "setting",
                value=SETTING_LABELS[name],
                values=list(SETTING_LABELS.values()),
                on_value=pick_setting,
                classes=["cx-setting-select"],
            )
            slider = setting_slider(name, start, float(value))
            widget = solara.SliderInt if slider["type"] == "SliderInt" else solara.SliderFloat
            widget(
                f"side B: {slider['label']}",
                value=slider["value"],
                min=slider["min"],
                max=slider["max"],
                step=slider["step"],
                on_value=lambda x: chosen_compare.set(f"{name}={x}"),
            )
        Note(
            "Both organisations meet the same customers with the same luck (the same seed, network and random "
            "numbers), so every difference on screen is caused by what differs. Sliders below start at side A's "
            "values; a slider you move applies to both sides.",
            small=True,
        )


@solara.component
def Layout(children=[]):  # noqa: B006 (solara's signature)
    """No layout around `Page`: the page makes its own AppLayout (see `Page`)."""
    return solara.Div(children=children)


@solara.component
def Lab(catalogue: dict[str, Lesson], lesson: Lesson, ownership: str | None, compare: str | None):
    """The sidebar cards, Mesa's SolaraViz controls and the board, for one organisation or a pair."""

    def build():
        if compare is None:
            return TeachingModel(lesson=str(lesson.path), ownership=ownership)
        return PairModel(lesson=str(lesson.path), compare=compare)

    def start():
        """What the sliders start from: the lesson with its ownership model (a pair: side A's)."""
        if compare is None:
            return scenario_of(lesson.path, ownership)
        c = model.value.contrast
        return scenario_of(c.lessons[0], c.ownership[0])

    model = solara.use_reactive(solara.use_memo(build, []))
    scenario = solara.use_memo(start, [])
    if compare is None:
        fixed, settings, panels = {"lesson": str(lesson.path), "ownership": ownership}, SETTINGS, COMPONENTS
    else:
        c = model.value.contrast
        # an ownership contrast leaves markup and handoff to each side's preset
        settings = [k for k in SETTINGS if c.kind != "ownership" or k.endswith("_budget")]
        fixed, panels = {"lesson": str(lesson.path), "compare": compare}, PAIR_COMPONENTS
    if lesson.notice or lesson.try_this:
        panels = [panels[0], lambda _, tick: GuidePanel(lesson), *panels[1:]]
    with solara.Sidebar():
        LessonCard(catalogue, lesson, scenario, compare is None)
        if compare is not None:
            CompareCard(lesson, model.value)
    params = model_params(fixed, scenario, settings)
    SolaraViz(model, components=[], model_params=params, name=TITLE, play_interval=PLAY_INTERVAL_MS)
    Board(model.value, panels)


@solara.component
def Preparing():
    """What the page shows while numba compiles the simulator (the first start with a cold cache)."""
    with solara.AppLayout(title=TITLE):
        with solara.Card("Starting the simulator", classes=["cx-preparing"]):
            solara.ProgressLinear(True)
            Note(
                "numba is compiling the simulator for this machine: about 10-30 s the first time, "
                "after that it loads from its cache in a second or two. The page appears by itself."
            )


def valid_compare(spec: str | None, lesson: Lesson) -> str | None:
    """The chosen contrast if it holds for this lesson (e.g. `control` needs a lesson with one), else the default."""
    if spec is None:
        return None
    try:
        parse_contrast(spec, lesson.path)
    except ScenarioError:
        return DEFAULT_CONTRAST
    return spec


@solara.component
def Page():
    """One AppLayout per lesson, ownership model and contrast: choosing any mounts everything afresh, Mesa's
    sidebar too (its ModelCreator reads the model parameters only when it mounts, and the sidebar lives in the
    layout). Until the simulator is compiled, a note says so."""
    ready, set_ready = solara.use_state(prepared())

    def warm():
        if not ready:
            prepare()
            set_ready(True)

    solara.use_thread(warm, dependencies=[])
    catalogue = solara.use_memo(lessons, [])
    if not ready:
        return Preparing()
    key = chosen_lesson.value if chosen_lesson.value in catalogue else FREE_PLAY
    lesson, ownership = catalogue[key], chosen_ownership.value
    compare = valid_compare(chosen_compare.value, lesson)
    lab = Lab(catalogue, lesson, ownership, compare)
    return solara.AppLayout(children=[lab]).key(f"{key}/{ownership}/{compare}")
