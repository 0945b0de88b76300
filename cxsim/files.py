"""Writing output files and folders so that no reader ever sees a torn file or a folder of two runs."""

import os
import shutil
import tempfile
from pathlib import Path

from cxsim.scenario import ScenarioError

# every name `cxsim run` and `cxsim compare` (or `lesson`) write into an output folder: a folder holding
# anything else is not an earlier output of theirs, and is never replaced
OUTPUT_NAMES = frozenset(
    {
        "runs.parquet",
        "central_runs.parquet",
        "days.parquet",
        "departments.parquet",
        "trajectories.png",
        "effects.png",
        "churn_by_department.png",
        "budgets.png",
        "report.md",
        "report.html",
        "comparison.json",
    }
)


class OutputError(Exception):
    """An output could not be written; the message says what was kept."""


def fsync(path) -> None:
    """Flush a file's (or a folder's) data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> Path:
    """Call write(tmp) on a hidden temp file beside `path`, sync it, rename it into place, sync the folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        fsync(tmp)
        os.replace(tmp, path)
        fsync(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_folder(out, names=OUTPUT_NAMES) -> None:
    """Refuse, before any computing, an output folder that could not be written or holds others' files."""
    path = Path(out)
    if path.exists():
        if not path.is_dir():
            raise ScenarioError(f"--out {out}: expected a directory, found a file")
        foreign = sorted(p.name for p in path.iterdir() if p.name not in names)
        if foreign:
            raise ScenarioError(
                f"--out {out}: holds files cxsim did not write there ({', '.join(foreign[:5])}); "
                "expected a new or empty folder, or an earlier output of run, compare or lesson"
            )
    check_writable(out)


def check_writable(out) -> None:
    """Refuse an output path under a regular file or in a folder that cannot be written."""
    parent = Path(out).absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ScenarioError(f"--out {out}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ScenarioError(f"--out {out}: cannot write in {parent} (read-only or not permitted)")


def write_folder(out, write) -> list[Path]:
    """Call write(tmp) on a temporary sibling folder of `out`, sync it, then swap it in for `out`: the
    folder is replaced whole or, when anything fails, left as it was. Returns the paths written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    old = tmp.with_name(tmp.name + ".old")
    try:
        write(tmp)
        for p in tmp.iterdir():
            fsync(p)
        os.chmod(tmp, 0o755)
        fsync(tmp)
        if out.exists():
            os.rename(out, old)
        os.rename(tmp, out)
        fsync(out.parent)
    except OSError as e:
        if old.exists() and not out.exists():
            os.rename(old, out)
        kept = "left as it was" if out.exists() else "not created"
        raise OutputError(f"--out {out}: cannot write ({e.strerror or e}); {out} is {kept}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return sorted(out.iterdir())
