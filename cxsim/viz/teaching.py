"""The teaching models: CXModel built from a lesson and the page's controls, keeping what the page shows.

`TeachingModel(lesson=..., ownership=..., ...)` is exactly
`cxsim run LESSON --set ... --population N --seed S --engine E` (see `command_line`);
it only adds read-only records taken after each day: every shown customer's
attitude, state and events (their journey so far) and the open complaints.

`PairModel(lesson=..., compare=...)` is two of them stepping in lock-step: the same
lesson, market, seed, population and engine, differing only in the contrast
(`parse_contrast`), so both meet the same customers with the same luck; it is the
first replicate of the `cxsim compare` command it prints (`compare_command`).
"""

from __future__ import annotations

import functools
import math
import os
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

import mesa
import numpy as np
import pandas as pd

from cxsim import kernel as K
from cxsim import metrics
from cxsim.customers import ring_order
from cxsim.domain import ACTIVE, DEPARTMENTS, NO_DEPT
from cxsim.lessons import LESSONS
from cxsim.model import CXModel
from cxsim.presets import PRESETS
from cxsim.scenario import SCENARIOS, ScenarioError, load_scenario
from cxsim.schema import Scenario

FREE_PLAY = "base"  # the key of free play on the base scenario, listed before the lessons
SHOWN = 2500  # customers drawn in the customer view at most: an arc of the network's ring
POPULATIONS = (200, 500, 1000, 2000, 5000, 20_000, 100_000)
CLASSROOM = dict(population=500, engine="agents")  # the page's starting size: every customer a Mesa agent
DEFAULT_CONTRAST = "cco_led,siloed"  # what side-by-side mode compares first
REPLICATES = 10  # the replicates of the printed `cxsim compare` command

# the page's sliders that change the scenario: keyword -> the scenario key it sets
SETTINGS = {
    "promise_markup": "ownership.promise_markup",
    "handoff_consistency": "ownership.handoff_consistency",
    **{f"{d}_budget": f"departments.{d}.budget" for d in DEPARTMENTS},
}

# what a day's event bits say about a customer, in the order a journey tells them
EVENT_WORDS = (
    [(K.EVENT.acquired, "became a customer"), (K.EVENT.lost_sale, "tried to buy, the sale failed")]
    + [(K.EVENT.failed + k, f"{d} failed them") for k, d in enumerate(DEPARTMENTS)]
    + [
        (K.EVENT.new_complaint, "complained"),
        (K.EVENT.handoff_lost, "a handoff lost their context"),
        (K.EVENT.repeat_contact, "had to contact service again"),
        (K.EVENT.abandoned, "gave up waiting in the queue"),
        (K.EVENT.resolved, "complaint resolved"),
        (K.EVENT.gave_up, "gave up on the complaint"),
        (K.EVENT.wom_positive, "spoke well of the firm"),
        (K.EVENT.wom_negative, "spoke badly of the firm"),
        (K.EVENT.surveyed, "answered a survey"),
        (K.EVENT.churned, "left"),
    ]
)


@dataclass(frozen=True)
class Lesson:
    key: str
    path: Path
    name: str
    description: str
    control: Path | None = None  # the `[lesson]` control's file
    notice: tuple[str, ...] = ()
    try_this: tuple[str, ...] = ()


def lessons_dir() -> Path:
    """Where lessons are read from: $CXSIM_LESSONS, else the bundled lessons."""
    return Path(os.environ.get("CXSIM_LESSONS") or LESSONS)


def lessons(directory: Path | None = None) -> dict[str, Lesson]:
    """Free play on the base scenario, then every lesson file (`*.toml`) in the directory, by file name.

    Each file is validated here, so a broken lesson is a clear `ScenarioError` naming it.
    """
    directory = lessons_dir() if directory is None else Path(directory)
    files = [SCENARIOS / f"{FREE_PLAY}.toml"] + sorted(directory.glob("*.toml"))
    found = {}
    for path in files:
        s = load_scenario(path)
        key = FREE_PLAY if path.parent == SCENARIOS else path.stem
        found[key] = Lesson(key, path, s.name, s.description, *_guide(path, s))
    return found


