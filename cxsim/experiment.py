"""Replicates of a scenario and their tidy results: runs, run-days, departments, KPI means with 95% intervals."""

import sys
from dataclasses import dataclass
from pathlib import Path

import numba
import pandas as pd
from tqdm import tqdm

from cxsim import metrics
from cxsim.compiler import compile_once
from cxsim.files import write_folder
from cxsim.kpis import KPIS, number
from cxsim.memory import check_memory
from cxsim.model import CXModel
from cxsim.schema import Scenario
from cxsim.stats import interval


class KPITable(pd.DataFrame):
    """A table of KPI values that prints them as the reports write them (`cxsim.kpis.number`: money in plain
    figures with thousands separators, not 1.2e+08); its columns stay floats, and tables derived from it are
    plain DataFrames."""

    @property
    def _constructor(self):
        return pd.DataFrame

    def __repr__(self) -> str:
        return self.to_string(float_format=number, na_rep="-")

    def _repr_html_(self) -> str:
        return self.to_html(float_format=number, na_rep="-")


@dataclass
class Results:
    """What `run` returns: tidy tables (one row per run, per run-day, per run-department) and summaries."""

    scenario: Scenario
    engine: str
    runs: pd.DataFrame
    days: pd.DataFrame
    departments: pd.DataFrame

    def kpis(self) -> dict[str, dict]:
        return {k: interval(self.runs[k].tolist()) for k in KPIS}

    def to_dict(self) -> dict:
        """The JSON contract of `cxsim run --json`."""
        dept = self.departments.groupby("department", sort=False)[["budget", "failures", "churn_attributed"]].mean()
        return {
            "scenario": self.scenario.name,
            "engine": self.engine,
            "seed": self.scenario.seed,
            "days": self.scenario.days,
            "population": self.scenario.market.population,
            **represented(self.scenario),
            "replicates": int(len(self.runs)),
            "kpis": self.kpis(),
            "departments": {name: {k: float(v) for k, v in row.items()} for name, row in dept.iterrows()},
        }

    def table(self) -> "KPITable":
        """KPI, mean and 95% interval: float columns, printed readably."""
        rows = [
            {"kpi": k, "mean": s["mean"], "ci95_low": s["ci95"][0], "ci95_high": s["ci95"][1]}
            for k, s in self.kpis().items()
        ]
        return KPITable(pd.DataFrame(rows).set_index("kpi").astype(float))

    def plot(self, path=None):
        from cxsim.plots import trajectories

        return trajectories(self.days, title=self.scenario.name, path=path)

    def write(self, out_dir) -> list[Path]:
        """Parquet tables and the trajectory plot into `out_dir`, replaced whole (`cxsim.files.write_folder`)."""

        def write(folder: Path):
            for name, frame in (("runs", self.runs), ("days", self.days), ("departments", self.departments)):
                frame.to_parquet(folder / f"{name}.parquet", index=False)
            self.plot(folder / "trajectories.png")

        return write_folder(out_dir, write)


def represented(scenario: Scenario) -> dict:
    """The JSON's `represents` (with `market.represents`: the people of the market whom the counts and money are
    for, the simulated `population` being their sample); nothing when the sample stands for itself."""
    people = scenario.market.represents
    return {} if people is None else {"represents": people}


def run(
    scenario: Scenario,
    replicates: int | None = None,
    engine: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    variants: list[Scenario] | None = None,
    columns: list[dict] | None = None,
) -> Results:
    """Run `replicates` replicates (seed, seed+1, ...) of a scenario and collect tidy results.

    `variants` (one scenario per replicate, e.g. the scenario at each posterior draw): replicate r runs
    `variants[r]` on seed `scenario.seed + r`, labelled as `scenario`; `columns` (one dict per replicate) adds
    columns to the runs table (e.g. the draw's parameter values)."""
    engine = engine or scenario.engine
    replicates = replicates or (len(variants) if variants is not None else scenario.replicates)
    if variants is not None and len(variants) != replicates:
        raise ValueError(f"run: {len(variants)} variants for {replicates} replicates")
    for s in variants or [scenario]:
        check_memory(s)
    if threads:
        numba.set_num_threads(threads)
    if progress is None:
        progress = sys.stderr.isatty()
    compile_once(engine)  # a cold numba cache: say so, rather than pause in silence
    bar = tqdm(
        total=replicates * scenario.days,
        disable=not progress,
        unit="day",
        desc=scenario.name,
        file=sys.stderr,
        mininterval=0.5,
    )
    runs, days, depts = [], [], []
    for r in range(replicates):
        seed = scenario.seed + r
        model = CXModel(scenario if variants is None else variants[r], seed=seed, engine=engine)
        for _ in range(scenario.days):
            model.step()
            bar.update(1)
        ids = {"scenario": scenario.name, "replicate": r, "seed": seed}
        runs.append({**ids, "engine": engine, **(columns[r] if columns else {}), **metrics.run_kpis(model)})
        days.append(metrics.daily_table(model).assign(**ids))
        depts.append(metrics.department_table(model).assign(**ids))
    bar.close()
    return Results(
        scenario, engine, pd.DataFrame(runs), pd.concat(days, ignore_index=True), pd.concat(depts, ignore_index=True)
    )
