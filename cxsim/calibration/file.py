"""The calibration file (TOML): the scenario to fit, the parameters with their prior ranges, the targets with
their error models. Validated as scenarios are: every error names the file, the key and what was expected,
and nothing is computed or written before the whole file has passed.

    scenario = "base"                   # a bundled scenario or a path (relative to this file)
    days = 365
    replicates = 4                      # runs per trial, the same seeds for every trial
    method = "optimize"                 # or "abc"
    [parameters]
    "customers.complaint_propensity" = { low = 0.05, high = 0.6 }
    [targets.monthly_churn]
    value = 0.014
    kind = "rate"
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cxsim.calibration.targets import PER_YEAR, PERCENT, TARGETS, Observation, month_bounds
from cxsim.scenario import (
    ScenarioError,
    _did_you_mean,
    _locate,
    describe_error,
    flatten,
    key_type,
    load_scenario,
    read_toml,
)
from cxsim.schema import Scenario

KINDS = ("rate", "count", "survey_nps", "normal")
FIELDS_OF = {  # the fields each kind takes besides value, series and holdout_months
    "rate": ("denominator",),
    "count": ("dispersion", "exposure"),
    "survey_nps": ("responses", "promoters"),
    "normal": ("sigma",),
}
OPTIMIZE_KEYS = ("trials", "batch", "sampler", "rerun_top", "rerun_replicates")
ABC_KEYS = ("particles", "generations", "acceptance", "min_epsilon")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Prior(_Strict):
    """A parameter's prior: uniform on [low, high], or log-uniform with `log = true`."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"expected low < high, got low = {self.low:g}, high = {self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log prior needs low > 0, got low = {self.low:g}")
        return self


class TargetSpec(_Strict):
    """One number (or monthly series) of the user's and its error model."""

    kind: Literal["rate", "count", "survey_nps", "normal"]
    value: float | None = None
    denominator: Annotated[float, Field(gt=0)] | None = None
    responses: Annotated[int, Field(ge=1)] | None = None
    promoters: Annotated[float, Field(ge=0, le=1)] | None = None
    sigma: Annotated[float, Field(gt=0)] | None = None
    dispersion: Annotated[float, Field(gt=0)] | None = None
    exposure: Annotated[float, Field(gt=0)] | None = None
    series: str | None = None
    holdout_months: Annotated[int, Field(ge=0)] = 0


class CalibrationFile(_Strict):
    name: str = ""
    description: str = ""
    scenario: str = "base"
    days: Annotated[int, Field(ge=1, le=36500)] = 365
    replicates: Annotated[int, Field(ge=1, le=1000)] = 4
    method: Literal["optimize", "abc"] = "optimize"
    seed: Annotated[int, Field(ge=0, lt=2**62)] = 1
    population: Annotated[int, Field(ge=3)] | None = None
    # optimize
    trials: Annotated[int, Field(ge=1, le=100_000)] = 100
    batch: Annotated[int, Field(ge=1, le=1000)] = 8
    sampler: Literal["tpe", "cmaes"] = "tpe"
    rerun_top: Annotated[int, Field(ge=1, le=100)] = 5
    rerun_replicates: Annotated[int, Field(ge=1, le=1000)] | None = None
    # abc
    particles: Annotated[int, Field(ge=4, le=100_000)] = 100
    generations: Annotated[int, Field(ge=1, le=100)] = 6
    acceptance: Literal["likelihood", "distance"] = "likelihood"  # docs/CALIBRATION.md "abc"
    min_epsilon: Annotated[float, Field(ge=0)] = 0.0  # acceptance = "distance" only
    parameters: dict[str, Prior]
    targets: dict[str, TargetSpec]