def _guide(path: Path, s: Scenario) -> tuple:
    """A lesson file's control, things to notice and things to try (nothing for a plain scenario)."""
    if s.lesson is None:
        return None, (), ()
    return path.parent / s.lesson.control, s.lesson.notice, s.lesson.try_this


def lesson_overrides(ownership: str | None = None, settings: dict[str, float | None] | None = None) -> list[str]:
    """The page's controls (`SETTINGS` keywords) as `--set` overrides; None keeps the lesson's value. The ownership
    model comes first: naming it starts the ownership section from that preset, and the settings then adjust it."""
    sets = [f"ownership.model={ownership}"] if ownership is not None else []
    return sets + [f"{SETTINGS[k]}={float(v)!r}" for k, v in (settings or {}).items() if v is not None]


class TeachingModel(CXModel):
    """A classroom run of a lesson; every keyword is one control of the page (Mesa rebuilds it on Reset).

    A control left at the lesson's value adds no override (the command line stays short).

    Budgets are per year for the lesson's own market size, as in the lesson file;
    like `--population`, the population scales them and the initial customers.
    """

    def __init__(
        self,
        lesson: str = FREE_PLAY,
        ownership: str | None = None,
        promise_markup: float | None = None,
        handoff_consistency: float | None = None,
        marketing_budget: float | None = None,
        sales_budget: float | None = None,
        digital_budget: float | None = None,
        product_budget: float | None = None,
        fulfilment_budget: float | None = None,
        billing_budget: float | None = None,
        service_budget: float | None = None,
        population: int = CLASSROOM["population"],
        seed: int = 42,
        engine: str = CLASSROOM["engine"],
    ):
        settings = dict(
            zip(
                SETTINGS,
                (
                    promise_markup,
                    handoff_consistency,
                    marketing_budget,
                    sales_budget,
                    digital_budget,
                    product_budget,
                    fulfilment_budget,
                    billing_budget,
                    service_budget,
                ),
                strict=True,
            )
        )
        self.lesson = lesson
        self.overrides = lesson_overrides(ownership, moved(scenario_of(lesson, ownership), settings))
        scenario = load_scenario(
            lesson, self.overrides, population=int(population), seed=int(seed), engine=engine, replicates=1
        )
        super().__init__(scenario)
        n, days = scenario.market.population, scenario.days
        self.shown = ring_order(n, self.seed)[:SHOWN]  # drawn customers, in ring order: neighbours side by side
        k = len(self.shown)
        self.journey_attitude = np.zeros((days, k), np.float32)
        self.journey_events = np.zeros((days, k), np.uint32)
        self.open_complaints = np.zeros(days)
        self._today: dict[str, tuple[int, object]] = {}  # name -> (day, table): computed once a day
        # a day is stepped under this lock, and what the page reads is read under it: the page may redraw
        # (a click) while Play steps the next day in another thread
        self.lock = threading.RLock()

    def step(self):
        with self.lock:
            t = self.day
            super().step()
            pop, rows = self.population, self.shown
            self.journey_attitude[t] = self.attitudes()
            self.journey_events[t] = pop.events[rows]
            self.open_complaints[t] = np.count_nonzero((pop.state == ACTIVE) & (pop.complaint != NO_DEPT))

    # --- what the page reads (nothing below changes the model)

    def attitudes(self) -> np.ndarray:
        """Today's attitude of the shown customers (the kernel's own formula)."""
        pop, rows = self.population, self.shown
        with self.lock:
            return K.attitude.py_func(
                pop.satisfaction[rows].astype(float),
                pop.peak[rows].astype(float),
                pop.last[rows].astype(float),
                self.params,
            )

    def once_a_day(self, name: str, compute):
        """`compute()`, computed once a day for every panel that reads it (do not modify what it returns)."""
        with self.lock:
            day, value = self._today.get(name, (-1, None))
            if day != self.day:
                value = compute()
                self._today[name] = (self.day, value)
            return value

    def daily(self) -> pd.DataFrame:
        """`metrics.daily_table` indexed by day, plus the surveyed NPS to date, the wait in minutes and the
        open complaints."""
        return self.once_a_day("daily", self._daily_table)

    def _daily_table(self) -> pd.DataFrame:
        table = metrics.daily_table(self).set_index("day")
        h = self.history[: self.day]
        surveyed = np.cumsum(h[:, [K.TALLY.survey_promoters, K.TALLY.survey_detractors, K.TALLY.surveyed]], axis=0)
        table["nps_survey"] = [metrics.nps_of(*row) for row in surveyed]
        table["wait_minutes"] = table["wait_hours"] * 60.0
        table["open_complaints"] = self.open_complaints[: self.day]
        return table

    def departments_now(self) -> pd.DataFrame:
        """Per department: this year's budget, today's failure rate, churn attributed so far."""
        return self.once_a_day("departments", self._departments_table)

    def _departments_table(self) -> pd.DataFrame:
        table = metrics.department_table(self).set_index("department").loc[list(DEPARTMENTS)]
        table["failure_rate"] = self.D[:, K.COL.failure]
        return table[["budget", "failure_rate", "churn_attributed", "failures", "complaints_caused"]]

    def journey(self, j: int) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
        """Shown customer j's attitude day by day so far, and what happened to them, day by day."""
        with self.lock:
            t = self.day
            days = pd.DataFrame({"day": np.arange(t), "attitude": self.journey_attitude[:t, j].copy()})
            events = self.journey_events[:t, j].copy()
        told = [
            (day, words) for day in np.flatnonzero(events) for bit, words in EVENT_WORDS if events[day] & (1 << bit)
        ]
        return days, told

    def command_line(self) -> str:
        """The `cxsim run` command that gives this very run."""
        args = ["cxsim", "run", shown_path(self.lesson)] + [a for o in self.overrides for a in ("--set", o)]
        args += ["--population", str(self.config.market.population), "--seed", str(self.seed)]
        return shlex.join(args + ["--engine", self.engine, "--replicates", "1"])


