"""Paired comparison of scenarios: common random numbers, differences against a baseline, and their intervals.

Every scenario runs with the baseline's seed and replicate count, so replicate r
of each scenario meets the same luck (the same customer draws the same
numbers). A KPI's difference against the baseline is then taken replicate by
replicate, and its 95% interval is that of the paired differences: far
narrower than comparing two independent means.

With a calibration's posterior (`posterior=DIR`, `cxsim compare --posterior DIR`), replicate r of every
scenario also runs the same parameter draw θ_r (common random numbers on the parameters as well as the seeds),
and every scenario runs once more at the posterior's centre on the same seeds: the split of each paired
difference's variance into the parameters' part and the simulation's own noise (`stats.variance_split`,
docs/CALIBRATION.md "Carrying the uncertainty into a comparison").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from cxsim import metrics
from cxsim.experiment import Results, represented, run
from cxsim.kpis import KPIS
from cxsim.scenario import ScenarioError, diff_parameters, trace_scenario
from cxsim.schema import Scenario
from cxsim.stats import interval, unpaired_interval, variance_split, verdict


@dataclass(frozen=True)
class Arm:
    """A scenario to compare, given as its file (or a bundled name) and the options `cxsim compare` loads it
    with. With a posterior, each draw's parameters are set on it as the calibration set them: as a layer of
    `KEY=VALUE` settings after the file and its overrides, before `population` scales the scenario."""

    path: str | Path
    overrides: tuple = ()  # `KEY=VALUE`, or (option, `KEY=VALUE`) to name the option in messages
    population: int | None = None
    days: int | None = None
    seed: int | None = None
    replicates: int | None = None
    engine: str | None = None
    name: str | None = None  # replaces the file's name (e.g. a --vary label)
    description: str | None = None

    def trace(self, extra=()) -> tuple[Scenario, dict]:
        """The scenario (with `extra` settings) and which file or option set each key."""
        s, prov = trace_scenario(
            self.path,
            [*self.overrides, *extra],
            population=self.population,
            days=self.days,
            seed=self.seed,
            replicates=self.replicates,
            engine=self.engine,
        )
        update = {k: v for k, v in (("name", self.name), ("description", self.description)) if v is not None}
        return (s.model_copy(update=update) if update else s), prov

    def load(self, extra=()) -> Scenario:
        return self.trace(extra)[0]


@dataclass
class Comparison:
    """Results of several scenarios run with common random numbers; the first is the baseline."""

    results: list[Results]
    horizon_years: tuple[float, ...] = (1, 3, 5)  # the horizons of `horizons`, in years
    # with a posterior: every scenario at the posterior's centre on the same seeds, and what was drawn (`to_dict`)
    central: list[Results] | None = None
    posterior: dict | None = None

    @property
    def baseline(self) -> Results:
        return self.results[0]

    @property
    def labels(self) -> list[str]:
        return [r.scenario.name for r in self.results]

    @cached_property
    def kpis(self) -> dict[str, dict[str, dict]]:
        """KPI -> scenario -> mean, ci95, values, and (not for the baseline) the paired difference."""
        return {
            k: self._paired(
                [r.runs[k].to_numpy(float) for r in self.results],
                None if self.central is None else [c.runs[k].to_numpy(float) for c in self.central],
            )
            for k in KPIS
        }

    @cached_property
    def horizons(self) -> dict[int, dict[str, dict[str, dict]]]:
        """Year -> KPI -> scenario -> summary as in `kpis`, at each of `horizon_years` the runs reach: stocks
        on the horizon's last day, flows summed up to it (`metrics.HORIZON_KPIS`)."""
        out = {}
        for years in self.horizon_years:
            horizon = round(365 * years)
            if horizon > self.baseline.scenario.days:
                continue

            def at(results, horizon=horizon):
                return [
                    [
                        metrics.at_horizon(run_days, horizon, r.scenario.finance.discount_rate)
                        for _, run_days in r.days.groupby("replicate", sort=True)
                    ]
                    for r in results
                ]

            values = at(self.results)
            central = None if self.central is None else at(self.central)
            out[years] = {
                k: self._paired(
                    [np.array([v[k] for v in per_run]) for per_run in values],
                    None if central is None else [np.array([v[k] for v in per_run]) for per_run in central],
                )
                for k in metrics.HORIZON_KPIS
            }
        return out

    def _paired(self, values: list[np.ndarray], central: list[np.ndarray] | None = None) -> dict[str, dict]:
        """Scenario -> mean, ci95, values of one KPI (one array per scenario, by replicate) and, for all but the
        baseline, the paired difference against the baseline with its intervals and verdict. With `central` (the
        same at the posterior's centre): the difference's interval there and the split of its variance."""
        base = values[0]
        row = {}
        for i, (r, v) in enumerate(zip(self.results, values, strict=True)):
            summary = interval(v.tolist())
            if r is not self.baseline:
                diff = interval((v - base).tolist())
                summary |= {
                    "diff": diff["mean"],
                    "diff_ci95": diff["ci95"],
                    "verdict": verdict(diff["ci95"]),
                    "diff_ci95_unpaired": unpaired_interval(base, v),
                }
                if central is not None:
                    at_centre = central[i] - central[0]
                    c = interval(at_centre.tolist())
                    summary |= {
                        "diff_at_centre": c["mean"],
                        "diff_ci95_at_centre": c["ci95"],
                        "variance": variance_split(v - base, at_centre),
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

    def central_runs(self) -> pd.DataFrame | None:
        """With a posterior: the runs at the posterior's centre (the same seeds), else None."""
        return None if self.central is None else pd.concat([r.runs for r in self.central], ignore_index=True)

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
            **({} if self.posterior is None else {"posterior": self.posterior}),
        }