@dataclass
class Parameter:
    key: str  # dotted scenario key
    low: float
    high: float
    log: bool
    integer: bool

    def clip(self, x: float) -> float | int:
        x = min(max(float(x), self.low), self.high)
        return int(round(x)) if self.integer else x

    def unit(self, x: float) -> float:
        """A value as a share of the prior's width, on [0, 1] (log10 for a log prior)."""
        f = math.log10 if self.log else float
        x = min(max(float(x), self.low), self.high)
        return (f(x) - f(self.low)) / (f(self.high) - f(self.low))

    def from_unit(self, u: float) -> float | int:
        """The value at share `u` of the prior's width (clipped to [0, 1]; rounded for a whole-number key)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            return self.clip(10 ** (math.log10(self.low) + u * (math.log10(self.high) - math.log10(self.low))))
        return self.clip(self.low + u * (self.high - self.low))


@dataclass
class TargetData:
    """A validated target: its observation (scalar) or one observation per month (series)."""

    name: str
    observation: Observation | None  # the scalar target (None for a series)
    months: list[int] = field(default_factory=list)  # 1-based months of the series
    monthly: list[Observation] = field(default_factory=list)
    holdout: int = 0  # the last `holdout` months are not fitted

    @property
    def fitted_months(self) -> list[int]:
        return self.months[: len(self.months) - self.holdout]


@dataclass
class Calibration:
    """A calibration file, validated, with its scenario resolved and its series read."""

    path: Path
    file: CalibrationFile
    scenario: Scenario  # the resolved scenario (population, days applied)
    scenario_ref: str  # how calibrated.toml extends it: a bundled name or an absolute path
    parameters: list[Parameter]
    targets: list[TargetData]
    population: int | None  # --population or the file's, as applied
    warnings: list[str] = field(default_factory=list)  # valid but doubtful: said on stderr

    @property
    def scale(self) -> float:
        """Counts and money of the sample times this are the represented market's (`market.represents`)."""
        return self.scenario.market.scale

    def header(self) -> dict:
        """What every summary of this calibration starts with: the file, its scenario and its runs."""
        m = self.scenario.market
        return {
            "method": self.file.method,
            "file": str(self.path),
            "scenario": self.scenario.name,
            "population": m.population,
            "represents": m.represents or m.population,
            "days": self.file.days,
            "replicates": self.file.replicates,
            "seed": self.file.seed,
        }

    @property
    def n_months(self) -> int:
        return len(month_bounds(self.file.days))

    def identity(self) -> str:
        """What decides the calibration's results: a resumed calibration must have the same."""
        # how long it runs and how it is summed up may change on --resume: more trials or generations extend it
        extend = {"trials", "generations", "min_epsilon", "rerun_top", "rerun_replicates", "name", "description"}
        what = {
            "file": self.file.model_dump(mode="json", exclude=extend),
            "scenario": self.scenario.model_dump(mode="json"),
            "series": {t.name: [o.value for o in t.monthly] for t in self.targets if t.monthly},
        }
        return json.dumps(what, sort_keys=True)

    def scenario_with(self, values: dict[str, float]) -> Scenario:
        """The scenario with the parameters set to `values` (dotted key -> value, in the file scenario's units)."""
        return load_scenario(
            _locate_scenario(self),
            [("parameters", f"{k}={_toml_number(v)}") for k, v in values.items()],
            population=self.population,
            days=self.file.days,
        )


def _locate_scenario(cal: Calibration) -> str:
    return cal.scenario_ref


def _toml_number(v) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return repr(float(v))


def load_calibration(path: str | Path, population: int | None = None) -> Calibration:
    """Read and validate a calibration file; `population` (--population) overrides the file's."""
    file = Path(path)
    label = str(path)
    data = read_toml(file, label, f"cannot read calibration file {label}: ")
    try:
        cf = CalibrationFile.model_validate_json(json.dumps(data, default=str))
    except ValidationError as e:
        raise ScenarioError("\n".join(_describe(err, label) for err in e.errors(include_url=False))) from None
    _method_keys(cf, data, label)
    if not cf.parameters:
        raise ScenarioError(f"{label}: key parameters: expected at least one parameter with a prior range")
    if not cf.targets:
        raise ScenarioError(f"{label}: key targets: expected at least one target, e.g. [targets.monthly_churn]")
    ref = cf.scenario
    if "/" in ref or ref.endswith(".toml"):
        ref = str((file.parent / ref).resolve())
    try:
        _locate(ref)
        if population is not None and population < 3:
            raise ScenarioError(f"--population: expected a whole number of people >= 3, got {population}")
        pop = population if population is not None else cf.population
        scenario = load_scenario(ref, population=pop, days=cf.days)
    except ScenarioError as e:
        raise ScenarioError(f"{label}: key scenario: {e}") from None
    parameters = [_parameter(label, key, prior, ref, pop, cf.days) for key, prior in cf.parameters.items()]
    cal = Calibration(file, cf, scenario, ref, parameters, [], pop)
    cal.targets = [_target(label, file, name, spec, cal) for name, spec in cf.targets.items()]
    if cal.scale == 1.0:
        for t in cal.targets:
            if TARGETS[t.name].scaled:
                cal.warnings.append(
                    f"{label}: key targets.{t.name}: a {TARGETS[t.name].unit} over the run is compared at the "
                    f"simulated scale ({cal.scenario.market.population:,} people): set market.represents in the "
                    "scenario to the people of your market to compare your own figure, or use a per-customer rate"
                )
    return cal


