"""Load TOML scenario files (with `extends`, presets and overrides) into a validated `Scenario`.

Every problem with the input becomes a `ScenarioError` whose message names the
file (or `--set`), the key path and what was expected; nothing else escapes.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
import tomllib
import types
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from cxsim.domain import DEPARTMENTS
from cxsim.presets import PRESETS
from cxsim.schema import DEPARTMENT_DEFAULTS, MIN_POPULATION, Market, Scenario

# The bundled scenario library: package data, real files in a checkout and in an installed wheel alike.
SCENARIOS = Path(files("cxsim") / "scenarios").resolve()
MAX_DEPTH = 16  # a scenario is at most four tables deep; this guards the recursion below
_KEY_PART = re.compile(r"[A-Za-z0-9_-]+")
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}
EXPECTED = {
    "model_type": "expected a table",
    "dict_type": "expected a table",
    "tuple_type": "expected an array",
    "list_type": "expected an array",
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "finite_number": "expected a finite number",
}

Provenance = dict[tuple, tuple[str, int]]  # leaf key path -> (layer label, layer order)


class ScenarioError(Exception):
    """A bad scenario: the message names the file or option, the key path and what was expected."""


def load_scenario(
    path: str | Path | None,
    overrides: Sequence[str | tuple[str, str]] = (),
    *,
    population: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    replicates: int | None = None,
    engine: str | None = None,
) -> Scenario:
    """Merge the file's `extends` chain, `--set` overrides and option overrides; validate the result.

    An override is `KEY=VALUE`, or (option, `KEY=VALUE`) to name another option than `--set` in messages."""
    return trace_scenario(
        path, overrides, population=population, days=days, seed=seed, replicates=replicates, engine=engine
    )[0]


def trace_scenario(
    path: str | Path | None,
    overrides: Sequence[str | tuple[str, str]] = (),
    *,
    population: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    replicates: int | None = None,
    engine: str | None = None,
) -> tuple[Scenario, Provenance]:
    """`load_scenario`, and which file or option set each key (for messages about valid scenarios)."""
    layers: list[tuple[str, dict]] = []
    top = "<defaults>"
    if path is not None:
        file = _locate(path)
        top = str(file)
        layers = _chain(file, top, [])
    for override in overrides:
        option, text = override if isinstance(override, tuple) else ("--set", override)
        layers.append((option, _override_layer(text, option)))
    merged: dict = {}
    prov: Provenance = {}
    for seq, (label, layer) in enumerate(layers):
        _apply(merged, layer, label, seq, prov)
    seq = len(layers)
    if population is not None:
        _apply(merged, _population_layer(merged, population), "--population", seq, prov)
    for key, value in (("days", days), ("seed", seed), ("replicates", replicates), ("engine", engine)):
        if value is not None:
            seq += 1
            _apply(merged, {key: value}, f"--{key}", seq, prov)
    try:
        return Scenario.model_validate_json(json.dumps(merged, default=str)), prov
    except ValidationError as e:
        raise ScenarioError("\n".join(_describe(err, prov, top) for err in e.errors(include_url=False))) from None


def late_events(s: Scenario, prov: Provenance) -> list[str]:
    """A line for every event that starts after the run's last day (so does nothing), naming it and the days."""
    label = prov.get(("days",), ("",))[0]
    if label.startswith("--"):
        days = f"--days {s.days}" if label == "--days" else f"{label} days={s.days}"
    else:
        days = f"days = {s.days} in {label}" if label else f"days = {s.days}, the default"
    return [
        f"{_source(prov, ('events', i), '<defaults>')}: key events[{i}]: the {e.kind} event on day {e.day} starts "
        f"after the run's last day, day {s.days - 1} ({days}; days count from 0)"
        for i, e in enumerate(s.events)
        if e.day >= s.days
    ]


# budget / reference_budget over which the departments' elasticities were set (docs/MODEL.md §4.15)
BUDGET_RATIO_RANGE = (0.2, 5.0)


