"""Sweep files (TOML): a base scenario, parameters, a design; validated, then expanded into runs.

A run is a pure function of its fully resolved scenario (which carries its
seed); its id is a hash of that scenario and the model version, so the same
sweep file always gives the same runs with the same ids.

    name = "service vs marketing budget"
    scenario = "base"                 # a bundled name or a path relative to this file
    population = 5000                 # optional: like `cxsim run --population` (budgets scale too)
    days = 365                        # optional
    seed = 1                          # replicate r runs with seed + r (common random numbers)
    replicates = 3
    kpis = ["retention", "profit"]    # default: every KPI in cxsim.kpis.KPIS
    daily = false                     # keep one row per run-day as well

    [set]                             # inline overrides of the scenario (dotted keys)
    "customers.complaint_propensity" = 0.3

    [design]
    kind = "grid"                     # grid | latin_hypercube | sobol | morris | random
    samples = 64                      # rows (latin_hypercube, random); N (sobol); trajectories (morris)
    by = ["ownership.model"]          # optional: repeat the design for each value of these parameters

    [parameters]
    "departments.service.budget" = { range = [5e5, 3e6], steps = 6 }
    "ownership.model" = ["cmo_led", "cco_led"]
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cxsim.kpis import KPIS
from cxsim.scenario import EXPECTED, ScenarioError, flatten, key_type, load_scenario, parse_setting, read_toml

Scalar = bool | int | float | str
SPEC_FIELDS = {"values", "range", "steps", "log"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Parameter(_Strict):
    """Either a list of values, or a numeric range (with `steps` for a grid, `log` for a log scale).

    A value's type is its scenario key's (`cxsim.scenario.key_type`), however the file writes it:
    `market.promise = { range = [0, 1], steps = 5 }` gives 0.0, 0.25, ... 1.0."""

    values: tuple[Scalar, ...] | None = None
    range: tuple[float, float] | None = None
    steps: Annotated[int, Field(ge=2, le=10_000)] | None = None
    log: bool = False

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.values is None) == (self.range is None):
            raise ValueError("give either `values` (a list) or `range` ([low, high])")
        if self.values is not None and not self.values:
            raise ValueError("`values` must not be empty")
        if self.range is not None:
            lo, hi = self.range
            if not lo < hi:
                raise ValueError(f"`range` must be [low, high] with low < high, got {list(self.range)}")
            if self.log and lo <= 0:
                raise ValueError(f"a log range must be positive, got {list(self.range)}")
        elif self.steps is not None or self.log:
            raise ValueError("`steps` and `log` apply to a `range`, not to `values`")
        return self

    @property
    def constant(self) -> bool:
        """A one-valued list: the same value at every point, never a factor of the design."""
        return self.values is not None and len(self.values) == 1

    def at(self, u: float, kind) -> Scalar:
        """The value at position u in [0, 1] for a key of type `kind`: a share of the range (rounded for an
        integer key), or the n-th of n values."""
        if self.values is not None:
            return self._typed(self.values[min(int(u * len(self.values)), len(self.values) - 1)], kind)
        lo, hi = self.range
        x = lo * (hi / lo) ** u if self.log else lo + u * (hi - lo)
        return round(x) if kind is int else float(x)

    def grid(self, kind) -> list[Scalar]:
        if self.values is not None:
            return [self._typed(v, kind) for v in self.values]
        return [self.at(u, kind) for u in np.linspace(0.0, 1.0, self.steps)]

    def corners(self, kind) -> list[Scalar]:
        return self.grid(kind) if self.values is not None else [self.at(0.0, kind), self.at(1.0, kind)]

    @staticmethod
    def _typed(value: Scalar, kind) -> Scalar:
        """A whole number given for a float key is that float."""
        return float(value) if kind is float and type(value) is int else value


class Design(_Strict):
    kind: Literal["grid", "latin_hypercube", "sobol", "morris", "random"] = "grid"
    samples: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    levels: Annotated[int, Field(ge=2, le=100)] = 4
    second_order: bool = False
    by: tuple[str, ...] = ()


class Cluster(_Strict):
    """Batch-job settings for `--cluster slurm|pbs|sge|lsf|htcondor` (flags override them)."""

    queue: str | None = None
    account: str | None = None
    cores: Annotated[int, Field(ge=1)] = 1
    processes: Annotated[int, Field(ge=1)] | None = None
    memory: str = "2GB"
    walltime: str = "01:00:00"
    jobs: Annotated[int, Field(ge=1)] = 1
    disk: str = "1GB"  # HTCondor asks for it
    interface: str | None = None
    job_extra_directives: tuple[str, ...] = ()
    job_script_prologue: tuple[str, ...] = ()


class Sweep(_Strict):
    name: str = "sweep"
    description: str = ""
    scenario: str = "base"
    population: Annotated[int, Field(ge=1)] | None = None
    days: Annotated[int, Field(ge=1)] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**62)] = 1
    replicates: Annotated[int, Field(ge=1, le=10_000)] = 1
    kpis: tuple[str, ...] = tuple(KPIS)
    daily: bool = False
    set: dict[str, Scalar | list] = {}
    design: Design = Design()
    parameters: dict[str, Parameter]
    cluster: Cluster = Cluster()
    source: str = "<sweep>"  # the file it came from, for messages

    @model_validator(mode="after")
    def _consistent(self):
        unknown = [k for k in self.kpis if k not in KPIS]
        if unknown:
            raise ValueError(f"key kpis: unknown KPI {unknown[0]!r}; known: {', '.join(KPIS)}")
        if not self.parameters:
            raise ValueError("key parameters: a sweep needs at least one parameter")
        for key in self.design.by:
            if key not in self.parameters or self.parameters[key].values is None:
                raise ValueError(f"key design.by: {key!r} must be a parameter with `values`")
        for key, p in self.parameters.items():
            typed = key_type(key) if p.range is not None else None
            if typed not in (int, float, None):
                raise ValueError(f"key parameters.{key}: a `range` needs a numeric scenario key; give `values`")
            if typed is int and not all(x.is_integer() for x in p.range):
                raise ValueError(
                    f"key parameters.{key}: expected whole-number bounds for an integer key, got {list(p.range)}"
                )
        kind = self.design.kind
        if kind == "grid":
            for key, p in self.parameters.items():
                if p.values is None and p.steps is None:
                    raise ValueError(f"key parameters.{key}: a grid needs `values`, or `range` with `steps`")
        elif self.design.samples is None:
            raise ValueError(f"key design.samples: a {kind} design needs `samples`")
        if kind in ("sobol", "morris") and len(self.free) < 2:
            raise ValueError(
                f"key design.kind: a {kind} design needs at least two parameters outside design.by "
                "that take more than one value"
            )
        if kind == "sobol" and self.design.samples & (self.design.samples - 1):
            raise ValueError(f"key design.samples: Sobol (Saltelli) needs a power of 2, got {self.design.samples}")
        return self

    @property
    def free(self) -> list[str]:
        """The parameters the design samples (all but the `by` ones and the constants)."""
        return [k for k, p in self.parameters.items() if k not in self.design.by and not p.constant]

    def problem(self) -> dict:
        """SALib's problem: every free parameter on the unit interval (`Parameter.at` maps it)."""
        return {"num_vars": len(self.free), "names": self.free, "bounds": [[0.0, 1.0]] * len(self.free)}


