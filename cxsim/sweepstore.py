"""A sweep's results on disk: a Parquet dataset that grows by whole parts and survives being killed.

    OUT/sweep.json          the sweep: parameters, design, KPIs, model version
    OUT/design.parquet      one row per design point and replicate -> run id
    OUT/runs/part-*.parquet one row per finished run: run id, parameters, seed, KPIs
    OUT/days/part-*.parquet one row per run-day (when the sweep keeps daily series)
    OUT/errors/part-*.parquet runs that raised, with their error (retried on resume)

Every part is written to a dot-named temp file and renamed into place, so no
reader ever sees a torn file. A flush writes its days part first and its runs
part last: the runs part is the commit marker, and a days part without one is
deleted when the store is opened again.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cxsim.files import atomic_write
from cxsim.scenario import ScenarioError

TABLES = ("runs", "days", "errors")


class Store:
    """The Parquet store of one sweep directory; holds a lock so that two sweeps never write it at once."""

    def __init__(self, out: str | Path, meta: dict):
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise ScenarioError(f"--out {out}: expected a directory, found a file")
        for table in TABLES:
            (self.out / table).mkdir(parents=True, exist_ok=True)
        self._lock = open(self.out / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScenarioError(f"--out {out}: another sweep is writing to this directory") from None
        self._check(meta)
        self._recover()
        self.meta = meta

    def begin(self, design: pd.DataFrame) -> None:
        """Record the sweep and its design (once the workers are there)."""
        atomic_write(self.out / "sweep.json", lambda p: Path(p).write_text(json.dumps(self.meta, indent=1)))
        atomic_write(self.out / "design.parquet", lambda p: design.to_parquet(p, index=False))

    def _check(self, meta: dict) -> None:
        """A store keeps the KPIs, daily setting and model version it was made with."""
        path = self.out / "sweep.json"
        if not path.exists() or not self.parts("runs"):
            return
        old = json.loads(path.read_text())
        for key in ("model_version", "kpis", "daily"):
            if old.get(key) != meta[key]:
                raise ScenarioError(
                    f"--out {self.out}: holds runs made with {key} = {old.get(key)!r}, "
                    f"this sweep has {meta[key]!r}; use another --out directory"
                )

    def _recover(self) -> None:
        """Delete temp files of a killed writer and days parts whose runs part was never committed."""
        committed = {p.name for p in self.parts("runs")}
        for table in TABLES:
            for p in (self.out / table).glob(".*"):
                p.unlink(missing_ok=True)
        for p in self.parts("days"):
            if p.name not in committed:
                p.unlink()

    def parts(self, table: str) -> list[Path]:
        return sorted((self.out / table).glob("part-*.parquet"))

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
        self._lock.close()


def _read(out: Path, table: str) -> pd.DataFrame:
    parts = sorted((out / table).glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True) if parts else pd.DataFrame()


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