def _method_keys(cf: CalibrationFile, data: dict, label: str) -> None:
    other = ABC_KEYS if cf.method == "optimize" else OPTIMIZE_KEYS
    for key in other:
        if key in data:
            raise ScenarioError(
                f'{label}: key {key}: only for method = "{"abc" if cf.method == "optimize" else "optimize"}"; '
                f'this file has method = "{cf.method}"'
            )
    if cf.method == "abc" and cf.acceptance == "likelihood" and "min_epsilon" in data:
        raise ScenarioError(
            f'{label}: key min_epsilon: only for acceptance = "distance" (a distance threshold); acceptance = '
            '"likelihood" anneals a temperature to 1 over the generations and has no threshold'
        )


def _parameter(label: str, key: str, prior: Prior, ref: str, population, days) -> Parameter:
    where = f'{label}: key parameters."{key}"'
    t = key_type(key) if re.fullmatch(r"[A-Za-z0-9_.-]+", key) else None
    if t is None:
        numeric = [k for k, v in flatten(Scenario().model_dump(mode="json")).items() if _is_number(v)]
        raise ScenarioError(f"{where}: not a scenario key{_did_you_mean(key, numeric)}")
    if t is bool or t not in (int, float):
        raise ScenarioError(f"{where}: expected a numeric scenario key (a number to fit), but {key} is not a number")
    integer = t is int
    if integer and not (prior.low.is_integer() and prior.high.is_integer()):
        raise ScenarioError(f"{where}: {key} is a whole number: expected whole-number low and high")
    for end, value in (("low", prior.low), ("high", prior.high)):
        try:
            load_scenario(
                ref,
                [("prior", f"{key}={_toml_number(int(value) if integer else value)}")],
                population=population,
                days=days,
            )
        except ScenarioError as e:
            why = re.sub(r"^.*?: key [^:]+: ", "", str(e).splitlines()[0])
            raise ScenarioError(
                f"{where}: the prior range [{prior.low:g}, {prior.high:g}] leaves the scenario's range: "
                f"{end} = {value:g}: {why}"
            ) from None
    return Parameter(key, prior.low, prior.high, prior.log, integer)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _target(label: str, file: Path, name: str, spec: TargetSpec, cal: Calibration) -> TargetData:
    where = f"{label}: key targets.{name}"
    t = TARGETS.get(name)
    if t is None:
        raise ScenarioError(f"{where}: unknown target{_did_you_mean(name, list(TARGETS))}; known: {', '.join(TARGETS)}")
    if spec.kind not in t.kinds:
        raise ScenarioError(
            f"{where}.kind: {name} is a {t.unit}: expected one of {', '.join(repr(k) for k in t.kinds)}, "
            f"got {spec.kind!r}"
        )
    given = {
        k
        for k in ("denominator", "responses", "promoters", "sigma", "dispersion", "exposure")
        if getattr(spec, k) is not None
    }
    for key in sorted(given - set(FIELDS_OF[spec.kind])):
        takes = ", ".join(FIELDS_OF[spec.kind])
        raise ScenarioError(f"{where}.{key}: not a field of kind = {spec.kind!r} (it takes {takes})")
    if spec.kind == "normal" and spec.sigma is None:
        raise ScenarioError(f"{where}.sigma: missing: kind = 'normal' needs sigma, the value's standard deviation")
    if spec.kind == "survey_nps" and spec.responses is None:
        raise ScenarioError(f"{where}.responses: missing: kind = 'survey_nps' needs responses, the survey's answers")
    if spec.exposure is not None and t.unit != PER_YEAR:
        raise ScenarioError(f"{where}.exposure: only for a per-customer-year rate; {name} is a {t.unit}")
    if spec.series is None:
        if spec.value is None:
            raise ScenarioError(f'{where}.value: missing: expected the observed value (or series = "FILE.csv")')
        if spec.holdout_months:
            raise ScenarioError(f'{where}.holdout_months: only for a series target (series = "FILE.csv")')
        _check_value(f"{where}.value", name, spec, spec.value)
        return TargetData(name, _observation(t, spec, spec.value))
    if spec.value is not None:
        raise ScenarioError(f"{where}: expected value or series, not both")
    if t.series is None:
        monthly = [k for k, v in TARGETS.items() if v.series]
        raise ScenarioError(f"{where}.series: {name} has no monthly series; targets with one: {', '.join(monthly)}")
    csv_path = file.parent / spec.series
    months, values = _read_series(csv_path, f"{where}.series: {spec.series}", name, spec)
    n = cal.n_months
    if months[-1] > n:
        raise ScenarioError(
            f"{where}.series: {spec.series}: month {months[-1]} lies after the run's last whole month, {n} "
            f"(days = {cal.file.days}; a month is 365/12 days)"
        )
    if spec.holdout_months >= len(months):
        raise ScenarioError(
            f"{where}.holdout_months: expected fewer than the series' {len(months)} months, got {spec.holdout_months}"
        )
    obs = [_observation(t, spec, v) for v in values]
    return TargetData(name, None, months, obs, spec.holdout_months)