def budget_warnings(s: Scenario) -> list[str]:
    """A line for every department whose budget lies far outside its reference: valid, but extrapolated."""
    lo, hi = BUDGET_RATIO_RANGE
    out = []
    for name, d in s.departments:
        ratio = d.budget / d.reference_budget
        if not lo <= ratio <= hi:
            out.append(
                f"{s.name}: key departments.{name}.budget: {d.budget:,.0f} a year is {ratio:.3g} times its "
                f"reference_budget {d.reference_budget:,.0f} (the budget at which it has its configured quality "
                f"and failure rate, in this market of {s.market.represents or s.market.population:,} people); the "
                f"effects of budgets outside {lo:g}-{hi:g} times the reference are extrapolated. For a firm of "
                "another size, set "
                "reference_budget too (its spend per customer at the configured quality, times the customers)"
            )
    return out


def sample_of(s: Scenario) -> Scenario:
    """The scenario the simulation runs: with `market.represents`, the company's initial customers (rounded) and
    its departments' budgets and reference budgets divided by k = represents / population, the people one simulated
    person stands for; without it (or given a sample already), `s` itself."""
    if s.market.represents is None or s.is_sample:
        return s
    k = s.market.scale
    market = s.market.model_copy(update={"initial_customers": round(s.market.initial_customers / k)})
    departments = s.departments.model_copy(
        update={
            name: d.model_copy(update={"budget": d.budget / k, "reference_budget": d.reference_budget / k})
            for name, d in s.departments
        }
    )
    sample = s.model_copy(update={"market": market, "departments": departments})
    sample._sample = True
    return sample


def represents_note(s: Scenario) -> str | None:
    """What one simulated person stands for, in words; None when the sample stands for itself."""
    m = s.market
    if m.represents is None:
        return None
    return (
        f"one simulated person stands for {m.scale:,.4g} people: the {m.population:,} simulated are a sample of "
        f"the market's {m.represents:,} (market.represents); counts and money are reported for the whole market, "
        f"whose {m.initial_customers:,} customers on day 0 are {sample_of(s).market.initial_customers:,} simulated"
    )


def sample_warnings(s: Scenario) -> list[str]:
    """A line when the company's initial customers are too few to have a simulated one in the sample."""
    m = s.market
    if m.represents is None or not m.initial_customers or sample_of(s).market.initial_customers:
        return []
    return [
        f"{s.name}: key market.initial_customers: {m.initial_customers:,} customers of the market's "
        f"{m.represents:,} people are none of the {m.population:,} simulated (one for {m.scale:,.4g}); a larger "
        "--population (market.population) samples them"
    ]


def diff_parameters(a: Scenario, b: Scenario) -> dict[str, tuple]:
    """Dotted keys whose values differ between two scenarios, mapped to (a_value, b_value); a key only one of
    them has (a lesson's `lesson.*` against its control's `lesson = None`) is None in the other."""
    fa, fb = flatten(a.model_dump(mode="json")), flatten(b.model_dump(mode="json"))
    return {k: (fa.get(k), fb.get(k)) for k in dict.fromkeys([*fa, *fb]) if fa.get(k) != fb.get(k)}


def _locate(path: str | Path, directory: Path | None = None, where: str = "") -> Path:
    """A bare name (no `/`, no `.toml`) is a bundled scenario; anything else is a file path, relative to
    `directory` if given. `where` prefixes the error (the extending file and key)."""
    name = os.fspath(path)
    if "/" in name or name.endswith(".toml"):
        return Path(name) if directory is None else directory / name
    bundled = SCENARIOS / f"{name}.toml"
    if not bundled.is_file():
        known = sorted(p.stem for p in SCENARIOS.glob("*.toml"))
        raise ScenarioError(
            f"{where}no bundled scenario named {name!r} (looked for {bundled}); "
            f"known: {', '.join(known) or 'none'}{_did_you_mean(name, known)}"
        )
    return bundled


def _chain(file: Path, label: str, stack: list[tuple[Path, str]], where: str | None = None) -> list[tuple[str, dict]]:
    """The layers of `file`'s extends chain, root first; `stack` holds the extending files."""
    data = read_toml(file, label, where or f"cannot read scenario file {label}: ")
    parent = data.pop("extends", None)
    if parent is None:
        return [(label, data)]
    if not isinstance(parent, str):
        raise ScenarioError(
            f"{label}: key extends: expected a string (a bundled scenario's name or a path "
            f"relative to this file), got {_show(parent)}"
        )
    target = _locate(parent, file.parent, f"{label}: key extends: ")
    stack = stack + [(_resolve(file), label)]
    real = _resolve(target)
    reals = [r for r, _ in stack]
    if real in reals:
        cycle = [name for _, name in stack[reals.index(real) :]] + [os.path.normpath(target)]
        raise ScenarioError(f"{label}: key extends: cycle {' -> '.join(cycle)}")
    return _chain(target, os.path.normpath(target), stack, f"{label}: key extends: cannot read {real}: ") + [
        (label, data)
    ]


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, ValueError, RuntimeError):
        return path.absolute()