def compare(
    scenarios: list[Scenario | Arm | str | Path],
    replicates: int | None = None,
    engine: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    horizon_years: tuple[float, ...] = (1, 3, 5),
    posterior: str | Path | None = None,
    draws: int | None = None,
) -> Comparison:
    """Run every scenario with the first one's seed and replicates (common random numbers); the comparison
    also reports the paired differences at each of `horizon_years` that the runs reach. A scenario is a loaded
    `Scenario`, or a file or bundled name (a str, a Path or an `Arm` with its options).

    `posterior`: a `cxsim calibrate` folder. Replicate r of every scenario runs draw r of `draws` (default:
    `replicates`, else the first scenario's; at least 2) from the calibration's posterior on seed `seed + r`,
    and every scenario runs again at the posterior's centre on the same seeds, for the split of each paired
    difference's variance (docs/CALIBRATION.md, "Carrying the uncertainty into a comparison"). The scenarios
    must then be files or names: the draw's values are set as the calibration set them."""
    if not scenarios:
        raise ScenarioError("compare: expected at least one scenario")
    if posterior is not None:
        return _compare_posterior(
            [_arm(s) for s in scenarios], posterior, draws, replicates, engine, threads, progress, horizon_years
        )
    if draws is not None:
        raise ScenarioError("--draws: only with --posterior DIR (the draws come from a calibration's posterior)")
    scenarios = [s if isinstance(s, Scenario) else _arm(s).load() for s in scenarios]
    _distinct([s.name for s in scenarios])
    first = scenarios[0]
    replicates = replicates or first.replicates
    common = {"seed": first.seed, "replicates": replicates}
    return Comparison(
        [run(s.model_copy(update=common), engine=engine, threads=threads, progress=progress) for s in scenarios],
        horizon_years=tuple(horizon_years),
    )


def _distinct(names: list[str]) -> None:
    doubles = sorted({n for n in names if names.count(n) > 1})
    if doubles:
        raise ScenarioError(
            f"compare: scenario names must differ (they label the results), repeated: "
            f"{', '.join(doubles)}; set `name` in the files or use --vary"
        )


def _arm(s) -> Arm:
    if isinstance(s, Arm):
        return s
    if isinstance(s, str | os.PathLike):
        return Arm(s)
    if isinstance(s, Scenario):
        raise ScenarioError(
            "compare(posterior=...): expected the scenarios as files or bundled names (str, Path or "
            "cxsim.comparison.Arm), not loaded Scenario objects: a draw's values are set as the calibration set "
            "them, before --population scales the scenario, and the file that set a key tells an arm's own setting "
            "of a calibrated key from the calibration's"
        )
    raise ScenarioError(f"compare: expected a Scenario, a file or a bundled name, got {type(s).__name__}")


def _setter(prov: dict, key: str) -> str | None:
    """The file or option that set a dotted key (or a table enclosing it); None for the schema's default."""
    path = tuple(key.split("."))
    for i in range(len(path), 0, -1):
        if path[:i] in prov:
            return prov[path[:i]][0]
    return None


def _files_of(arm: Arm) -> set[Path]:
    """The files of an arm's `extends` chain, resolved."""
    from cxsim.scenario import _chain, _locate

    file = _locate(arm.path)
    return {Path(label).resolve() for label, _ in _chain(file, str(file), [])}