def _check_value(where: str, name: str, spec: TargetSpec, value: float) -> None:
    t = TARGETS[name]
    lo, hi = t.range
    if not lo <= value <= hi:
        what = {PERCENT: "a percentage"}.get(t.unit, f"a {t.unit}")
        raise ScenarioError(
            f"{where}: the model cannot produce {value:g}: {name} is {what} in [{lo:g}, {hi:g}]"
            + (" (a rate is a share: 1.4 % is 0.014)" if t.unit == "share" and value > 1 else "")
        )
    if (
        spec.kind == "survey_nps"
        and spec.promoters is not None
        and not (0 <= spec.promoters - value / 100.0 <= 1 - spec.promoters + 1e-12)
    ):
        raise ScenarioError(
            f"{where}: NPS {value:g} with promoters {spec.promoters:g} leaves a detractor share of "
            f"{spec.promoters - value / 100:g}: expected one in [0, {1 - spec.promoters:g}]"
        )


def _observation(t, spec: TargetSpec, value: float) -> Observation:
    return Observation(
        t,
        spec.kind,
        float(value),
        spec.denominator,
        None if spec.responses is None else float(spec.responses),
        spec.promoters,
        spec.sigma,
        spec.dispersion,
        spec.exposure,
    )


def _read_series(path: Path, where: str, name: str, spec: TargetSpec) -> tuple[list[int], list[float]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{where}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows or [c.strip() for c in rows[0]] != ["month", "value"]:
        raise ScenarioError(f"{where}: expected a CSV file with the header month,value")
    months, values = [], []
    for i, row in enumerate(rows[1:], start=2):
        try:
            m, v = int(row[0]), float(row[1])
            if len(row) != 2 or m < 1 or not math.isfinite(v):
                raise ValueError
        except (ValueError, IndexError):
            raise ScenarioError(
                f"{where}: line {i}: expected a month (1, 2, ... from the run's start) and a finite value, got {row}"
            ) from None
        if months and m <= months[-1]:
            raise ScenarioError(f"{where}: line {i}: months must rise, got {m} after {months[-1]}")
        _check_value(f"{where}: line {i}", name, spec, v)
        months.append(m)
        values.append(v)
    if not months:
        raise ScenarioError(f"{where}: expected at least one month")
    return months, values


def _describe(err: dict, label: str) -> str:
    dotted = ".".join(f'"{p}"' if "." in str(p) else str(p) for p in err["loc"]) or "(top level)"
    return describe_error(err, f"{label}: key {dotted}: ", _fields)


def _fields(loc: tuple) -> list[str]:
    if not loc:
        return list(CalibrationFile.model_fields)
    if loc[0] == "parameters" and len(loc) == 2:
        return list(Prior.model_fields)
    if loc[0] == "targets" and len(loc) == 2:
        return list(TargetSpec.model_fields)
    return []