@dataclass(frozen=True)
class Run:
    """One run: a design point's parameters, its replicate and seed, the resolved scenario and its id."""

    run_id: str
    point: int
    replicate: int
    seed: int
    params: dict
    scenario: str  # the resolved scenario as JSON


def load_sweep(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    samples: int | None = None,
    replicates: int | None = None,
    population: int | None = None,
    days: int | None = None,
) -> Sweep:
    """Read and validate a sweep file; `overrides` (`KEY=VALUE`, dotted keys of the sweep file, e.g.
    `design.samples=16` or `parameters.ownership.model=["cco_led","siloed"]`) and the keyword options
    override the file's values."""
    file = Path(path)
    data = read_toml(file, str(file), f"cannot read sweep file {file}: ")
    data["parameters"] = _flat_parameters(data.get("parameters"), str(file))
    data["set"] = flatten(data["set"]) if isinstance(data.get("set"), dict) else data.get("set", {})
    for text in overrides:
        _override(data, text)
    if isinstance(data.get("scenario"), str) and ("/" in data["scenario"] or data["scenario"].endswith(".toml")):
        path = os.path.normpath(file.parent / data["scenario"])
        data["scenario"] = path if "/" in path else f"./{path}"  # still a path, never a bundled name
    if samples is not None:
        data.setdefault("design", {})["samples"] = samples
    for key, value in (("replicates", replicates), ("population", population), ("days", days)):
        if value is not None:
            data[key] = value
    try:
        return Sweep.model_validate_json(json.dumps({**data, "source": str(file)}, default=str))
    except ValidationError as e:
        raise ScenarioError(f"{file}: {_explain(e.errors(include_url=False), data)}") from None


