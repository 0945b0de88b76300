"""The command line under random flags and values: bad input is exit 2 with a one-line-per-problem message
(never exit 1, never a traceback) and leaves no --out behind; good input runs.

Every example is small: the population, days and replicates always come from short lists of small or bad
values, the agents engine (slow for long warm-ups) is never drawn, and a sweep stops where it would start its
Dask cluster (everything before it, the sweep file's validation and the design's expansion, is real)."""

import contextlib
import io
import itertools
import tempfile
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cxsim.cli import main
from cxsim.scenario import SCENARIOS, ScenarioError, flatten
from cxsim.schema import Scenario

KEYS = sorted(flatten(Scenario().model_dump(mode="json"))) + [
    "events",
    "lesson.control",
    "lesson.expect.retention",
    "market",
    "market.populaton",
    "nope",
    "a..b",
    "",
]
VALUES = [
    "nan", "inf", "-inf", "-1", "0", "1", "2", "0.5", "1e308", "1e30", "99999999999999999999", "true", '"x"',
    "[]", "[1, 2]", "{a = 1}", "", "=", '"../"', "cco_led", "siloed", "outage", "[[[]]]",
    '[{day = 400, kind = "outage", size = 0.5}]', '[{day = 1, kind = "promise", size = 3}]', '"\\u0000"',
]  # fmt: skip


def some(good: list, bad: list = ()) -> st.SearchStrategy[str]:
    """One of the good values, or one in five times one of the bad ones: most examples hold a fault or two,
    some none (they run)."""
    if not bad:
        return st.sampled_from(good)
    return st.integers(0, 4).flatmap(lambda i: st.sampled_from(bad if i == 0 else good))


NUMBERS = some(["0", "1", "7"], ["-1", "x", "1.5", "", "1e3", "nan", "99999999999999999999999"])
POPULATION = some(["3", "50", "300"], ["-1", "0", "2", "x", "1.5", "10000000000000", "99999999999999999999999"])
DAYS = some(["1", "3"], ["-1", "0", "36501", "x", "2.5"])
REPLICATES = some(["1", "2"], ["-1", "0", "10001", "x"])
SCENARIOS_GIVEN = some(["base", "siloed", "cco_led"], ["nope", "adir/", "", "bad.toml", "binary.toml", "lesson.toml"])
GOOD_SETS = ["market.promise=0.5", "ownership.model=siloed", "customers.network.degree=4", "market.warm_up_days=0"]
hostile_sets = st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)).map("=".join)
sets = st.lists(st.sampled_from(GOOD_SETS) | hostile_sets, max_size=2)


def flags(**choices) -> st.SearchStrategy[list[str]]:
    """Each flag absent, or with one of its values (a strategy); in a random order."""
    pairs = [st.none() | values.map(lambda v, f=flag: [f, v]) for flag, values in choices.items()]
    return (
        st.tuples(*pairs)
        .flatmap(lambda ps: st.permutations([p for p in ps if p]).map(itertools.chain.from_iterable))
        .map(list)
    )


@st.composite
def scenario_commands(draw) -> list[str]:
    command = draw(some(["check", "run", "compare", "lesson"]))
    if command == "lesson":
        names = [draw(some(["start_small", "billing_ripple"], ["nope", "lesson.toml", "broken_lesson.toml"]))]
    else:
        names = draw(st.lists(SCENARIOS_GIVEN, min_size=1, max_size=2 if command == "compare" else 1, unique=True))
    args = [command, *names]
    for s in draw(sets):
        args += ["--set", s]
    # the size of a run: always given, always small or bad (a missing one would be the scenario's full size)
    args += ["--population", draw(POPULATION), "--days", draw(DAYS), "--replicates", draw(REPLICATES)]
    args += draw(flags(**{"--seed": NUMBERS, "--engine": some(["numba"], ["bogus"])}))
    if command != "check":
        args += draw(
            flags(
                **{
                    "--threads": some(["1", "2"], ["0", "99", "x"]),
                    "--out": st.sampled_from(["OUT", "FILE/sub", "FILE", ""]),
                }
            )
        )
    if command == "run" and draw(st.booleans()):
        args.append("--json")
    if command == "compare":
        args += draw(
            flags(
                **{
                    "--vary": some(
                        ["ownership.model=cmo_led,cco_led"], ["market.promise=0.5,2", "x", "a b=1", "=", ","]
                    ),
                    "--kpis": some(["retention", "retention,csat"], ["nope", ""]),
                    "--horizons": some(["0.001", "1,3"], ["0", "x", "", "101", "nan"]),
                }
            )
        )
    return args


SWEEP_KEYS = [
    "design.kind", "design.samples", "design.by", "design.levels", "replicates", "population", "days", "seed",
    "kpis", "daily", "scenario", "colour", "set.market.promise", "set.market.populaton",
    "parameters.market.promise.range", "parameters.market.promise.steps", "parameters.market.promise.log",
    "parameters.ownership.model", "parameters.market.population.range", "parameters.journey.billing_cycle_days",
]  # fmt: skip
SWEEP_VALUES = [
    "-1", "0", "1", "2", "4", "nan", "1.5", "10000000", '"x"', "[]", "[0, 1]", "[1, 0]", "[nan, 1]", "[0.5, 2]",
    '["cco_led", "nobody"]', '"sobol"', '"morris"', '"latin_hypercube"', '"grid"', '["ownership.model"]',
    '"adir/"', '"base"', "true", "{a = 1}", '["retention"]', '["nope"]',
]  # fmt: skip


