"""Loading scenarios: merging, presets, overrides, and error messages that name file and key."""

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxsim
from cxsim.domain import DEPARTMENTS
from cxsim.presets import PRESETS
from cxsim.scenario import SCENARIOS, ScenarioError, diff_parameters, load_scenario, parse_setting
from cxsim.schema import DEPARTMENT_DEFAULTS, Market, Ownership, Scenario


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(*args, **kwargs) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(*args, **kwargs)
    return str(info.value)


# --- valid files, defaults, merging -------------------------------------------------------------


def test_minimal_file(tmp_path):
    s = load_scenario(
        write(tmp_path, "a.toml", 'name = "mini"\ndays = 30\n[market]\npopulation = 500\ninitial_customers = 100\n')
    )
    assert (s.name, s.days, s.market.population, s.market.initial_customers) == ("mini", 30, 500, 100)
    assert s.market.price_per_month == Market().price_per_month


def test_defaults_equal_schema_defaults(tmp_path):
    assert load_scenario(None) == Scenario()
    assert load_scenario(write(tmp_path, "empty.toml", "")) == Scenario()
    assert load_scenario(None).model_dump(mode="json") == Scenario().model_dump(mode="json")


def test_ownership_defaults_equal_cco_led_preset():
    assert Ownership().model == "cco_led"
    assert {k: getattr(Ownership(), k) for k in PRESETS["cco_led"]} == PRESETS["cco_led"]


def test_extends_merges_departments_keeping_defaults(tmp_path):
    write(tmp_path, "base.toml", "days = 50\n[departments.billing]\nbudget = 1000\nquality = 0.5\n")
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n[departments.billing]\nbudget = 2000\n')
    s = load_scenario(child)
    assert s.days == 50
    assert s.departments.billing.budget == 2000 and s.departments.billing.quality == 0.5
    assert s.departments.billing.failure_rate == DEPARTMENT_DEFAULTS["billing"]["failure_rate"]
    assert s.departments.service.budget == DEPARTMENT_DEFAULTS["service"]["budget"]