def _explain(errors: list[dict], data: dict) -> str:
    """The first validation error in the file's words: its key path without pydantic's names for the
    members of a union (`tuple[int, int]`, `bool`, ...); a value no member takes gets what each would take."""
    err = errors[0]
    loc = _key_path(err, data)
    where = ".".join(str(p) for p in loc)
    if err["type"] == "value_error":
        return f"{f'key {where}: ' if where else ''}{err['ctx']['error']}"
    if err["type"] == "extra_forbidden":
        return f"key {where}: unknown key"
    options = list(dict.fromkeys(_expected(x).removeprefix("expected ") for x in errors if _key_path(x, data) == loc))
    expected = options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"
    return f"key {where}: expected {expected}, got {err['input']!r}"


def _key_path(err: dict, data) -> list:
    """The parts of an error's location that are keys or indices of the file's data (a missing key too)."""
    path, node = [], data
    for i, part in enumerate(err["loc"]):
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int):
            node = node[part] if isinstance(node, dict) or part < len(node) else None
            path.append(part)
        elif err["type"] == "missing" and i == len(err["loc"]) - 1:
            path.append(part)
    return path


def _expected(err: dict) -> str:
    return EXPECTED.get(err["type"]) or err["msg"].replace("Input should be", "expected")


def _override(data: dict, text: str) -> None:
    """Apply one `--set KEY=VALUE` (`cxsim.scenario.parse_setting`) to the sweep file's data: a key under
    `parameters` or `set` names a scenario key (or a parameter's spec field); any other is the file's own."""
    parts, value = parse_setting(text)
    head, rest = parts[0], ".".join(parts[1:])
    if head in ("parameters", "set") and rest and isinstance(data[head], dict):
        if head == "parameters" and parts[-1] in SPEC_FIELDS and len(parts) > 2:
            spec = data["parameters"].setdefault(".".join(parts[1:-1]), {})
            spec[parts[-1]] = value
        else:
            data[head][rest] = {"values": value} if head == "parameters" and isinstance(value, list) else value
        return
    table = data
    for i, part in enumerate(parts[:-1]):
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ScenarioError(f"--set {text!r}: key {'.'.join(parts[: i + 1])}: expected a table, got {table!r}")
    table[parts[-1]] = value


def _flat_parameters(table, label: str) -> dict:
    """`[parameters]` with dotted keys quoted or as nested tables; a bare list means `values`."""
    if not isinstance(table, dict):
        raise ScenarioError(f"{label}: key parameters: expected a table of dotted scenario keys")
    out = {}
    for key, spec in flatten(table, stop=lambda v: not (set(v) - SPEC_FIELDS)).items():
        out[key] = {"values": spec} if isinstance(spec, list) else spec
    return out


