"""Lessons: teaching scenarios in `cxsim/scenarios/lessons/`, each run against its control to show the effect it claims.

A lesson file is a scenario with a `[lesson]` section: `control` (a scenario
path relative to the lesson file) and `expect`, the KPIs that its description
says come out higher or lower than in the control.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cxsim.kpis import KPIS
from cxsim.scenario import SCENARIOS, ScenarioError, late_events, trace_scenario
from cxsim.schema import Scenario
from cxsim.stats import shown

if TYPE_CHECKING:  # `cxsim check` validates lessons without the simulator
    from cxsim.comparison import Comparison

LESSONS = SCENARIOS / "lessons"


def available() -> dict[str, Path]:
    """The bundled lessons by name."""
    return {p.stem: p for p in sorted(LESSONS.glob("*.toml"))}


def locate(name_or_path: str) -> Path:
    """A bundled lesson's name, or a path to a lesson file."""
    lessons = available()
    if name_or_path in lessons:
        return lessons[name_or_path]
    path = Path(name_or_path)
    if path.is_file():
        return path
    raise ScenarioError(f"no lesson {name_or_path!r}: expected a file or one of {', '.join(lessons)}")


def load(path: Path, overrides=(), **options) -> tuple[Scenario, Scenario]:
    """The lesson's scenario and its control, both loaded with the same `--set` overrides and options
    (population, days, ...); everything `cxsim lesson` refuses is refused here (`cxsim check` too)."""
    lesson, traced = trace_scenario(path, overrides, **options)
    if lesson.lesson is None:
        raise ScenarioError(f"{path}: not a lesson: expected a [lesson] section with control and expect")
    unknown = [k for k in lesson.lesson.expect if k not in KPIS]
    if unknown:
        raise ScenarioError(f"{path}: key lesson.expect: unknown KPI {', '.join(unknown)}; known: {', '.join(KPIS)}")
    try:
        control, traced_control = trace_scenario(path.parent / lesson.lesson.control, overrides, **options)
    except ScenarioError as e:
        raise ScenarioError(f"{path}: key lesson.control: {e}") from None
    late = late_events(lesson, traced) + late_events(control, traced_control)
    if late:
        need = max(e.day for e in lesson.events + control.events) + 1
        raise ScenarioError("\n".join(late) + f"\nexpected --days {need} or more: a lesson's claims rest on its events")
    return lesson, control


@dataclass
class Outcome:
    """One claimed effect: the KPI, the claimed direction, the paired difference and whether it shows."""

    kpi: str
    expected: str
    diff: float
    ci95: list
    shown: bool


def outcomes(comparison: Comparison) -> list[Outcome]:
    """Check each claim of the lesson (the comparison's second scenario) against its control (the first)."""
    lesson = comparison.results[1].scenario
    out = []
    for kpi, direction in lesson.lesson.expect.items():
        s = comparison.kpis[kpi][lesson.name]
        out.append(Outcome(kpi, direction, s["diff"], list(s["diff_ci95"]), shown(s["diff_ci95"], direction)))
    return out


def run(
    path: Path, replicates: int | None = None, threads: int | None = None, progress: bool | None = None, **options
) -> tuple[Comparison, list[Outcome]]:
    """Run a lesson and its control with common random numbers; the outcome of each claim."""
    from cxsim.comparison import compare

    lesson, control = load(path, replicates=replicates, **options)  # validated like the scenarios' other keys
    comparison = compare([control, lesson], threads=threads, progress=progress)
    return comparison, outcomes(comparison)