@st.composite
def sweep_commands(draw) -> list[str]:
    args = [draw(some(["sweep", "sensitivity"])), draw(some(["sweep.toml", "sobol.toml"], ["nope.toml", "bad.toml"]))]
    for key, value in draw(st.lists(st.tuples(some(SWEEP_KEYS), some(SWEEP_VALUES)), max_size=2)):
        args += ["--set", f"{key}={value}"]  # nearly always a fault
    args += ["--out", draw(some(["OUT"], ["FILE/sub", "FILE"]))]
    small = some(["1", "2"], ["-1", "0", "x", "1.5"])
    seconds = some(["1", "0.5"], ["0", "-1", "nan", "x"])
    args += draw(
        flags(
            **{
                "--workers": some(["1"], ["0", "64", "x"]),
                "--threads-per-worker": small,
                "--batch": small,
                "--max-failures": small,
                "--worker-timeout": seconds,
                "--flush-seconds": seconds,
                "--samples": some(["4"], ["0", "3", "10000000", "x"]),
                "--replicates": some(["1", "2"], ["0", "10001", "x"]),
                "--population": POPULATION,
                "--days": DAYS,
                "--scheduler": some(["local", "tcp://127.0.0.1:1"]),
                "--cluster": some(["local"], ["slurm", "moon"]),
            }
        )
    )
    if draw(st.booleans()):
        args.append("--resume")
    return args


@pytest.fixture(scope="module")
def folder():
    """The files the examples name: scenarios good, bad and binary, lessons, a sweep file, a regular file."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "adir").mkdir()
        (d / "FILE").write_text("a regular file\n")
        (d / "bad.toml").write_text("[market]\npopulation = = 1\n")
        (d / "binary.toml").write_bytes(b"\xff\xfe\x00")
        (d / "control.toml").write_text(f'extends = "{SCENARIOS / "base.toml"}"\nname = "c"\n')
        (d / "lesson.toml").write_text(
            f'extends = "{SCENARIOS / "base.toml"}"\nname = "l"\n[lesson]\ncontrol = "control.toml"\n'
            'expect = { retention = "lower", nope = "higher" }\n'
        )
        (d / "broken_lesson.toml").write_text(
            f'extends = "{SCENARIOS / "base.toml"}"\nname = "l"\n[[events]]\nday = 2\nkind = "outage"\nsize = 0.5\n'
            '[lesson]\ncontrol = "missing.toml"\nexpect = { retention = "lower" }\n'
        )
        parameters = (
            '[parameters]\n"market.promise" = { range = [0, 1], steps = 2 }\n"market.price_per_month" = [40.0, 50.0]\n'
        )
        (d / "sweep.toml").write_text(
            f'scenario = "base"\npopulation = 300\ndays = 3\n[design]\nkind = "grid"\n{parameters}'
        )
        (d / "sobol.toml").write_text(
            'scenario = "base"\npopulation = 300\ndays = 3\n[design]\nkind = "sobol"\nsamples = 4\n'
            + parameters.replace(", steps = 2", "")
        )
        yield d


def outcome(folder: Path, args: list[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `cxsim ARGS` run in-process in `folder` (OUT a fresh folder name)."""
    out = folder / f"out-{next(COUNTER)}"
    args = [str(out) if a == "OUT" else str(folder / a) if a.startswith("FILE") else a for a in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    no_cluster = ScenarioError(WOULD_START)
    with (
        contextlib.chdir(folder),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        mock.patch("cxsim.sweep.client_for", side_effect=no_cluster),
    ):
        try:
            code = main(args)
        except SystemExit as e:  # argparse: a flag it cannot parse
            code = e.code
    if code == 2:
        assert not out.exists(), f"{args}: refused, yet wrote {out}"
    return code, stdout.getvalue(), stderr.getvalue()


COUNTER = itertools.count()
WOULD_START = "(test) the sweep would start its Dask cluster here"
examples = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


def assert_clean(args, code, stdout, stderr):
    started = code == 2 and WOULD_START in stderr
    # pytest --hypothesis-show-statistics: how many ran (or would have started a cluster), how many were refused
    event(f"{args[0]}: {'valid, would start a cluster' if started else f'exit {code}'}")
    assert code in (0, 2), f"cxsim {' '.join(args)}: exit {code}\n{stderr}"
    assert "Traceback" not in stderr and "internal error" not in stderr, f"cxsim {' '.join(args)}\n{stderr}"
    if code == 2:
        assert stderr.strip() and not stdout, f"cxsim {' '.join(args)}: exit 2 needs a message on stderr only"
        assert stderr.startswith(("cxsim: ", "usage: cxsim")), stderr


@examples
@given(scenario_commands())
def test_random_scenario_commands_exit_0_or_2_without_a_traceback(folder, args):
    assert_clean(args, *outcome(folder, args))


@examples
@given(sweep_commands())
def test_random_sweep_commands_exit_0_or_2_without_a_traceback(folder, args):
    assert_clean(args, *outcome(folder, args))
