"""A sweep's results on disk: a Parquet dataset that grows by whole parts and survives being killed.

    OUT/sweep.json          the sweep: parameters, design, KPIs, model version
    OUT/design.parquet      one row per design point and replicate -> run id
    OUT/runs/part-*.parquet one row per finished run: run id, parameters, seed, KPIs
    OUT/days/part-*.parquet one row per run-day (when the sweep keeps daily series)
    OUT/errors/part-*.parquet runs that raised, with their error (retried on resume)

Every part is written to a dot-named temp file, synced and renamed into place (and its folder synced), so
no reader ever sees a torn file. A flush writes its days part first and its runs part last: the runs part is
the commit marker, and a days part without one is deleted when the store is opened again. Opening a store
also moves a damaged part (and the other part of its flush) aside to OUT/damaged/, so that its runs are
redone, and refuses a sweep other than the one the store holds. The store touches only files of its own
names (`part-<time>-<pid>.parquet` and their temp files): anything else in its folders is left alone.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cxsim.files import atomic_write, check_writable
from cxsim.scenario import ScenarioError

TABLES = ("runs", "days", "errors")
PART = re.compile(r"part-\d{20}-\d+\.parquet")
TEMP = re.compile(r"\.(part-\d{20}-\d+\.parquet|sweep\.json|design\.parquet)\..+")  # atomic_write's temp names
# keys of the sweep file that never change a result: a store takes its sweep with other values of these
UNRESULTED = ("name", "description", "source", "cluster")


def parts(out: Path, table: str) -> list[Path]:
    """The store's parts of one table, in the order they were written."""
    return sorted(p for p in (out / table).glob("part-*.parquet") if PART.fullmatch(p.name))


