"""Paired comparison of scenarios: common random numbers, differences against a baseline, and their intervals.

Every scenario runs with the baseline's seed and replicate count, so replicate r
of each scenario meets the same luck (the same customer draws the same
numbers). A KPI's difference against the baseline is then taken replicate by
replicate, and its 95% interval is that of the paired differences: far
narrower than comparing two independent means.
"""

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from cxsim.experiment import Results, run
from cxsim.kpis import KPIS
from cxsim.scenario import ScenarioError, diff_parameters
from cxsim.schema import Scenario
from cxsim.stats import interval, unpaired_interval, verdict


@dataclass
class Comparison:
    """Results of several scenarios run with common random numbers; the first is the baseline."""

    results: list[Results]

    @property
    def baseline(self) -> Results:
        return self.results[0]

    @property
    def labels(self) -> list[str]:
        return [r.scenario.name for r in self.results]

    @cached_property
    def kpis(self) -> dict[str, dict[str, dict]]:
        """KPI -> scenario -> mean, ci95, values, and (not for the baseline) the paired difference."""
        out = {}
        for k in KPIS:
            base = self.baseline.runs[k].to_numpy(float)
            row = {}
            for r in self.results:
                values = r.runs[k].to_numpy(float)
                summary = interval(values.tolist())
                if r is not self.baseline:
                    diff = interval((values - base).tolist())
                    summary |= {
                        "diff": diff["mean"],
                        "diff_ci95": diff["ci95"],
                        "verdict": verdict(diff["ci95"]),
                        "diff_ci95_unpaired": unpaired_interval(base, values),
                    }
                row[r.scenario.name] = summary
            out[k] = row
        return out

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
            "replicates": int(len(self.baseline.runs)),
            "kpis": self.kpis,
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
) -> Comparison:
    """Run every scenario with the first one's seed and replicates (common random numbers)."""
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
        [run(s.model_copy(update=common), engine=engine, threads=threads, progress=progress) for s in scenarios]
    )