def read_toml(file: Path, label: str, where: str) -> dict:
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(
            f"{label}: not UTF-8 text (bad byte at offset {e.start}); a scenario must be a UTF-8 TOML file"
        ) from None
    except (OSError, ValueError) as e:
        raise ScenarioError(where + (getattr(e, "strerror", None) or str(e))) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{label}: invalid TOML: {e}") from None
    except RecursionError:
        raise ScenarioError(f"{label}: invalid TOML: nested too deeply") from None
    _check_depth(data, label)
    return data


def _check_depth(value, label: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ScenarioError(
            f"{label}: values nested more than {MAX_DEPTH} levels deep; a scenario is only a few tables deep"
        )
    for child in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
        _check_depth(child, label, depth + 1)


def parse_setting(text: str, option: str = "--set") -> tuple[list[str], object]:
    """One `--set KEY=VALUE` as (the dotted key's parts, the value): VALUE read as TOML, else as a plain string."""
    key, sep, raw = text.partition("=") if isinstance(text, str) else ("", "", "")
    parts = key.strip().split(".")
    if not sep or not all(_KEY_PART.fullmatch(p) for p in parts):
        raise ScenarioError(f"{option} {text!r}: expected KEY=VALUE with KEY a dotted key, e.g. market.population=5000")
    try:
        value = tomllib.loads("v = " + raw)["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        value = raw
    _check_depth(value, option, len(parts))
    return parts, value


def _override_layer(text: str, option: str) -> dict:
    """One `--set` as a nested dict, e.g. {"market": {"population": 5000}}."""
    parts, value = parse_setting(text, option)
    for part in reversed(parts):
        value = {part: value}
    return value


def _apply(merged: dict, layer: dict, label: str, seq: int, prov: Provenance) -> None:
    """Merge one layer; a layer naming `ownership.model` first resets ownership to that preset."""
    own = layer.get("ownership")
    if isinstance(own, dict) and "model" in own:
        model = own["model"]
        if not (isinstance(model, str) and model in PRESETS):
            hint = _did_you_mean(model, list(PRESETS)) if isinstance(model, str) else ""
            raise ScenarioError(
                f"{label}: key ownership.model: unknown ownership model {_show(model)}; "
                f"known: {', '.join(PRESETS)}{hint}"
            )
        merged.pop("ownership", None)
        _forget(prov, ("ownership",))
        layer = {**layer, "ownership": {**PRESETS[model], **own}}
    _merge(merged, layer, (label, seq), prov, ())


def _merge(dst: dict, src: dict, source: tuple[str, int], prov: Provenance, prefix: tuple) -> None:
    """Tables merge key by key; arrays and scalars replace whole. Records who set each leaf."""
    for key, value in src.items():
        path = prefix + (key,)
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, source, prov, path)
        else:
            _forget(prov, path)
            dst[key] = copy.deepcopy(value)
            _record(value, source, prov, path)


def _record(value, source: tuple[str, int], prov: Provenance, path: tuple) -> None:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            _record(child, source, prov, path + (key,))
    else:
        prov[path] = source


def _forget(prov: Provenance, prefix: tuple) -> None:
    for path in [p for p in prov if p[: len(prefix)] == prefix]:
        del prov[path]


def _population_layer(merged: dict, population: int) -> dict:
    """Set market.population and scale initial_customers and every budget in proportion."""
    if isinstance(population, bool) or not isinstance(population, int) or population < MIN_POPULATION:
        raise ScenarioError(
            f"--population: expected a whole number of people >= {MIN_POPULATION}, got {_show(population)}"
        )
    market = merged.get("market") if isinstance(merged.get("market"), dict) else {}
    old = market.get("population", Market().population)
    layer: dict = {"market": {"population": population}}
    if market.get("represents") is not None or not (_finite(old) and old > 0):
        # with market.represents the file speaks for the company: only the sample grows or shrinks
        return layer
    try:
        factor = population / old
        customers = market.get("initial_customers", Market().initial_customers)
        if _finite(customers):
            layer["market"]["initial_customers"] = min(population, max(0, round(customers * factor)))
        # Budgets scale too (our addition to the design doc), so per-customer economics are unchanged.
        departments = merged.get("departments", {})
        if isinstance(departments, dict):
            for name in DEPARTMENTS:
                dept = departments.get(name, {})
                for key in ("budget", "reference_budget"):
                    value = dept.get(key, DEPARTMENT_DEFAULTS[name][key]) if isinstance(dept, dict) else None
                    if _finite(value):
                        layer.setdefault("departments", {}).setdefault(name, {})[key] = value * factor
    except OverflowError:
        raise ScenarioError(f"--population: {population} is too large to scale the scenario to") from None
    return layer


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _describe(err: dict, prov: Provenance, top: str) -> str:
    """One line for one pydantic error: `FILE: key a.b.c: what was expected, got value`."""
    return describe_error(err, f"{_source(prov, err['loc'], top)}: key {_dotted(err['loc'])}: ", _fields_at)


def describe_error(err: dict, head: str, fields_at) -> str:
    """`head` and what one pydantic error expected, got what; an unknown key gets a did-you-mean among
    `fields_at(location of its table)`."""
    loc, kind = err["loc"], err["type"]
    if kind == "extra_forbidden":
        return head + "unknown key" + _did_you_mean(str(loc[-1]), fields_at(loc[:-1]))
    if kind == "value_error":
        return head + str(err["ctx"]["error"])
    if kind == "missing":
        return head + "missing required key"
    if kind in _BOUNDS:
        symbol, name = _BOUNDS[kind]
        expected = f"expected a number {symbol} {err['ctx'][name]}"
    elif kind == "literal_error":
        options = re.findall(r"'([^']*)'", err["ctx"]["expected"])
        hint = _did_you_mean(err["input"], options) if isinstance(err["input"], str) else ""
        expected = f"expected one of {err['ctx']['expected']}{hint}"
    else:
        expected = EXPECTED.get(kind) or err["msg"].replace("Input should be", "expected")
    return head + f"{expected}, got {_show(err['input'])}"


def _source(prov: Provenance, loc: tuple, top: str) -> str:
    """The layer that set `loc` (or an enclosing key), else the last to set anything inside it, else `top`."""
    for i in range(len(loc), 0, -1):
        if loc[:i] in prov:
            return prov[loc[:i]][0]
    inside = [src for path, src in prov.items() if path[: len(loc)] == loc]
    return max(inside, key=lambda src: src[1])[0] if inside else top


def _fields_at(loc: tuple) -> list[str]:
    """Field names of the schema model at a key path (list items via the item type), [] if none."""
    t = _unwrap(_model_at(loc))
    return list(t.model_fields) if isinstance(t, type) and issubclass(t, BaseModel) else []


def _model_at(loc: tuple):
    """The schema's type at a key path (list items via the item type), None if there is none."""
    t = Scenario
    for part in loc:
        t = _unwrap(t)
        if isinstance(part, int):
            t = (get_args(t) or (None,))[0]
        elif isinstance(t, type) and issubclass(t, BaseModel) and part in t.model_fields:
            t = t.model_fields[part].annotation
        else:
            return None
    return t


def key_type(key: str):
    """The type a dotted scenario key takes (`int`, `float`, a `Literal`, a model, ...); None for no such key."""
    *table, field = key.split(".")
    t = _unwrap(_model_at(tuple(table)))
    if not (isinstance(t, type) and issubclass(t, BaseModel) and field in t.model_fields):
        return None
    return _unwrap(t.model_fields[field].annotation)


def _unwrap(t):
    while get_origin(t) in (Annotated, Union, types.UnionType):
        t = next(a for a in get_args(t) if a is not type(None))
    return t


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _dotted(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "(top level)"


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def flatten(d: dict, prefix: str = "", stop=lambda table: False) -> dict:
    """Nested tables as dotted keys; a non-empty table for which `stop` is true stays one value."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value and not stop(value):
            out |= flatten(value, f"{prefix}{key}.", stop)
        else:
            out[f"{prefix}{key}"] = value
    return out
