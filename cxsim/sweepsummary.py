"""A sweep store after (or during) its sweep: per design point the replicate means with 95% intervals, how
complete the store is and which runs failed; two stores of the same design compared by paired differences.

    from cxsim.sweepsummary import summarize
    s = summarize("out/cco")                      # or summarize("out/cco", against="out/siloed")
    s.points        # per design point: parameters, replicates stored, per KPI the mean, KPI_lo, KPI_hi
    s.differences   # with `against`: per point the paired differences out - against, KPI, KPI_lo, KPI_hi
    s.failed        # the failed runs: run id, replicate, seed, parameters, error
    s.to_dict()     # what `cxsim sweep summary DIR --json` prints

Two stores have the same design when they hold the same points (parameter values) and seeds: the same sweep
file run on two model versions, or with other `--set` values. Replicate r of a point met the same random
numbers in both, so the paired differences are far tighter than the two intervals side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxsim.kpis import KPIS, number
from cxsim.scenario import ScenarioError
from cxsim.stats import interval, verdict
from cxsim.sweepstore import load, meta


@dataclass
class SweepSummary:
    out: str
    name: str
    kpis: list[str]
    parameters: list[str]
    runs: int  # runs in the design
    stored: int  # of them, stored
    failed: pd.DataFrame  # failed and not stored since
    missing: list[str]  # neither stored nor failed: not run yet (the same command runs them)
    twice: list[str]  # stored more than once
    points: pd.DataFrame
    against: str | None = None
    differences: pd.DataFrame | None = None

    @property
    def complete(self) -> bool:
        return self.stored == self.runs and not self.twice

    def completeness(self) -> str:
        twice = f", {len(self.twice)} stored twice" if self.twice else ""
        return (
            f"{self.runs} runs in the design: {self.stored} stored, {len(self.failed)} failed, "
            f"{len(self.missing)} not run{twice}" + (" (complete)" if self.complete else "")
        )

    def to_dict(self) -> dict:
        def rows(frame: pd.DataFrame, n: str, diff: bool) -> list[dict]:
            return [
                {
                    "point": int(r["point"]),
                    "parameters": {p: r[p] for p in self.parameters},
                    n: int(r[n]),
                    "kpis": {k: _kpi(r, k, diff) for k in self.kpis},
                }
                for r in frame.to_dict("records")
            ]

        return {
            "store": self.out,
            "name": self.name,
            "kpis": self.kpis,
            "parameters": self.parameters,
            "completeness": {
                "runs": self.runs,
                "stored": self.stored,
                "failed": len(self.failed),
                "missing": len(self.missing),
                "stored_twice": len(self.twice),
                "complete": self.complete,
            },
            "failed": self.failed.to_dict("records"),
            "missing": self.missing,
            "stored_twice": self.twice,
            "points": rows(self.points, "replicates", False),
            "against": self.against,
            "differences": None if self.differences is None else rows(self.differences, "pairs", True),
        }

    def text(self) -> str:
        """The summary for the terminal: completeness, failed runs, one table per KPI."""
        lines = [f"{self.name} ({self.out}): {self.completeness()}"]
        for r in self.failed.head(10).to_dict("records"):
            params = ", ".join(f"{p} = {r[p]}" for p in self.parameters)
            lines.append(f"  failed: {r['run_id']} ({params}; seed {r['seed']}): {r['error']}")
        if len(self.failed) > 10:
            lines.append(f"  ... and {len(self.failed) - 10} more failed runs (--json lists them all)")
        header = ["point", *self.parameters, "n", "mean", "95% CI"]
        if self.differences is not None:
            header += ["pairs", f"diff vs {self.against}", "95% CI", "verdict"]
        diffs = None if self.differences is None else self.differences.set_index("point")
        for k in self.kpis:
            table = []
            for r in self.points.to_dict("records"):
                row = [str(r["point"]), *(_value(r[p]) for p in self.parameters), str(r["replicates"])]
                row += [number(r[k]), _ci(r, k)]
                if diffs is not None:
                    d = diffs.loc[r["point"]]
                    ci = [_none(d[f"{k}_lo"]), _none(d[f"{k}_hi"])]
                    row += [str(d["pairs"]), _signed(d[k]), _ci(d, k), verdict(ci)]
                table.append(row)
            lines += ["", f"{k}: {KPIS[k]}", _table(header, table)]
        return "\n".join(lines)


def summarize(out: str | Path, against: str | Path | None = None, kpis: list[str] | None = None) -> SweepSummary:
    """The summary of the store at `out`; with `against`, the paired differences out - against per point."""
    info, design, runs = _store(out)
    kpis = list(kpis or info["kpis"])
    unknown = [k for k in kpis if k not in info["kpis"]]
    if unknown:
        raise ScenarioError(f"--kpis: {out} holds no KPI {', '.join(unknown)}; it holds {', '.join(info['kpis'])}")
    params = list(info["parameters"])
    counts = runs["run_id"].value_counts() if len(runs) else pd.Series(dtype=int)
    ids = list(dict.fromkeys(design["run_id"]))
    errors = load(out, "errors")
    failed_ids = set(errors.get("run_id", []))
    columns = ["run_id", "replicate", "seed", *params, "error"]
    failed = errors[columns].reset_index(drop=True) if len(errors) else pd.DataFrame(columns=columns)
    merged = _with_kpis(design, runs, kpis)
    summary = SweepSummary(
        out=str(out),
        name=info["name"],
        kpis=kpis,
        parameters=params,
        runs=len(ids),
        stored=sum(i in counts.index for i in ids),
        failed=failed,
        missing=[i for i in ids if i not in counts.index and i not in failed_ids],
        twice=[i for i in ids if counts.get(i, 0) > 1],
        points=_per_point(merged, params, kpis, "replicates"),
    )
    if against is not None:
        base_info, base_design, base_runs = _store(against)
        _same_design(out, design, against, base_design, params, base_info)
        missing = [k for k in kpis if k not in base_info["kpis"]]
        if missing:
            raise ScenarioError(f"--against {against}: holds no KPI {', '.join(missing)} (--kpis chooses others)")
        base = _with_kpis(base_design, base_runs, kpis)
        key = ["point", "replicate"]
        pairs = merged.merge(base[key + kpis], on=key, suffixes=("", "_base"))
        for k in kpis:
            pairs[k] = pairs[k] - pairs[f"{k}_base"]
        summary.against = str(against)
        summary.differences = _per_point(pairs, params, kpis, "pairs")
    return summary


def _store(out) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A store's record of its sweep, its design and its runs."""
    if not (Path(out) / "sweep.json").is_file():
        raise ScenarioError(f"{out}: not a sweep directory (no sweep.json)")
    return meta(out), pd.read_parquet(Path(out) / "design.parquet"), load(out)