def unit_design(sweep: Sweep) -> np.ndarray:
    """The design of the free parameters on the unit cube, one row per point (grid: none)."""
    from SALib.sample import latin, morris, sobol

    d, n, seed = sweep.design, sweep.design.samples, sweep.seed
    problem = sweep.problem()
    if d.kind == "sobol":
        return sobol.sample(problem, n, calc_second_order=d.second_order, seed=seed)
    if d.kind == "morris":
        return morris.sample(problem, n, num_levels=d.levels, seed=seed)
    if d.kind == "latin_hypercube":
        return latin.sample(problem, n, seed=seed)
    return np.random.default_rng(seed).random((n, len(sweep.free)))


def points(sweep: Sweep) -> list[dict]:
    """Every design point's parameter values (the `by` values crossed with the design of the others)."""
    ps = sweep.parameters
    if sweep.design.kind == "grid":
        keys = list(ps)
        return [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(ps[k].grid(key_type(k)) for k in keys))
        ]
    rows = unit_design(sweep)
    groups = itertools.product(*(ps[k].grid(key_type(k)) for k in sweep.design.by))
    constants = {k: p.grid(key_type(k))[0] for k, p in ps.items() if p.constant and k not in sweep.design.by}
    return [
        {
            **dict(zip(sweep.design.by, group, strict=True)),
            **constants,
            **{k: ps[k].at(u, key_type(k)) for k, u in zip(sweep.free, row, strict=True)},
        }
        for group in groups
        for row in rows
    ]


MAX_RUNS = 1_000_000  # a driver holds every run's resolved scenario (a few kB each) in memory


def size(sweep: Sweep) -> int:
    """How many runs the sweep's design has, counted before any is built."""
    ps, d = sweep.parameters, sweep.design
    if d.kind == "grid":
        points = math.prod(len(p.values) if p.values is not None else p.steps for p in ps.values())
    else:
        free = len(sweep.free)
        rows = {"sobol": free + 2 + free * d.second_order, "morris": free + 1}.get(d.kind, 1)
        points = d.samples * rows * math.prod(len(ps[k].values) for k in d.by)
    return points * sweep.replicates


def expand(sweep: Sweep, model_version: str) -> list[Run]:
    """Size the design, validate every parameter's corners, then build each point's scenario for every replicate."""
    if size(sweep) > MAX_RUNS:
        raise ScenarioError(
            f"{sweep.source}: the design has {size(sweep):,} runs; expected at most {MAX_RUNS:,} "
            "(fewer steps, samples or replicates, or several sweeps)"
        )
    _build(sweep, [], None, "key scenario")
    _build(sweep, _overrides(sweep.set), None, "key set")
    for key, p in sweep.parameters.items():
        for value in p.corners(key_type(key)):
            _build(sweep, _overrides({**sweep.set, key: value}), None, f"key parameters.{key}: value {value!r}")
    runs = []
    for i, params in enumerate(points(sweep)):
        overrides = _overrides({**sweep.set, **params})
        for r in range(sweep.replicates):
            seed = sweep.seed + r
            text = _build(sweep, overrides, seed, f"design point {i} {params}")
            run_id = hashlib.sha256(f"{model_version}\n{text}".encode()).hexdigest()[:20]
            runs.append(Run(run_id, i, r, seed, params, text))
    return runs


def _build(sweep: Sweep, overrides: list[str], seed: int | None, what: str) -> str:
    try:
        s = load_scenario(sweep.scenario, overrides, population=sweep.population, days=sweep.days, seed=seed)
    except ScenarioError as e:
        raise ScenarioError(f"{sweep.source}: {what}: {str(e).removeprefix('--set: ')}") from None
    return json.dumps(s.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _overrides(values: dict) -> list[str]:
    """`KEY=VALUE` strings for `load_scenario`; `ownership.model` first, as it resets the ownership table."""
    keys = sorted(values, key=lambda k: k != "ownership.model")
    return [f"{k}={_toml(values[k])}" for k in keys]


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(x)}" for k, x in v.items()) + "}"
    raise ScenarioError(f"cannot write {v!r} as a TOML value")