def test_extends_chain_of_three_and_lists_replace(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    write(
        tmp_path,
        "a.toml",
        'days = 10\nseed = 1\n[[events]]\nday = 1\nkind = "outage"\nsize = 0.5\n'
        '[[events]]\nday = 2\nkind = "outage"\nsize = 0.5\n',
    )
    write(sub, "b.toml", 'extends = "../a.toml"\nseed = 2\n[[events]]\nday = 3\nkind = "promise"\nsize = -0.2\n')
    s = load_scenario(write(tmp_path, "c.toml", 'extends = "sub/b.toml"\nseed = 3\n'))
    assert (s.days, s.seed) == (10, 3)
    assert [(e.day, e.kind) for e in s.events] == [(3, "promise")]


def test_bundled_name_lookup():
    assert load_scenario("base") == load_scenario(str(SCENARIOS / "base.toml"))


def test_extends_a_bundled_name(tmp_path):
    s = load_scenario(write(tmp_path, "mine.toml", 'extends = "cco_led"\ndays = 20\n'))
    assert s == load_scenario("cco_led", ["days=20"])
    assert SCENARIOS.is_relative_to(Path(cxsim.__file__).parent)  # package data, wherever cxsim is installed


def test_extends_paths_stay_relative_to_the_extending_file(tmp_path):
    (tmp_path / "base.toml").write_text("days = 7\n")
    assert load_scenario(write(tmp_path, "a.toml", 'extends = "base.toml"\n')).days == 7
    assert load_scenario(write(tmp_path, "b.toml", 'extends = "./base.toml"\n')).days == 7
    assert load_scenario(write(tmp_path, "c.toml", 'extends = "base"\n')).days == load_scenario("base").days


def test_extends_an_unknown_bundled_name(tmp_path):
    message = error(write(tmp_path, "mine.toml", 'extends = "cco_lead"\n'))
    assert "mine.toml: key extends: no bundled scenario named 'cco_lead'" in message
    assert "did you mean 'cco_led'?" in message


def test_cycle_through_bundled_names(tmp_path, monkeypatch):
    monkeypatch.setattr("cxsim.scenario.SCENARIOS", tmp_path)
    write(tmp_path, "a.toml", 'extends = "b"\n')
    write(tmp_path, "b.toml", 'extends = "a"\n')
    message = error("a")
    assert "key extends: cycle" in message and message.count("a.toml") == 2 and "b.toml" in message


def test_unknown_bundled_name():
    assert "no bundled scenario named 'no_such_scenario'" in error("no_such_scenario")


def test_diff_parameters():
    a, b = load_scenario(None), load_scenario(None, ["days=20", "departments.billing.budget=5"])
    assert diff_parameters(a, b) == {
        "days": (a.days, 20),
        "departments.billing.budget": (a.departments.billing.budget, 5),
    }
    assert diff_parameters(a, a) == {}


# --- extends errors -----------------------------------------------------------------------------


def test_missing_extends_target(tmp_path):
    msg = error(write(tmp_path, "a.toml", 'extends = "nope.toml"\n'))
    assert "a.toml" in msg and "extends" in msg and str((tmp_path / "nope.toml").resolve()) in msg


def test_extends_cycle(tmp_path):
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    msg = error(tmp_path / "a.toml")
    assert "extends" in msg and "cycle" in msg
    assert f"{tmp_path / 'a.toml'} -> {tmp_path / 'b.toml'} -> {tmp_path / 'a.toml'}" in msg


def test_extends_not_a_string(tmp_path):
    msg = error(write(tmp_path, "a.toml", "extends = 3\n"))
    assert "a.toml: key extends: expected a string" in msg


# --- file-level errors --------------------------------------------------------------------------


def test_malformed_toml_reports_line(tmp_path):
    msg = error(write(tmp_path, "bad.toml", 'name = "x"\ndays = \n'))
    assert "bad.toml" in msg and "line 2" in msg


@pytest.mark.parametrize("make", [lambda p: p / "missing.toml", lambda p: p])
def test_unreadable_paths(tmp_path, make):
    assert str(make(tmp_path)) in error(make(tmp_path))


def test_non_utf8(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    assert "latin.toml" in error(path) and "UTF-8" in error(path)


# --- validation errors --------------------------------------------------------------------------


def test_unknown_key_did_you_mean(tmp_path):
    msg = error(write(tmp_path, "typo.toml", "[market]\npopulaton = 5\n"))
    assert "typo.toml" in msg and "market.populaton" in msg and "unknown key" in msg and "'population'" in msg


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ('days = "ten"\n', "days", "expected an integer, got 'ten'"),
        ("[customers]\ncomplaint_propensity = 1.3\n", "customers.complaint_propensity", "<= 1"),
        ("[departments.billing]\nbudget = -1\n", "departments.billing.budget", ">= 0"),
        ("[market]\npopulation = 2\ninitial_customers = 0\n", "market.population", ">= 3"),
        ("[market]\npopulation = 10\ninitial_customers = 11\n", "market", "must not exceed population"),
        ("market = 3\n", "market", "expected a table"),
        ("when = 1979-05-27\n", "when", "unknown key"),
        ("[customers.network]\ndegree = 3\n", "customers.network", "degree must be even"),
        ('[[events]]\nday = 1\nkind = "outgae"\nsize = 0.5\n', "events[0].kind", "did you mean 'outage'"),
        ('[[events]]\nday = 1\nkind = "outage"\nsize = 1.5\n', "events[0]", "must be in [0.0, 1.0]"),
        ('[[events]]\nday = 1\nkind = "outage"\nsize = 0.5\ntarget = "hr"\n', "events[0].target", "expected one of"),
        ('[[events]]\nday = 1\nkind = "outage"\nsise = 0.5\n', "events[0].sise", "did you mean 'size'"),
        ("[departments.biling]\nbudget = 1\n", "departments.biling", "did you mean 'billing'"),
    ],
)
def test_validation_errors_name_file_and_key(tmp_path, text, key, expected):
    msg = error(write(tmp_path, "s.toml", text))
    assert f"{tmp_path / 's.toml'}: key {key}: " in msg and expected in msg
    assert "pydantic" not in msg and "http" not in msg


