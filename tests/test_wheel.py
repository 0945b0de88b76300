"""The wheel works anywhere: built from the sources, installed into a fresh venv, run from a directory outside
the checkout, with the bundled scenarios and lessons it carries as package data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIP = ["-m", "pip", "--quiet", "--disable-pip-version-check"]
pytestmark = pytest.mark.slow  # builds and installs a wheel, and compiles the kernel into an empty cache


def ok(cmd: list, cwd: Path, env: dict) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_the_installed_wheel_runs_base_and_a_lesson_from_anywhere(tmp_path):
    # the build writes build/ and cxsim.egg-info next to the sources: build from a copy, not the checkout
    source = tmp_path / "source"
    shutil.copytree(ROOT / "cxsim", source / "cxsim", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba_cache")  # the venv's compiled code stays out of the project's
    venv = tmp_path / "venv"
    python, cxsim = venv / "bin" / "python", venv / "bin" / "cxsim"
    try:
        dist = tmp_path / "dist"
        ok([sys.executable, *PIP, "wheel", "--no-deps", "--wheel-dir", dist, source], tmp_path, env)
        (wheel,) = dist.glob("cxsim-*.whl")
        ok([sys.executable, "-m", "venv", venv], tmp_path, env)
        # the dependencies come from pip's cache (make setup filled it); byte-compiling them would take a minute
        ok([python, *PIP, "install", "--no-compile", wheel], tmp_path, env)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()

        code = "import cxsim, cxsim.scenario as s; print(cxsim.__file__); print(s.SCENARIOS)"
        where = ok([python, "-c", code], elsewhere, env).split()
        for path in map(Path, where):
            assert path.is_relative_to(venv.resolve()) and not path.is_relative_to(ROOT), where

        run = json.loads(ok([cxsim, "run", "base", "--days", "5", "--population", "1000", "--json"], elsewhere, env))
        assert (run["scenario"], run["days"], run["population"]) == ("base", 5, 1000)
        listed = ok([cxsim, "lesson"], elsewhere, env)
        assert all(name in listed for name in ("broken_promise", "billing_ripple", "start_small"))
        small = ["--population", "1000", "--days", "30", "--replicates", "2"]
        lesson = ok([cxsim, "lesson", "broken_promise", *small], elsewhere, env)
        assert lesson.startswith("broken_promise: ") and "outcome" in lesson
        assert not list(elsewhere.iterdir())  # nothing written where it ran
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # a few hundred MB; pytest keeps the last runs' tmp dirs
