"""Paired comparison of scenarios: common random numbers, differences against a baseline, and their intervals.

Every scenario runs with the baseline's seed and replicate count, so replicate r
of each scenario meets the same luck (the same customer draws the same
numbers). A KPI's difference against the baseline is then taken replicate by
replicate, and its 95% interval is that of the paired differences: far
narrower than comparing two independent means.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from cxsim import metrics
from cxsim.experiment import Results, represented, run
from cxsim.kpis import KPIS
from cxsim.scenario import ScenarioError, diff_parameters
from cxsim.schema import Scenario
from cxsim.stats import interval, unpaired_interval, verdict


@dataclass
class Comparison:
    """Results of several scenarios run with common random numbers; the first is the baseline."""

    results: list[Results]
    horizon_years: tuple[float, ...] = (1, 3, 5)  # the horizons of `horizons`, in years

    @property
    def baseline(self) -> Results:
        return self.results[0]

    @property
    def labels(self) -> list[str]:
        return [r.scenario.name for r in self.results]

    @cached_property
    def kpis(self) -> dict[str, dict[str, dict]]:
        """KPI -> scenario -> mean, ci95, values, and (not for the baseline) the paired difference."""
        return {k: self._paired([r.runs[k].to_numpy(float) for r in self.results]) for k in KPIS}

    @cached_property
    def horizons(self) -> dict[int, dict[str, dict[str, dict]]]:
        """Year -> KPI -> scenario -> summary as in `kpis`, at each of `horizon_years` the runs reach: stocks
        on the horizon's last day, flows summed up to it (`metrics.HORIZON_KPIS`)."""
        out = {}
        for years in self.horizon_years:
            horizon = round(365 * years)
            if horizon > self.baseline.scenario.days:
                continue
            values = [
                [
                    metrics.at_horizon(run_days, horizon, r.scenario.finance.discount_rate)
                    for _, run_days in r.days.groupby("replicate", sort=True)
                ]
                for r in self.results
            ]
            out[years] = {
                k: self._paired([np.array([v[k] for v in per_run]) for per_run in values]) for k in metrics.HORIZON_KPIS
            }
        return out

    def _paired(self, values: list[np.ndarray]) -> dict[str, dict]:
        """Scenario -> mean, ci95, values of one KPI (one array per scenario, by replicate) and, for all but the
        baseline, the paired difference against the baseline with its intervals and verdict."""
        base = values[0]
        row = {}
        for r, v in zip(self.results, values, strict=True):
            summary = interval(v.tolist())
            if r is not self.baseline:
                diff = interval((v - base).tolist())
                summary |= {
                    "diff": diff["mean"],
                    "diff_ci95": diff["ci95"],
                    "verdict": verdict(diff["ci95"]),
                    "diff_ci95_unpaired": unpaired_interval(base, v),
                }
            row[r.scenario.name] = summary
        return row

    def table(self) -> pd.DataFrame:
        """One row per (KPI, scenario): mean, 95% interval, paired difference with its interval, verdict."""
        rows = []
        for k, row in self.kpis.items():
            for name, s in row.items():
                lo, hi = s.get("diff_ci95", (None, None))
                rows.append(
                    {
                        "kpi": k,
                        "scenario": name,
                        "mean": s["mean"],
                        "ci95_low": s["ci95"][0],
                        "ci95_high": s["ci95"][1],
                        "diff": s.get("diff"),
                        "diff_low": lo,
                        "diff_high": hi,
                        "verdict": s.get("verdict", "baseline"),
                    }
                )
        return pd.DataFrame(rows)

    def departments(self) -> pd.DataFrame:
        return pd.concat([r.departments for r in self.results], ignore_index=True)

    def days(self) -> pd.DataFrame:
        return pd.concat([r.days for r in self.results], ignore_index=True)

    def runs(self) -> pd.DataFrame:
        return pd.concat([r.runs for r in self.results], ignore_index=True)

    def parameter_differences(self) -> dict[str, dict[str, tuple]]:
        """Scenario -> dotted key -> (baseline value, scenario value), for every key that differs."""
        labels = ("name", "description", "lesson")
        return {
            r.scenario.name: {
                k: v
                for k, v in diff_parameters(self.baseline.scenario, r.scenario).items()
                if k.split(".")[0] not in labels
            }
            for r in self.results[1:]
        }

    def to_dict(self) -> dict:
        """The JSON of `cxsim compare --json`."""
        b = self.baseline.scenario
        dept = (
            self.departments()
            .groupby(["scenario", "department"], sort=False)[["budget", "failures", "churn_attributed"]]
            .mean()
        )
        return {
            "baseline": b.name,
            "scenarios": self.labels,
            "engine": self.baseline.engine,
            "seed": b.seed,
            "days": b.days,
            "population": b.market.population,
            **represented(b),
            "replicates": int(len(self.baseline.runs)),
            "kpis": self.kpis,
            "horizons": {str(years): kpis for years, kpis in self.horizons.items()},
            "departments": {
                name: {d: {k: float(v) for k, v in dept.loc[(name, d)].items()} for d in dept.loc[name].index}
                for name in self.labels
            },
            "parameter_differences": {
                name: {k: list(v) for k, v in d.items()} for name, d in self.parameter_differences().items()
            },
        }


def compare(
    scenarios: list[Scenario],
    replicates: int | None = None,
    engine: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    horizon_years: tuple[float, ...] = (1, 3, 5),
) -> Comparison:
    """Run every scenario with the first one's seed and replicates (common random numbers); the comparison
    also reports the paired differences at each of `horizon_years` that the runs reach."""
    if not scenarios:
        raise ScenarioError("compare: expected at least one scenario")
    names = [s.name for s in scenarios]
    doubles = sorted({n for n in names if names.count(n) > 1})
    if doubles:
        raise ScenarioError(
            f"compare: scenario names must differ (they label the results), repeated: "
            f"{', '.join(doubles)}; set `name` in the files or use --vary"
        )
    first = scenarios[0]
    replicates = replicates or first.replicates
    common = {"seed": first.seed, "replicates": replicates}
    return Comparison(
        [run(s.model_copy(update=common), engine=engine, threads=threads, progress=progress) for s in scenarios],
        horizon_years=tuple(horizon_years),
    )
