"""`method = "optimize"`: Optuna (TPE, or CMA-ES with `sampler = "cmaes"`) on the summed negative
log-likelihood of the targets at the replicate mean.

- Every trial runs `replicates` runs on the same seeds (seed, seed + 1, ...): common random numbers, so two
  trials differ by their parameters, not by their luck.
- Trials are asked in batches of `batch` (fixed by the file, not by the workers) with a sampler seeded per
  batch, and told in order: the same file and seed give the same trials with any number of workers.
- The best `rerun_top` trials are re-run on fresh seeds (seed + replicates, ...), the same for each, and
  ranked by the NLL of their fresh mean; the winner is the best re-run (one lucky block of seeds must not win).
- The 90 % interval of a parameter: the range of its values over the trials whose NLL lies within
  chi2(0.9, 1) / 2 = 1.353 of the best trial's (a profile-likelihood interval read off the trials).
- Trials live in Optuna's SQLite storage in DIR (optuna.db): `--resume` continues; a batch cut short by a kill
  has its finished trials kept and its unfinished ones marked failed and asked anew.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from cxsim.calibration.fit import (
    Fit,
    at_prior_bound,
    mean_band,
    nearest_of,
    per_run_values,
    target_summaries,
)
from cxsim.calibration.targets import NLL_90, flat_values, nll_of, observed_values, simulated

STUDY = "cxsim-calibration"


def _sampler(cal, batch_index: int):
    import optuna

    seed = int(np.random.SeedSequence([cal.file.seed, batch_index]).generate_state(1)[0])
    if cal.file.sampler == "cmaes":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    startup = max(2, min(10, cal.file.trials // 4))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def distributions(cal) -> dict:
    from optuna.distributions import FloatDistribution, IntDistribution

    return {
        p.key: (
            IntDistribution(int(p.low), int(p.high), log=p.log)
            if p.integer
            else FloatDistribution(p.low, p.high, log=p.log)
        )
        for p in cal.parameters
    }


def open_study(cal, storage_path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{storage_path}")
    return optuna.create_study(
        storage=storage, study_name=STUDY, direction="minimize", load_if_exists=True, sampler=_sampler(cal, 0)
    )


def crn_seeds(cal) -> list[int]:
    return [cal.file.seed + r for r in range(cal.file.replicates)]


def fresh_seeds(cal) -> list[int]:
    n = cal.file.rerun_replicates or cal.file.replicates
    return [cal.file.seed + cal.file.replicates + r for r in range(n)]


def run(cal, runner, storage_path) -> Fit:
    """Run (or continue) the study, re-run the best candidates, and summarize."""
    from optuna.trial import TrialState

    study = open_study(cal, storage_path)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study.tell(t.number, state=TrialState.FAIL)  # cut short by a kill: asked anew below
    dists = distributions(cal)
    seeds = crn_seeds(cal)
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    runner.expect((cal.file.trials - done) * len(seeds))
    while done < cal.file.trials:
        size = min(cal.file.batch, cal.file.trials - done)
        study.sampler = _sampler(cal, done // cal.file.batch)
        asked = [study.ask(dists) for _ in range(size)]
        points = [dict(t.params) for t in asked]
        results = runner.evaluate(points, seeds)
        for trial, runs in zip(asked, results, strict=True):
            sims = simulated(cal.targets, cal.scale, runs)
            nll = nll_of(cal.targets, sims)
            total = float(sum(nll.values()))
            trial.set_user_attr("sim", flat_values(sims))
            trial.set_user_attr("nll", nll)
            if runs is None or not math.isfinite(total):
                trial.set_user_attr("reason", "no valid scenario" if runs is None else "a target had no value")
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, total)
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    return summarize(cal, runner, study)


def trials_table(cal, study) -> pd.DataFrame:
    """One row per trial: number, state, NLL, the dotted parameter keys, `nll.TARGET` and `sim.KEY` columns."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "state": t.state.name, "nll": t.value}
        row |= {p.key: t.params.get(p.key) for p in cal.parameters}
        row |= {f"nll.{k}": v for k, v in t.user_attrs.get("nll", {}).items()}
        row |= {f"sim.{k}": v for k, v in t.user_attrs.get("sim", {}).items()}
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(cal, runner, study) -> Fit:
    table = trials_table(cal, study)
    complete = table[table.state == "COMPLETE"].sort_values("nll", kind="stable")
    if complete.empty:
        from cxsim.scenario import ScenarioError

        raise ScenarioError("no trial gave a finite likelihood: every target must be reachable by some trial")
    keys = [p.key for p in cal.parameters]
    # the best few distinct candidates, re-run on fresh seeds
    candidates = complete.drop_duplicates(subset=keys).head(cal.file.rerun_top)
    points = [{p.key: p.clip(row[p.key]) for p in cal.parameters} for _, row in candidates.iterrows()]
    seeds = fresh_seeds(cal)
    runner.expect(len(points) * len(seeds))
    reruns = runner.evaluate(points, seeds)
    best_rows = []
    for (_, row), point, runs in zip(candidates.iterrows(), points, reruns, strict=True):
        sims = simulated(cal.targets, cal.scale, runs)
        nll = nll_of(cal.targets, sims)
        best_rows.append(
            {
                "trial": int(row["trial"]),
                "nll_trial": float(row["nll"]),
                "nll": float(sum(nll.values())),
                **point,
                **{f"nll.{k}": v for k, v in nll.items()},
                **{f"sim.{k}": v for k, v in flat_values(sims).items()},
                "_sims": sims,
                "_runs": runs,
                "_nll": nll,
            }
        )
    best_rows.sort(key=lambda r: (r["nll"], r["trial"]))
    winner = best_rows[0]
    best = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in best_rows])
    best.insert(0, "rank", range(1, len(best) + 1))
    # the 90 % profile-likelihood set of the trials
    threshold = float(complete.nll.min()) + NLL_90
    # the winner belongs to the set even when its block of seeds was less lucky than the best trial's
    inside = complete[(complete.nll <= threshold) | (complete.trial == winner["trial"])]
    # and so do the re-run candidates within the threshold of the winner's re-run (fresh seeds, the same for each)
    close = best[best.nll <= winner["nll"] + NLL_90]
    quadratic = quadratic_intervals(cal, complete, {p.key: p.clip(winner[p.key]) for p in cal.parameters})
    parameters = {}
    for p in cal.parameters:
        values = np.concatenate([inside[p.key].to_numpy(float), close[p.key].to_numpy(float)])
        lo, hi = float(values.min()), float(values.max())
        trials_interval = [lo, hi]
        if quadratic is not None:  # the union: the trials' range is too narrow where they are sparse
            lo, hi = min(lo, quadratic[p.key][0]), max(hi, quadratic[p.key][1])
        parameters[p.key] = {
            "estimate": p.clip(winner[p.key]),
            "interval": [lo, hi],
            "prior": [p.low, p.high],
            "log": p.log,
            "at_prior_bound": at_prior_bound(p, lo, hi),
            "interval_trials": trials_interval,
            "interval_quadratic": None if quadratic is None else list(quadratic[p.key]),
        }
    observed = observed_values(cal.targets)
    spread = per_run_values(cal, winner["_runs"])
    intervals = {}
    for key in observed:
        col = inside.get(f"sim.{key}")
        values = [] if col is None else list(col.dropna())
        a, b = mean_band(spread.get(key, []))
        values += [x for x in (a, b) if x is not None]
        intervals[key] = (min(values), max(values)) if values else (None, None)
    nearest = nearest_of(observed, complete)
    targets = target_summaries(cal, winner["_sims"], intervals, nearest, winner["_nll"])
    _holdout_nll(cal, targets, winner["_sims"])
    notes = [
        f"{len(complete)} trials of {cal.file.replicates} runs each on the same seeds ({cal.file.sampler.upper()}); "
        f"the best {len(points)} re-run on {len(seeds)} fresh seeds; the winner is trial {winner['trial']} "
        f"(re-run NLL {winner['nll']:.4g}, its trial NLL {winner['nll_trial']:.4g})",
        f"90 % intervals: the parameter's range over the {len(inside)} trials whose NLL is within "
        f"{NLL_90:.3f} of the best trial's ({complete.nll.min():.4g}), the winner and the {len(close)} re-run "
        "candidates within as much of the winner's re-run NLL, joined with the interval of a quadratic fitted "
        "to the NLL of the trials nearest the best"
        + ("" if quadratic is not None else " (none here: too few trials, or no bowl in the fitted quadratic)")
        + "; an interval that reaches a prior bound is not identified on that side by these targets",
    ]
    if len(inside) + len(close) < 6:
        notes.append(
            f"only {len(inside)} trials and {len(close)} re-runs lie within the threshold: the intervals are as "
            "coarse as the trials near the best (too narrow, if anything); more trials, or targets the model can "
            "reach, widen the set"
        )
    return Fit("optimize", parameters, targets, {"trials": table, "best": best}, notes)


