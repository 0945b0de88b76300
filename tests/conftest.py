import importlib
import os
import signal
import subprocess

import pytest

from cxsim import load_scenario
from cxsim.model import CXModel
from cxsim.schema import Event

EVENTS = [
    {"day": 10, "kind": "outage", "target": "digital", "size": 0.5, "duration": 5},
    {"day": 20, "kind": "promise", "size": 0.3, "duration": 15},
    {"day": 30, "kind": "budget_cut", "target": "service", "size": 0.5},
    {"day": 35, "kind": "price", "size": 0.1},
    {"day": 40, "kind": "competitor", "size": -0.1, "duration": 10},
    {"day": 45, "kind": "competitor", "target": "price", "size": 0.2},
]


def small(population=600, days=60, overrides=(), **kw):
    """The base scenario at classroom size, with every kind of event so that every branch runs."""
    s = load_scenario("base", list(overrides), population=population, days=days, **kw)
    return s.model_copy(update={"events": tuple(Event(**e) for e in EVENTS)})


@pytest.fixture(scope="session")
def scenario():
    return small()


def simulate(scenario, **kw):
    return CXModel(scenario, **kw).run()


def required(what: str, present: bool, how: str):
    """A test module's outside requirement: skip without it on a developer's machine, fail without it in CI."""
    if present:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI ({how})", pytrace=False)
    pytest.skip(f"{what} is missing ({how})", allow_module_level=True)


def required_module(name: str, how: str = "make setup installs it"):
    try:
        return importlib.import_module(name)
    except ImportError:
        required(f"Python package {name}", False, how)


def stop(proc: subprocess.Popen, timeout: float = 10):
    """Stop a process group started with start_new_session: SIGTERM, then SIGKILL after `timeout` seconds."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
