"""The teaching model: CXModel built from a lesson and the page's controls, keeping what the page shows.

`TeachingModel(lesson=..., ownership=..., ...)` is exactly
`cxsim run LESSON --set ... --population N --seed S --engine E` (see `command_line`);
it only adds read-only records taken after each day: every shown customer's
attitude, state and events (their journey so far) and the open complaints.
"""

from __future__ import annotations

import functools
import math
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxsim import kernel as K
from cxsim import metrics
from cxsim.customers import ring_order
from cxsim.domain import ACTIVE, DEPARTMENTS, NO_DEPT
from cxsim.lessons import LESSONS
from cxsim.model import CXModel
from cxsim.scenario import SCENARIOS, load_scenario
from cxsim.schema import Scenario

FREE_PLAY = "base"  # the key of free play on the base scenario, listed before the lessons
SHOWN = 2500  # customers drawn in the customer view at most: an arc of the network's ring
POPULATIONS = (200, 500, 1000, 2000, 5000, 20_000, 100_000)
CLASSROOM = dict(population=500, engine="agents")  # the page's starting size: every customer a Mesa agent

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
        found[key] = Lesson(key, path, s.name, s.description)
    return found


def lesson_overrides(
    ownership: str | None = None,
    promise_markup: float | None = None,
    handoff_consistency: float | None = None,
    budgets: dict[str, float] | None = None,
) -> list[str]:
    """The page's controls as `--set` overrides; None keeps the lesson's value. The ownership model comes first:
    naming it starts the ownership section from that preset, and markup and handoff then adjust it."""
    sets = [f"ownership.model={ownership}"] if ownership is not None else []
    for key, value in (("promise_markup", promise_markup), ("handoff_consistency", handoff_consistency)):
        if value is not None:
            sets.append(f"ownership.{key}={float(value)!r}")
    for name, budget in (budgets or {}).items():
        if budget is not None:
            sets.append(f"departments.{name}.budget={float(budget)!r}")
    return sets


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
        budgets = dict(
            zip(
                DEPARTMENTS,
                (
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
        start = scenario_of(lesson, ownership)
        self.overrides = [
            o
            for o in lesson_overrides(ownership, promise_markup, handoff_consistency, budgets)
            if o.startswith("ownership.model=") or _value_at(start, o) != float(o.partition("=")[2])
        ]
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

    def step(self):
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
        return K.attitude.py_func(
            pop.satisfaction[rows].astype(float),
            pop.peak[rows].astype(float),
            pop.last[rows].astype(float),
            self.params,
        )

    def daily(self) -> pd.DataFrame:
        """`metrics.daily_table` indexed by day, plus the surveyed NPS to date, the wait in minutes and the
        open complaints."""
        table = metrics.daily_table(self).set_index("day")
        h = self.history[: self.day]
        surveyed = np.cumsum(h[:, [K.TALLY.survey_promoters, K.TALLY.survey_detractors, K.TALLY.surveyed]], axis=0)
        table["nps_survey"] = [metrics.nps_of(*row) for row in surveyed]
        table["wait_minutes"] = table["wait_hours"] * 60.0
        table["open_complaints"] = self.open_complaints[: self.day]
        return table

    def departments_now(self) -> pd.DataFrame:
        """Per department: this year's budget, today's failure rate, churn attributed so far."""
        table = metrics.department_table(self).set_index("department").loc[list(DEPARTMENTS)]
        table["failure_rate"] = self.D[:, K.COL.failure]
        return table[["budget", "failure_rate", "churn_attributed", "failures", "complaints_caused"]]

    def journey(self, j: int) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
        """Shown customer j's attitude day by day so far, and what happened to them, day by day."""
        t = self.day
        days = pd.DataFrame({"day": np.arange(t), "attitude": self.journey_attitude[:t, j]})
        events = self.journey_events[:t, j]
        told = [
            (day, words) for day in np.flatnonzero(events) for bit, words in EVENT_WORDS if events[day] & (1 << bit)
        ]
        return days, told

    def command_line(self) -> str:
        """The `cxsim run` command that gives this very run."""
        s = self.config
        lesson = Path(self.lesson).resolve()  # a file: shown relative to here when it is below here
        if lesson.is_relative_to(Path.cwd()):
            lesson = lesson.relative_to(Path.cwd())
        if not lesson.is_file():  # a bundled scenario's bare name
            lesson = self.lesson
        elif lesson.resolve().parent == SCENARIOS:  # a bundled scenario's file: by its name, which works anywhere
            lesson = lesson.stem
        args = ["cxsim", "run", str(lesson)] + [a for o in self.overrides for a in ("--set", o)]
        args += [
            "--population",
            str(s.market.population),
            "--seed",
            str(self.seed),
            "--engine",
            self.engine,
            "--replicates",
            "1",
        ]
        return shlex.join(args)


def _value_at(scenario: Scenario, override: str):
    """The scenario's value at an override's dotted key (e.g. departments.billing.budget)."""
    return functools.reduce(getattr, override.partition("=")[0].split("."), scenario)


def budget_slider_range(budget: float) -> tuple[int, int, int]:
    """(min, max, step) of a budget slider for a lesson's budget: zero to three times it, in round steps."""
    top = max(3.0 * budget, 100_000.0)
    step = 10 ** max(3, int(math.log10(top / 60)))
    return 0, int(math.ceil(top / step) * step), step


def scenario_of(lesson: str | Path, ownership: str | None) -> Scenario:
    """The lesson's scenario with the chosen ownership model (what the controls start from)."""
    return load_scenario(lesson, lesson_overrides(ownership))