def test_every_error_listed_and_blamed_on_the_layer_that_set_it(tmp_path):
    write(tmp_path, "base.toml", 'days = "x"\n[market]\nprice_per_month = -1\n')
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n[market]\nprice_per_month = "y"\n')
    lines = error(child, ["seed=-1"]).splitlines()
    assert f"{tmp_path / 'base.toml'}: key days: expected an integer, got 'x'" in lines
    assert any(line.startswith(f"{child}: key market.price_per_month: expected a number") for line in lines)
    assert any(line.startswith("--set: key seed: expected a number >= 0") for line in lines)
    assert len(lines) == 3


def test_date_value_rejected(tmp_path):
    msg = error(write(tmp_path, "d.toml", "days = 1979-05-27\n"))
    assert "d.toml: key days: expected an integer" in msg


# --- overrides ----------------------------------------------------------------------------------


def test_set_overrides_are_typed():
    s = load_scenario(
        None, ["departments.billing.budget=2e6", "name=plain words", "ownership.listening_scope=['billing']"]
    )
    assert s.departments.billing.budget == 2e6 and s.name == "plain words"
    assert s.ownership.listening_scope == ("billing",)
    msg = error(None, ["days=abc"])
    assert "--set: key days: expected an integer, got 'abc'" in msg


@pytest.mark.parametrize(
    "text, parts, value",
    [
        ("market.population=5000", ["market", "population"], 5000),
        (" days = 7 ", ["days"], 7),
        ("name=plain words", ["name"], "plain words"),  # not TOML: a plain string
        ('name="quoted"', ["name"], "quoted"),
        ("ownership.listening_scope=['billing', 'service']", ["ownership", "listening_scope"], ["billing", "service"]),
        ("a-b.c_d=x=y", ["a-b", "c_d"], "x=y"),  # the first = splits
    ],
)
def test_parse_setting(text, parts, value):
    """The one `KEY=VALUE` parser of scenario and sweep `--set`."""
    assert parse_setting(text) == (parts, value)


@pytest.mark.parametrize("text", ["days", "=5", "a..b=1", "a b=1", ".a=1", "a.=1", "ä=1"])
def test_parse_setting_rejects_malformed(text):
    with pytest.raises(ScenarioError) as e:
        parse_setting(text)
    assert str(e.value) == f"--set {text!r}: expected KEY=VALUE with KEY a dotted key, e.g. market.population=5000"


def test_parse_setting_guards_depth():
    with pytest.raises(ScenarioError, match="--set: values nested more than"):
        parse_setting("a.b=" + "[" * 20 + "]" * 20)


@pytest.mark.parametrize("text", ["days", "a..b=1", 5])
def test_malformed_set(text):
    msg = error(None, [text])
    assert msg.startswith(f"--set {text!r}: expected KEY=VALUE")


def test_set_applies_after_files_in_order(tmp_path):
    path = write(tmp_path, "a.toml", "days = 5\n")
    assert load_scenario(path, ["days=6", "days=7"]).days == 7


def test_set_preset():
    s = load_scenario(None, ["ownership.model=siloed"])
    assert s.ownership.model == "siloed"
    assert {k: getattr(s.ownership, k) for k in PRESETS["siloed"]} == PRESETS["siloed"]


def test_unknown_preset_did_you_mean(tmp_path):
    msg = error(None, ["ownership.model=silod"])
    assert "--set: key ownership.model" in msg and "did you mean 'siloed'" in msg and "cco_led" in msg
    msg = error(write(tmp_path, "o.toml", '[ownership]\nmodel = "cco"\n'))
    assert "o.toml: key ownership.model" in msg and "did you mean 'cco_led'" in msg