def quadratic_intervals(cal, complete: pd.DataFrame, estimate: dict) -> dict[str, tuple[float, float]] | None:
    """90 % intervals from the curvature of a quadratic fitted to the NLL of the trials nearest the best (each
    parameter scaled to [0, 1] of its prior, log10 for a log prior; weights 1 / (1 + NLL above the best)): the
    profile of a quadratic with Hessian H reaches the threshold at +- sqrt(2 * 1.353 * (H^-1)_ii), here around
    the estimate (the fitted minimum wanders where the trials are few). None when there are too few trials
    or the fitted Hessian is not positive definite (no bowl to read an interval off)."""
    d = len(cal.parameters)
    q = 1 + d + d * (d + 1) // 2
    near = complete.sort_values("nll", kind="stable").head(max(3 * q, 10))
    if len(near) < q + 2:
        return None

    def to_unit(p, x):
        f = np.log10 if p.log else np.asarray
        return (f(np.asarray(x, float)) - f(p.low)) / (f(p.high) - f(p.low))

    def from_unit(p, u):
        u = min(max(float(u), 0.0), 1.0)
        if p.log:
            return float(10 ** (np.log10(p.low) + u * (np.log10(p.high) - np.log10(p.low))))
        return p.low + u * (p.high - p.low)

    U = np.column_stack([to_unit(p, near[p.key]) for p in cal.parameters])
    y = near["nll"].to_numpy(float)
    pairs = [(i, j) for i in range(d) for j in range(i, d)]
    X = np.column_stack([np.ones(len(U)), U, *[U[:, i] * U[:, j] for i, j in pairs]])
    w = np.sqrt(1.0 / (1.0 + y - y.min()))
    coef, *_ = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)
    H = np.zeros((d, d))
    for c, (i, j) in zip(coef[1 + d :], pairs, strict=True):
        if i == j:
            H[i, i] = 2 * c
        else:
            H[i, j] = H[j, i] = c
    if not np.all(np.isfinite(H)) or np.linalg.eigvalsh(H).min() <= 0:
        return None
    cov = np.linalg.inv(H)
    centre = [float(to_unit(p, estimate[p.key])) for p in cal.parameters]
    half = np.sqrt(2 * NLL_90 * np.diag(cov))
    return {
        p.key: (from_unit(p, centre[i] - half[i]), from_unit(p, centre[i] + half[i]))
        for i, p in enumerate(cal.parameters)
    }


def _holdout_nll(cal, targets: dict, sims: dict) -> None:
    held = nll_of(cal.targets, sims, months="holdout")
    for name, value in held.items():
        if "holdout" in targets.get(name, {}):
            targets[name]["holdout"]["nll"] = value