def _value(scenario: Scenario, key: str):
    obj = scenario
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def _number(v) -> str:
    """A value as a TOML number (a whole-number key as an integer)."""
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return str(int(v))
    return repr(float(v))


def _plain(v):
    return int(v) if isinstance(v, int | np.integer) else float(v)


def _compare_posterior(arms, folder, draws, replicates, engine, threads, progress, horizon_years) -> Comparison:
    """`compare` with a posterior: every check (the folder, the draws, every scenario at every draw) before the
    first run."""
    from dataclasses import replace

    from cxsim.calibration.posterior import DRAW_STREAM, posterior_draws, read_posterior

    post = read_posterior(folder)
    scenarios = [arm.load() for arm in arms]
    _distinct([s.name for s in scenarios])
    first = scenarios[0]
    if draws is not None and replicates is not None and draws != replicates:
        raise ScenarioError(
            f"--draws {draws} and --replicates {replicates}: with --posterior, replicate r runs draw r; "
            "give one of them"
        )
    n = draws if draws is not None else replicates or first.replicates
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        given = "--draws" if draws is not None else "--replicates" if replicates is not None else "replicates"
        raise ScenarioError(
            f"--draws: expected a whole number >= 2 (the interval and its split need two draws at least), got {n!r}"
            + ("" if draws is not None else f" (from {given} of {first.name}; set --draws)")
        )
    table = posterior_draws(post, n, first.seed)
    # per draw: the support point and its values, each key in its own type (a whole-number key stays an int)
    drawn = [
        {"draw": r, "point": int(table["point"].iloc[r]), **{k: _plain(table[k].iloc[r]) for k in post.keys}}
        for r in range(n)
    ]
    calibration = set(post.chain)
    scenario_file = post.chain[-2] if len(post.chain) > 1 else None  # the scenario calibrated.toml extends
    label = f"--posterior {folder}"
    notes = list(post.notes)
    held: dict[str, dict[str, str]] = {}
    results, central, plans = [], [], []
    common = {"seed": first.seed, "replicates": n}
    for arm, s in zip(arms, scenarios, strict=True):
        # who set each calibrated key, before --population scales budgets: a file of the calibration's chain (or
        # no one: the schema's default) lets the posterior set it; the arm's own file or option wins
        _, prov = replace(arm, population=None).trace()
        own = {}
        for key in post.keys:
            src = _setter(prov, key)
            if src is not None and (src.startswith("--") or Path(src).resolve() not in calibration):
                own[key] = src
        held[s.name] = own
        for key, src in own.items():
            notes.append(
                f"{s.name} sets {key} itself ({src}): its value {_value(s, key)!r} wins over the posterior's in that "
                "scenario, so its paired differences carry that parameter's uncertainty only through the others"
            )
        if scenario_file is not None and scenario_file not in _files_of(arm):
            notes.append(
                f"{s.name} does not extend the calibration's scenario ({scenario_file}): the posterior was fitted "
                "with that scenario's other settings, which this one does not have"
            )
        free = [k for k in post.keys if k not in own]

        def layer(values, free=free):
            return [(label, f"{k}={_number(values[k])}") for k in free]

        try:
            at_centre = arm.load(layer(post.central)).model_copy(update=common)
        except ScenarioError as e:
            raise ScenarioError(f"{s.name} at the posterior's centre (summary.json's estimates): {e}") from None
        variants = []
        for r, row in enumerate(drawn):
            try:
                variants.append(arm.load(layer(row)).model_copy(update=common))
            except ScenarioError as e:
                raise ScenarioError(f"{s.name} with draw {r} (point {row['point']} of {post.source}): {e}") from None
        plans.append((at_centre, variants))
    for at_centre, variants in plans:
        columns = [
            {"point": row["point"], **{k: _value(v, k) for k in post.keys}}
            for row, v in zip(drawn, variants, strict=True)
        ]
        results.append(
            run(at_centre, engine=engine, threads=threads, progress=progress, variants=variants, columns=columns)
        )
        centre_columns = [{k: _value(at_centre, k) for k in post.keys}] * n
        central.append(run(at_centre, engine=engine, threads=threads, progress=progress, columns=centre_columns))
    info = {
        "folder": str(folder),
        "method": post.method,
        "keys": post.keys,
        "draws": n,
        "draw_seed": [int(first.seed), DRAW_STREAM],
        "support": len(post.points),
        "distinct_drawn": int(table["point"].nunique()),
        "centre": {k: _plain(v) for k, v in post.central.items()},
        "drawn": drawn,
        "held": held,
        "notes": notes,
    }
    return Comparison(results, horizon_years=tuple(horizon_years), central=central, posterior=info)