def test_preset_resets_ownership_across_layers(tmp_path):
    write(tmp_path, "base.toml", "[ownership]\noverhead = 0.3\nmin_budget_fraction = 0.1\n")
    child = write(
        tmp_path, "child.toml", 'extends = "base.toml"\n[ownership]\nmodel = "siloed"\nlistening_noise = 0.05\n'
    )
    s = load_scenario(child)
    assert s.ownership.overhead == PRESETS["siloed"]["overhead"]
    assert s.ownership.min_budget_fraction == Ownership().min_budget_fraction
    assert s.ownership.listening_noise == 0.05
    # a later layer without `model` merges normally over the preset
    assert load_scenario(child, ["ownership.overhead=0.2"]).ownership.overhead == 0.2


# --- option overrides ---------------------------------------------------------------------------


def test_population_scales_customers_and_budgets(tmp_path):
    path = write(
        tmp_path,
        "p.toml",
        "[market]\npopulation = 1000\ninitial_customers = 400\n[departments.billing]\nbudget = 5000\n",
    )
    s = load_scenario(path, population=250)
    assert (s.market.population, s.market.initial_customers) == (250, 100)
    assert s.departments.billing.budget == pytest.approx(1250)
    factor = 250 / 1000
    assert s.departments.service.budget == pytest.approx(DEPARTMENT_DEFAULTS["service"]["budget"] * factor)
    d = load_scenario(None, population=Market().population * 2)
    assert d.market.initial_customers == Market().initial_customers * 2


@pytest.mark.parametrize("population", [0, -5])
def test_population_must_be_positive(population):
    assert "--population" in error(None, population=population)


def test_other_options():
    s = load_scenario(None, days=12, seed=7, replicates=3, engine="agents")
    assert (s.days, s.seed, s.replicates, s.engine) == (12, 7, 3, "agents")
    assert "--days: key days: expected a number >= 1" in error(None, days=0)
    assert "--engine: key engine" in error(None, engine="gpu")


# --- robustness ---------------------------------------------------------------------------------

FIELD_NAMES = sorted(
    {
        *Scenario.model_fields,
        *Market.model_fields,
        *Ownership.model_fields,
        *DEPARTMENTS,
        "extends",
        "model",
        "budget",
        "day",
        "kind",
        "size",
        "target",
        "network",
        "degree",
    }
)
keys = st.sampled_from(FIELD_NAMES) | st.text("abcxyz_-", min_size=1, max_size=6)
scalars = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.booleans()
    | st.sampled_from([*PRESETS, *DEPARTMENTS, "outage", "../", "", "a.toml"])
    | st.text(max_size=8)
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
)


def toml_value(v) -> str:
    """A tiny TOML writer: inline tables and arrays, basic strings with every character escaped."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return (
            '"'
            + "".join(
                c if c.isalnum() or c in " ._-/" else f"\\U{ord(c):08X}" for c in v if not 0xD800 <= ord(c) <= 0xDFFF
            )
            + '"'
        )
    if isinstance(v, list):
        return "[" + ", ".join(map(toml_value, v)) + "]"
    return "{" + ", ".join(f'"{k}" = {toml_value(x)}' for k, x in v.items()) + "}"


def only_scenario_errors(*args, **kwargs):
    try:
        load_scenario(*args, **kwargs)
    except ScenarioError as e:
        assert str(e)


quick = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@quick
@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.toml"
        path.write_bytes(data)
        only_scenario_errors(path)


@quick
@given(st.dictionaries(keys, values, max_size=6), st.integers(-3, 10**7) | st.none())
def test_random_tables_never_crash(table, population):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.toml"
        path.write_text("".join(f'"{k}" = {toml_value(v)}\n' for k, v in table.items()), encoding="utf-8")
        only_scenario_errors(path, population=population)


@quick
@given(st.lists(st.tuples(st.lists(keys, min_size=1, max_size=3), values) | st.text(max_size=20), max_size=4))
def test_random_set_strings_never_crash(items):
    overrides = [x if isinstance(x, str) else ".".join(x[0]) + "=" + toml_value(x[1]) for x in items]
    only_scenario_errors(None, overrides)