def shown_path(lesson: str | Path) -> str:
    """A scenario as a command line names it: a bundled one by its name (which works anywhere), a file
    relative to here when it is below here."""
    path = Path(lesson).resolve()
    if not path.is_file():  # a bundled scenario's bare name
        return str(lesson)
    if path.parent == SCENARIOS:
        return path.stem
    return str(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)


def _value_at(scenario: Scenario, key: str):
    """The scenario's value at a dotted key (e.g. departments.billing.budget)."""
    return functools.reduce(getattr, key.split("."), scenario)


def moved(start: Scenario, settings: dict[str, float | None]) -> dict[str, float]:
    """The settings that differ from the scenario's own values (a control left where it starts adds nothing)."""
    return {k: float(v) for k, v in settings.items() if v is not None and _value_at(start, SETTINGS[k]) != float(v)}


@dataclass(frozen=True)
class Contrast:
    """What differs between the two sides of a pair: per side its lesson file, ownership model (None: the lesson's
    own) and settings; `labels` name the sides; `vary` is the `cxsim compare --vary` that makes the same two."""

    spec: str
    kind: str  # "ownership" | "control" | "setting"
    lessons: tuple[str, str]
    ownership: tuple[str | None, str | None]
    settings: tuple[dict, dict]
    labels: tuple[str, str]
    vary: str | None


CONTRAST_FORMS = (
    "two ownership models A,B (e.g. cco_led,siloed; known: {presets}), `control` (the lesson against its "
    "[lesson] control), or SETTING=VALUE (one setting moved on the second side; settings: {settings})"
)


