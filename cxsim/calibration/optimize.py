"""`method = "optimize"`: Optuna (TPE, or CMA-ES with `sampler = "cmaes"`) on the summed negative
log-likelihood of the targets at the replicate mean.

- Every trial runs `replicates` runs on the same seeds (seed, seed + 1, ...): common random numbers, so two
  trials differ by their parameters, not by their luck.
- Trials are asked in batches of `batch` (fixed by the file, not by the workers) with a sampler seeded per
  batch, and told in order: the same file and seed give the same trials with any number of workers.
- The best `rerun_top` trials are re-run on fresh seeds (seed + replicates, ...), the same for each, and
  ranked by the NLL of their fresh mean; the winner is the best re-run (one lucky block of seeds must not win).
- The 90 % interval of a parameter: the 5-95 % of an approximate posterior, the targets' likelihood linearised at
  the winner on the priors' box (cxsim.calibration.information), joined with the range of its values over the
  trials whose NLL lies within chi2(0.9, 1) / 2 = 1.353 of the best trial's (a profile-likelihood interval read
  off the trials).
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
    weighted_quantile,
)
from cxsim.calibration.information import information, run_to_run_variance
from cxsim.calibration.targets import NLL_90, flat_values, nll_of, observed_values, simulated

STUDY = "cxsim-calibration"
POSTERIOR_DRAWS = 4000


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
    dists = distributions(cal)
    seeds = crn_seeds(cal)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study.tell(t.number, state=TrialState.FAIL)  # cut short by a kill: asked anew below
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    runner.expect((cal.file.trials - done) * len(seeds))
    while done < cal.file.trials:
        size = min(cal.file.batch, cal.file.trials - done)
        study.sampler = _sampler(cal, done // cal.file.batch)
        asked = [study.ask(dists) for _ in range(size)]
        results = runner.evaluate([dict(t.params) for t in asked], seeds)
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
    estimate = {p.key: p.clip(winner[p.key]) for p in cal.parameters}
    variance = run_to_run_variance(cal, [r["_runs"] for r in best_rows])
    info = information(cal, runner, estimate, winner["_runs"], seeds, variance)
    posterior = info.posterior(cal.parameters, POSTERIOR_DRAWS, cal.file.seed)
    w = posterior.weight.to_numpy(float)
    fisher = {p.key: [weighted_quantile(posterior[p.key], w, q) for q in (0.05, 0.95)] for p in cal.parameters}
    parameters = {}
    for p in cal.parameters:
        values = np.concatenate([inside[p.key].to_numpy(float), close[p.key].to_numpy(float)])
        trials_interval = [float(values.min()), float(values.max())]
        # the union: the trials' range where the likelihood is far from its linearisation, the information's where
        # the trials are sparse
        lo, hi = min(trials_interval[0], fisher[p.key][0]), max(trials_interval[1], fisher[p.key][1])
        parameters[p.key] = {
            "estimate": p.clip(winner[p.key]),
            "interval": [lo, hi],
            "prior": [p.low, p.high],
            "log": p.log,
            "at_prior_bound": at_prior_bound(p, lo, hi),
            "interval_trials": trials_interval,
            "interval_fisher": list(fisher[p.key]),
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
        "90 % intervals: the 5-95 % of the approximate posterior (the targets' likelihood linearised at the winner "
        f"by central differences on its fresh seeds, {info.runs} runs, with the sample's run-to-run noise, on the "
        "priors' box), joined with the parameter's range over the "
        f"{len(inside)} trials whose NLL is within {NLL_90:.3f} of the best trial's ({complete.nll.min():.4g}), "
        f"the winner and the {len(close)} re-run candidates within as much of the winner's re-run NLL; an "
        "interval that reaches a prior bound is not identified on that side by these targets",
        f"posterior.parquet: {POSTERIOR_DRAWS:,} weighted draws of that approximate posterior, which "
        "`cxsim compare --posterior` draws from (method = abc samples the posterior itself)",
    ]
    if not variance:
        notes.append(
            "the sample's run-to-run noise was not measured (one fresh seed per re-run): the information counts the "
            "stated errors only, and its intervals are too narrow where that noise is larger (rerun_replicates >= 2)"
        )
    return Fit("optimize", parameters, targets, {"trials": table, "best": best, "posterior": posterior}, notes)


def _holdout_nll(cal, targets: dict, sims: dict) -> None:
    held = nll_of(cal.targets, sims, months="holdout")
    for name, value in held.items():
        if "holdout" in targets.get(name, {}):
            targets[name]["holdout"]["nll"] = value
