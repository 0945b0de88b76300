"""The teaching view: a Mesa SolaraViz page with lessons (`cxsim viz`). Needs the `viz` extra."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from cxsim.scenario import ScenarioError

APP = Path(__file__).resolve().parent / "app.py"


def server_command(port: int) -> list[str]:
    """The solara server for the page, on loopback only, without reloading or telemetry."""
    return [
        sys.executable,
        "-m",
        "solara",
        "run",
        str(APP),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--production",
        "--no-open",
    ]


def server_env(
    lesson: str | None = None, lessons: str | Path | None = None, compare: str | None = None
) -> dict[str, str]:
    """The server's environment: what the page opens with (lesson, side-by-side contrast), where lessons are."""
    env = dict(os.environ, SOLARA_TELEMETRY_MIXPANEL_ENABLE="False", MPLBACKEND="Agg")
    if lesson:
        env["CXSIM_LESSON"] = lesson
    if lessons:
        env["CXSIM_LESSONS"] = str(Path(lessons).resolve())
    if compare:
        env["CXSIM_COMPARE"] = compare
    return env


def check(port: int, lesson: str | None, lessons: str | Path | None, compare: str | None = None) -> None:
    """Bad input before the server starts: a port taken or out of range, an unknown lesson, a broken lesson file,
    a contrast that does not hold for the lesson."""
    from cxsim.viz.teaching import FREE_PLAY, parse_contrast
    from cxsim.viz.teaching import lessons as catalogue

    if not 1 <= port <= 65535:
        raise ScenarioError(f"--port: expected a port number 1..65535, got {port}")
    if lessons is not None and not Path(lessons).is_dir():
        raise ScenarioError(f"--lessons {lessons}: expected a directory of lesson files (*.toml)")
    found = catalogue(None if lessons is None else Path(lessons))
    if lesson is not None and lesson not in found:
        raise ScenarioError(f"--lesson {lesson}: no such lesson; known: {', '.join(found)}")
    if compare is not None:
        parse_contrast(compare, found[lesson or FREE_PLAY].path)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise ScenarioError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({e.strerror})") from None


def serve(
    port: int = 8765, lesson: str | None = None, lessons: str | Path | None = None, compare: str | None = None
) -> int:
    """Run the page until interrupted (side by side if `compare` is given); returns the server's exit code."""
    check(port, lesson, lessons, compare)
    if importlib.util.find_spec("solara") is None:
        print(
            "cxsim viz: the page needs the viz extra: pip install -e '.[viz]' (make setup installs it)", file=sys.stderr
        )
        return 1
    print(f"cxsim viz: open http://127.0.0.1:{port}/ (Ctrl-C stops)", file=sys.stderr)
    with subprocess.Popen(server_command(port), env=server_env(lesson, lessons, compare)) as server:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: server.terminate())  # it goes with us
        try:
            return server.wait()
        except BaseException:  # Ctrl-C (or anything else): the server stops too
            server.kill()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