class Store:
    """The Parquet store of one sweep directory; holds a lock so that two sweeps never write it at once."""

    def __init__(self, out: str | Path, meta: dict):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ScenarioError(f"--out {out}: expected a directory, found a file")
        skeleton = [self.out, *(self.out / t for t in TABLES), self.out / ".lock"]
        self._made = [p for p in skeleton if not p.exists()]  # removed again if the sweep never begins
        check_writable(self.out)
        for table in TABLES:
            (self.out / table).mkdir(parents=True, exist_ok=True)
        self._lock = open(self.out / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise ScenarioError(f"--out {out}: another sweep is writing to this directory") from None
        try:
            self._check(meta)
            self._recover()
        except BaseException:
            self.close()
            raise
        self.meta = meta

    def begin(self, design: pd.DataFrame) -> None:
        """Record the sweep and its design (once the workers are there)."""
        atomic_write(self.out / "sweep.json", lambda p: Path(p).write_text(json.dumps(self.meta, indent=1)))
        atomic_write(self.out / "design.parquet", lambda p: design.to_parquet(p, index=False))

    def _check(self, meta: dict) -> None:
        """A store with results keeps the one resolved sweep it was made with (`identity`)."""
        path = self.out / "sweep.json"
        if not path.exists() or not (self.parts("runs") or self.parts("errors")):
            return
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            old = f"{type(e).__name__}: {e}"
        if not isinstance(old, dict) or "identity" not in old:
            raise ScenarioError(
                f"{path}: damaged or from an older cxsim ({str(old)[:80]}); expected the record of the sweep "
                f"whose results {self.out} holds: use another --out directory"
            )
        if old["identity"] != meta["identity"]:
            raise ScenarioError(
                f"--out {self.out}: holds the results of another sweep ({differences(old, meta)}); "
                "use another --out directory, or remove this one to start a new store there"
            )

    def _recover(self) -> None:
        """Delete the temp files of a killed writer, move damaged parts aside, delete uncommitted days parts."""
        for folder in (self.out, *(self.out / t for t in TABLES)):
            for p in folder.glob(".*"):
                if TEMP.fullmatch(p.name):
                    p.unlink(missing_ok=True)
        for table in TABLES:
            for p in self.parts(table):
                try:
                    pq.read_metadata(p)
                except Exception as e:  # a torn or empty file: pyarrow says ArrowInvalid, OSError, ...
                    self._set_aside(p, e)
        committed = {p.name for p in self.parts("runs")}
        for p in self.parts("days"):
            if p.name not in committed:
                p.unlink()

    def _set_aside(self, part: Path, error: Exception) -> None:
        """Move a damaged part, and the runs and days parts of the same flush, to OUT/damaged/."""
        tables = ("errors",) if part.parent.name == "errors" else ("runs", "days")
        for table in tables:
            p = self.out / table / part.name
            if p.exists():
                dest = self.out / "damaged" / table / part.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(p, dest)
        print(
            f"cxsim: {part}: damaged part ({type(error).__name__}: {error}); moved to {self.out / 'damaged'}, "
            "its runs will be redone",
            file=sys.stderr,
        )

    def parts(self, table: str) -> list[Path]:
        return parts(self.out, table)

    def done(self) -> set[str]:
        """Ids of the runs already stored."""
        return {i for p in self.parts("runs") for i in pq.read_table(p, columns=["run_id"]).column(0).to_pylist()}

    def flush(self, runs: list[dict], days: list[pd.DataFrame], errors: list[dict]) -> None:
        """Commit buffered results as one part per table: days, errors, then runs (the commit marker)."""
        name = f"part-{time.time_ns():020d}-{os.getpid()}.parquet"
        for table, frame in (
            ("days", pd.concat(days, ignore_index=True) if days else None),
            ("errors", pd.DataFrame(errors) if errors else None),
            ("runs", pd.DataFrame(runs) if runs else None),
        ):
            if frame is not None:
                atomic_write(self.out / table / name, lambda p, f=frame: f.to_parquet(p, index=False))

    def close(self) -> None:
        """Release the lock; a store that never began leaves no skeleton behind."""
        self._lock.close()
        if not (self.out / "sweep.json").exists():
            for p in reversed(self._made):
                try:
                    p.unlink() if p.is_file() else p.rmdir()
                except OSError:  # not empty: someone else's files are there
                    pass


def differences(old: dict, new: dict) -> str:
    """What differs between two stores' sweeps, in the sweep file's words."""
    a, b = old.get("sweep", {}), new["sweep"]
    keys = [k for k in ("model_version", "kpis", "daily") if old.get(k) != new[k]]
    named = [f"{k} {old.get(k)!r}, this sweep {new[k]!r}" for k in keys]
    named += [f"{k} {a.get(k)!r}, this sweep {b[k]!r}" for k in b if k not in UNRESULTED and a.get(k) != b[k]]
    return "; ".join(named) or "the scenario it builds on has changed"


def _read(out: Path, table: str) -> pd.DataFrame:
    ps = parts(out, table)
    return pd.concat([pd.read_parquet(p) for p in ps], ignore_index=True) if ps else pd.DataFrame()


def load(out: str | Path, table: str = "runs") -> pd.DataFrame:
    """A sweep's results in one DataFrame: `runs` (one row per run), `days` (per run-day), `errors` (the
    last error of each run that has not succeeded since) or `design` (per design point and replicate,
    with that run's KPIs where it has finished)."""
    out = Path(out)
    if not (out / "sweep.json").is_file():
        raise ScenarioError(f"{out}: not a sweep directory (no sweep.json)")
    if table == "design":
        design = pd.read_parquet(out / "design.parquet")
        runs = _read(out, "runs")
        if runs.empty:
            return design
        kpis = runs[["run_id", *json.loads((out / "sweep.json").read_text())["kpis"]]]
        return design.merge(kpis, on="run_id", how="left")
    if table == "errors":
        errors = _read(out, "errors")
        done = set(_read(out, "runs").get("run_id", []))
        if errors.empty:
            return errors
        latest = errors.drop_duplicates("run_id", keep="last")  # a run retried on resume may fail again
        return latest[~latest["run_id"].isin(done)].reset_index(drop=True)
    if table not in TABLES:
        raise ScenarioError(f"table: expected one of runs, days, errors, design; got {table!r}")
    return _read(out, table)


def meta(out: str | Path) -> dict:
    return json.loads((Path(out) / "sweep.json").read_text())