def parse_contrast(spec: str, lesson: str | Path, shared: dict[str, float] | None = None) -> Contrast:
    """`--compare SPEC` for a lesson: `A,B` (ownership models), `control` or `SETTING=VALUE`; a clear
    `ScenarioError` naming what was expected otherwise. `shared`: settings moved on both sides (side A's
    value of a setting contrast)."""
    forms = CONTRAST_FORMS.format(presets=", ".join(PRESETS), settings=", ".join(SETTINGS))
    text, path = spec.strip(), str(lesson)
    if text == "control":
        s = load_scenario(lesson)
        if s.lesson is None:
            what = f"{s.name} is not a lesson with a [lesson] control"
            raise ScenarioError(f"--compare control: {what}; expected {forms}")
        control = str(Path(lesson).parent / s.lesson.control)
        name = load_scenario(control).name
        return Contrast(text, "control", (control, path), (None, None), ({}, {}), (name, s.name), None)
    if "," in text:
        names = [n.strip() for n in text.split(",")]
        if len(names) != 2 or not all(n in PRESETS for n in names):
            raise ScenarioError(f"--compare {spec}: expected {forms}")
        a, b = names
        labels = (a, b) if a != b else (f"{a} (A)", f"{b} (B)")
        return Contrast(text, "ownership", (path, path), (a, b), ({}, {}), labels, f"ownership.model={a},{b}")
    name, sep, value = text.partition("=")
    name = name.strip()
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or name not in SETTINGS or not math.isfinite(number):
        raise ScenarioError(f"--compare {spec}: expected {forms}")
    try:  # a value out of range: the key's own message
        load_scenario(lesson, lesson_overrides(None, {name: number}))
    except ScenarioError as e:
        raise ScenarioError(f"--compare {spec}: {e}") from None
    start = (shared or {}).get(name, float(_value_at(scenario_of(lesson, None), SETTINGS[name])))
    labels = (f"{name} {start:g}", f"{name} {number:g}")
    vary = f"{SETTINGS[name]}={start!r},{number!r}"
    return Contrast(text, "setting", (path, path), (None, None), ({}, {name: number}), labels, vary)


class PairModel(mesa.Model):
    """Two teaching models stepping in lock-step, differing only in the contrast (`parse_contrast`).

    Both have the same population, seed and engine, hence the same customers, network and random
    numbers. A setting moved away from side A's starting value applies to both sides (the contrast's
    own setting wins on side B). Ownership contrasts leave markup and handoff to each preset.
    """

    def __init__(
        self,
        lesson: str = FREE_PLAY,
        compare: str = DEFAULT_CONTRAST,
        population: int = CLASSROOM["population"],
        seed: int = 42,
        engine: str = CLASSROOM["engine"],
        **settings,
    ):
        super().__init__()
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(f"PairModel: unknown settings {', '.join(unknown)}")
        self.lesson = lesson
        c = parse_contrast(compare, lesson)
        self.shared = moved(scenario_of(c.lessons[0], c.ownership[0]), settings)
        self.contrast = c = parse_contrast(compare, lesson, self.shared) if c.kind == "setting" else c
        self.sides = tuple(
            TeachingModel(
                lesson=c.lessons[k],
                ownership=c.ownership[k],
                **{**self.shared, **c.settings[k]},
                population=population,
                seed=seed,
                engine=engine,
            )
            for k in (0, 1)
        )
        self.day = 0
        self.running = True

    def step(self):
        for side in self.sides:
            side.step()
        self.day = self.sides[0].day
        self.running = all(side.running for side in self.sides)

    def compare_command(self) -> str:
        """The `cxsim compare` command that runs this pair over replicates (its first replicate is this run)."""
        c, a = self.contrast, self.sides[0]
        if c.kind == "control":
            args = ["cxsim", "compare", shown_path(c.lessons[0]), shown_path(c.lessons[1])]
        else:
            args = ["cxsim", "compare", shown_path(c.lessons[0]), "--vary", c.vary]
        args += [x for o in lesson_overrides(None, self.shared) for x in ("--set", o)]
        args += ["--population", str(a.config.market.population), "--seed", str(a.seed)]
        return shlex.join(args + ["--replicates", str(REPLICATES)])


_prepared = threading.Event()
_preparing = threading.Lock()


def prepared() -> bool:
    return _prepared.is_set()


def prepare() -> None:
    """Compile the simulator once per process (numba, or its cache): a tiny model built and stepped in each engine."""
    with _preparing:
        if not _prepared.is_set():
            for engine in ("agents", "numba"):
                TeachingModel(population=200, engine=engine).step()
            _prepared.set()


def budget_slider_range(budget: float) -> tuple[int, int, int]:
    """(min, max, step) of a budget slider for a lesson's budget: zero to three times it, in round steps."""
    top = max(3.0 * budget, 100_000.0)
    step = 10 ** max(3, int(math.log10(top / 60)))
    return 0, int(math.ceil(top / step) * step), step


def scenario_of(lesson: str | Path, ownership: str | None) -> Scenario:
    """The lesson's scenario with the chosen ownership model (what the controls start from)."""
    return load_scenario(lesson, lesson_overrides(ownership))
