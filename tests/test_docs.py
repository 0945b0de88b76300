"""docs/MODEL.md stays true to the code: every scenario key, KPI and preset is documented, with today's defaults."""

import math
import re
import tomllib
import types
from pathlib import Path
from typing import Annotated, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from cxsim.domain import DEPARTMENTS
from cxsim.kpis import KPIS
from cxsim.presets import PRESETS
from cxsim.schema import DEPARTMENT_DEFAULTS, DepartmentSettings, Scenario

DOC = Path(__file__).resolve().parent.parent / "docs" / "MODEL.md"
GENERIC = "departments.<name>."
KEY = re.compile(r"^`([^`]+)`$")
LITERAL = re.compile(r"`([^`]*)`")
# preset table column -> ownership key
PRESET_COLUMNS = {
    "objective": "objective",
    "review": "review_every_days",
    "delay": "listening_delay_days",
    "noise": "listening_noise",
    "source": "listening_source",
    "rate": "reallocation_rate",
    "cost": "cost_weight",
    "handoff": "handoff_consistency",
    "promise policy": "promise_policy",
    "markup": "promise_markup",
    "overhead": "overhead",
}


def _unwrap(t):
    while get_origin(t) in (Annotated, Union, types.UnionType):
        t = next(a for a in get_args(t) if a is not type(None))
    return t


def _model_of(t):
    """The BaseModel a field holds (directly or as the items of a tuple/list), else None."""
    t = _unwrap(t)
    if get_origin(t) in (tuple, list):
        args = [a for a in get_args(t) if a is not Ellipsis]
        t = _unwrap(args[0]) if args else None
    return t if isinstance(t, type) and issubclass(t, BaseModel) else None


def schema_leaves(model=Scenario, prefix="") -> dict[str, object]:
    """Every leaf key of the schema (dotted; events as `events.<field>`) -> its field."""
    out = {}
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if sub is None:
            out[prefix + name] = field
        else:
            out |= schema_leaves(sub, f"{prefix}{name}.")
    return out


def tables(section_prefix: str = "") -> list[tuple[list[str], list[list[str]]]]:
    """Markdown tables (header, rows of cells) in sections whose `## ` heading starts with `section_prefix`."""
    found, section, header, rows = [], "", None, []
    for line in DOC.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("|") and section.startswith(section_prefix):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            elif not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
            continue
        if header is not None:
            found.append((header, rows))
            header, rows = None, []
    return found


def documented_parameters() -> dict[str, list[str]]:
    """First-cell keys of the parameter tables (section 5) -> the row's cells."""
    out = {}
    for _, rows in tables("5."):
        for cells in rows:
            m = KEY.match(cells[0])
            if m:
                out[m.group(1)] = cells
    return out


def parse_literal(cell: str):
    """The first backticked value of a cell read as a TOML value, or None when the cell has none."""
    m = LITERAL.search(cell)
    if not m:
        return None
    return tomllib.loads("v = " + m.group(1))["v"]


def same(doc_value, code_value) -> bool:
    if isinstance(code_value, (tuple, list)):
        return list(doc_value) == list(code_value)
    if isinstance(code_value, bool) or isinstance(code_value, str):
        return doc_value == code_value
    if isinstance(code_value, (int, float)) and isinstance(doc_value, (int, float)):
        return math.isclose(doc_value, code_value, rel_tol=1e-12, abs_tol=0.0)
    return doc_value == code_value


def test_every_schema_key_is_documented():
    documented = documented_parameters()
    missing = []
    for key in schema_leaves():
        parts = key.split(".")
        if parts[0] == "departments" and len(parts) == 3 and parts[1] in DEPARTMENTS:
            generic = GENERIC + parts[2]
            if generic in documented or key in documented:
                continue
        if key not in documented:
            missing.append(key)
    assert not missing, f"docs/MODEL.md lacks these scenario keys in its parameter tables: {missing}"


def test_no_stale_keys_documented():
    leaves = schema_leaves()
    department_fields = set(DepartmentSettings.model_fields)
    stale = []
    for key in documented_parameters():
        if key in leaves:
            continue
        if key.startswith(GENERIC) and key[len(GENERIC) :] in department_fields:
            continue
        if key.startswith("departments.") and key.split(".", 1)[1] in DEPARTMENTS:
            continue  # a row of the per-department defaults table
        stale.append(key)
    assert not stale, f"docs/MODEL.md documents keys the schema does not have: {stale}"


def test_documented_defaults_match_the_schema():
    leaves = schema_leaves()
    wrong = []
    for key, cells in documented_parameters().items():
        field = leaves.get(key)
        if field is None and key.startswith(GENERIC):
            field = DepartmentSettings.model_fields.get(key[len(GENERIC) :])
        if field is None or field.is_required() or field.default is None:
            continue  # required, per department (checked below), or "none"
        doc_value = parse_literal(cells[1])
        if doc_value is None or not same(doc_value, field.default):
            wrong.append(f"{key}: doc {cells[1]!r}, code {field.default!r}")
    assert not wrong, "defaults in docs/MODEL.md differ from cxsim/schema.py:\n" + "\n".join(wrong)


def test_per_department_defaults_match():
    table = next(((h, rows) for h, rows in tables("5.") if h and h[0] == "department"), None)
    assert table is not None, "docs/MODEL.md has no per-department defaults table"
    header, rows = table
    by_name = {KEY.match(cells[0]).group(1).split(".", 1)[1]: cells for cells in rows if KEY.match(cells[0])}
    assert set(by_name) == set(DEPARTMENTS)
    assert {f for d in DEPARTMENT_DEFAULTS.values() for f in d} <= set(header[1:]), (
        "a field set in DEPARTMENT_DEFAULTS has no column in the per-department table"
    )
    wrong = []
    for name, cells in by_name.items():
        for column, cell in zip(header[1:], cells[1:], strict=True):
            code = DEPARTMENT_DEFAULTS[name].get(column, DepartmentSettings.model_fields[column].default)
            if not same(parse_literal(cell), code):
                wrong.append(f"departments.{name}.{column}: doc {cell!r}, code {code!r}")
    assert not wrong, "per-department defaults in docs/MODEL.md differ:\n" + "\n".join(wrong)


def test_every_kpi_is_documented():
    documented = {KEY.match(cells[0]).group(1) for h, rows in tables("7.") for cells in rows if KEY.match(cells[0])}
    missing = [k for k in KPIS if k not in documented]
    assert not missing, f"docs/MODEL.md lacks these KPIs in its KPI table: {missing}"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_is_documented_with_its_values(preset):
    table = next(((h, rows) for h, rows in tables("6.") if h and h[0] == "preset"), None)
    assert table is not None, "docs/MODEL.md has no preset table"
    header, rows = table
    row = next((cells for cells in rows if cells[0] == f"`{preset}`"), None)
    assert row is not None, f"preset {preset} missing from the preset table in docs/MODEL.md"
    columns = {PRESET_COLUMNS[h]: cell for h, cell in zip(header[1:], row[1:], strict=True) if h in PRESET_COLUMNS}
    undocumented = set(PRESETS[preset]) - set(columns)
    assert not undocumented, f"preset {preset} sets {sorted(undocumented)}, which the preset table lacks"
    for key, value in PRESETS[preset].items():
        doc = columns[key]
        if isinstance(value, str):
            assert doc == value, f"{preset}.{key}: doc {doc!r}, code {value!r}"
        else:
            assert math.isclose(float(doc), value), f"{preset}.{key}: doc {doc!r}, code {value!r}"
    assert f"`{preset}`:" in DOC.read_text(encoding="utf-8"), f"preset {preset} has no line saying why"
