"""`cxsim calibrate`: fit a scenario's parameters to an organisation's own numbers, with honest uncertainty.

    from cxsim.calibration import load_calibration, calibrate
    cal = load_calibration("my_company.toml", population=20000)
    summary = calibrate(cal, "out/my_company")          # the JSON summary; DIR/calibrated.toml is the fit
    check = synthetic_check(cal, "out/my_company-synthetic", truths=20)   # can the method recover known parameters?

docs/CALIBRATION.md describes the file, the likelihoods, the interval methods, the verdicts and resume.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cxsim.calibration.file import Calibration, load_calibration
from cxsim.files import atomic_write, check_writable
from cxsim.scenario import ScenarioError

__all__ = ["Calibration", "load_calibration", "calibrate", "synthetic_check", "OUTPUT_NAMES"]

SETUP = "setup.json"  # the calibration a folder holds: its presence marks a folder as a calibration's
OUTPUT_NAMES = frozenset(
    {
        SETUP,
        "optuna.db",
        "optuna.db-journal",
        "abc.db",
        "abc.db-journal",
        "trials.parquet",
        "best.parquet",
        "posterior.parquet",
        "calibrated.toml",
        "summary.json",
        "report.md",
        "report.html",
        "fit.png",
        "marginals.png",
        "pairs.png",
        "convergence.png",
    }
)
# what `--synthetic` writes (cxsim.calibration.synthetic.OUTPUT_NAMES): a folder of those is no stranger's
SYNTHETIC_NAMES = frozenset(
    {"truths", "synthetic.parquet", "synthetic.md", "synthetic.json", "synthetic.png", "synthetic.html"}
)


def check_out(cal: Calibration, out, resume: bool) -> None:
    """Refuse, before anything runs, a folder that cannot hold this calibration (nothing is written here)."""
    path = Path(out)
    if path.exists():
        if not path.is_dir():
            raise ScenarioError(f"--out {out}: expected a directory, found a file")
        names = {p.name for p in path.iterdir()}
        foreign = sorted(n for n in names if n not in OUTPUT_NAMES | SYNTHETIC_NAMES and not n.startswith("."))
        if foreign:
            raise ScenarioError(
                f"--out {out}: holds files cxsim calibrate did not write there ({', '.join(foreign[:5])}); "
                "expected a new or empty folder, or a calibration to --resume"
            )
        if SETUP in names and json.loads((path / SETUP).read_text(encoding="utf-8")).get("synthetic"):
            raise ScenarioError(
                f"--out {out}: holds a synthetic check (cxsim calibrate --synthetic), not a calibration; "
                "choose another folder (or add --synthetic to --resume it)"
            )
        if SETUP in names and not resume:
            raise ScenarioError(
                f"--out {out}: holds a calibration already ({SETUP}); --resume continues it, or choose another folder"
            )
        if SETUP in names:
            stored = json.loads((path / SETUP).read_text(encoding="utf-8"))
            if stored.get("identity") != cal.identity():
                raise ScenarioError(
                    f"--resume: {out} holds a calibration of another file or setting ({stored.get('file')}); "
                    "the file, its scenario, --population and the series must be the same to resume"
                )
    if resume and not (path / SETUP).is_file():
        raise ScenarioError(f"--resume: {out} holds no calibration to resume (no {SETUP})")
    check_writable(out)


def require_method(cal: Calibration) -> None:
    """Refuse, before anything runs, a method whose library is not installed."""
    if cal.file.method == "abc":
        try:
            import pyabc  # noqa: F401
        except ImportError:
            raise ScenarioError(
                'method = "abc" needs pyabc: pip install \'cxsim[calibrate]\' (or use method = "optimize")'
            ) from None
    else:
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ScenarioError("method = \"optimize\" needs optuna: pip install 'cxsim[calibrate]'") from None


def calibrate(cal: Calibration, out, cores=None, *, resume: bool = False, progress: bool | None = None, cluster=None):
    """Run (or with `resume`, continue) the calibration into `out`; returns the JSON summary."""
    from cxsim.calibration import report
    from cxsim.calibration.runs import Runner
    from cxsim.compiler import compile_once

    check_out(cal, out, resume)
    require_method(cal)
    runner = Runner(cal, cores, progress, cluster)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / SETUP).exists():
        setup = {"file": str(cal.path), "method": cal.file.method, "identity": cal.identity()}
        atomic_write(out / SETUP, lambda tmp: Path(tmp).write_text(json.dumps(setup) + "\n", encoding="utf-8"))
    start = time.perf_counter()
    if runner.in_process:
        compile_once(cal.scenario.engine)
    with runner:
        if cal.file.method == "optimize":
            from cxsim.calibration import optimize

            fit = optimize.run(cal, runner, out / "optuna.db")
        else:
            from cxsim.calibration import abc

            fit = abc.run(cal, runner, out / "abc.db", resume)
    fit.runs = runner.runs
    fit.seconds = time.perf_counter() - start
    return report.write(cal, fit, out)


def synthetic_check(
    cal: Calibration, out, cores=None, *, truths: int = 20, resume: bool = False, progress=None, cluster=None
):
    """The identifiability check (`cxsim calibrate FILE --synthetic`): `truths` parameter sets drawn from the
    priors, targets simulated at each, the file's method fitted to them; returns the JSON summary (coverage,
    bias and a verdict per parameter). docs/CALIBRATION.md, "Identifiability"."""
    from cxsim.calibration import synthetic

    return synthetic.run(cal, out, cores, truths=truths, resume=resume, progress=progress, cluster=cluster)


def default_out(path, synthetic: bool = False) -> str:
    return os.path.join("out", Path(path).stem + ("-synthetic" if synthetic else ""))