def _with_kpis(design: pd.DataFrame, runs: pd.DataFrame, kpis: list[str]) -> pd.DataFrame:
    """The design's rows with each stored run's KPIs (NaN where the run is not stored)."""
    if runs.empty:
        return design.assign(**{k: float("nan") for k in kpis})
    return design.merge(runs.drop_duplicates("run_id")[["run_id", *kpis]], on="run_id", how="left")


def _per_point(rows: pd.DataFrame, params: list[str], kpis: list[str], n: str) -> pd.DataFrame:
    """Per design point: its parameters, how many values it has, and each KPI's mean and 95% interval."""
    out = []
    for point, group in rows.groupby("point", sort=True):
        row = {"point": int(point), **{p: group[p].iloc[0] for p in params}}
        row[n] = int(group[kpis].notna().all(axis=1).sum())
        for k in kpis:
            i = interval(group[k].astype(float).tolist())
            row[k], (row[f"{k}_lo"], row[f"{k}_hi"]) = i["mean"], i["ci95"]
        out.append(row)
    return pd.DataFrame(out)


def _same_design(out, design, against, base, params, base_info) -> None:
    """Refuse two stores whose points or seeds differ: their runs cannot be paired."""
    if list(base_info["parameters"]) != params:
        raise ScenarioError(
            f"--against {against}: not the same design as {out}: parameters {base_info['parameters']}, "
            f"expected {params}"
        )
    key = ["point", "replicate", "seed", *params]
    a = design[key].sort_values(["point", "replicate"]).reset_index(drop=True)
    b = base[key].sort_values(["point", "replicate"]).reset_index(drop=True)
    if len(a) != len(b):
        raise ScenarioError(f"--against {against}: not the same design as {out}: {len(b)} runs, expected {len(a)}")
    differ = ~(a.eq(b) | (a.isna() & b.isna())).all(axis=1)
    if differ.any():
        r = a[differ].iloc[0]
        raise ScenarioError(
            f"--against {against}: not the same design as {out}: point {r['point']} replicate {r['replicate']} "
            "has other parameter values or another seed"
        )


def _none(x):
    return None if x is None or x != x else float(x)


def _kpi(row: dict, k: str, diff: bool) -> dict:
    d = {"mean": _none(row[k]), "ci95": [_none(row[f"{k}_lo"]), _none(row[f"{k}_hi"])]}
    return d | {"verdict": verdict(d["ci95"])} if diff else d


def _value(x) -> str:
    return number(x) if isinstance(x, int | float) and not isinstance(x, bool) else str(x)


def _signed(x) -> str:
    return number(x) if x is None or x != x or x < 0 else "+" + number(x)


def _ci(row, k: str) -> str:
    lo, hi = _none(row[f"{k}_lo"]), _none(row[f"{k}_hi"])
    return "-" if lo is None else f"[{number(lo)}, {number(hi)}]"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows])


def add_arguments(p) -> None:
    """The options of `cxsim sweep summary`."""
    p.add_argument("out", help="a sweep's results directory (its --out)")
    p.add_argument(
        "--against",
        metavar="DIR",
        help="a store of the same design (same points and seeds): paired differences OUT - DIR per point",
    )
    p.add_argument("--kpis", help="comma-separated KPIs to show (default: every KPI the store holds)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def main(args) -> int:
    kpis = [k.strip() for k in args.kpis.split(",")] if args.kpis else None
    s = summarize(args.out, args.against, kpis)
    if args.json:
        print(json.dumps(s.to_dict(), indent=1, allow_nan=False, default=_native))
    else:
        print(s.text())
    return 0


def _native(x):
    """numpy scalars (parameter values, seeds) as Python numbers for JSON."""
    return x.item()
