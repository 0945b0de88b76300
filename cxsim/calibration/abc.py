"""`method = "abc"`: pyabc's ABC-SMC, giving a weighted posterior.

- A particle is one parameter set; its summary statistics are the replicate means of the targets (a series:
  one statistic per month) over `replicates` runs on the same seeds for every particle (common random
  numbers), and, with `acceptance = "likelihood"`, each target's NLL at those means.
- `acceptance = "likelihood"` (the default): a particle is accepted with probability exp(-NLL / T), the
  targets' own error models (cxsim.calibration.targets) tempered by a temperature T that pyabc anneals to 1
  by the last generation (StochasticAcceptor, Temperature): the last generation is then the posterior of the
  stated errors around the replicate mean, with no threshold to choose. `acceptance = "distance"`: pyabc's
  AdaptivePNormDistance (p = 2, each statistic scaled by its median absolute deviation, re-weighted every
  generation) below a median epsilon.
- The posterior is the last generation's weighted particles: estimate = weighted median, interval = weighted
  5-95 % quantiles.
- Parallel and deterministic: `DeterministicSampler` draws a batch of proposals with numpy's generator in a
  known state (seeded per generation and call), runs the batch on the workers, then replays the same draws
  with the results in hand, in order, until enough are accepted. What is accepted is decided in proposal
  order, never by which worker finished first, so the same file and seed give the same posterior with any
  number of workers.
- pyabc keeps every generation in DIR/abc.db (SQLite): `--resume` continues after the last finished
  generation (a generation cut short by a kill is done again), the temperature from where it stood.
"""

from __future__ import annotations

import math

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
from cxsim.calibration.targets import flat_values, nll_of, observed_values, simulated


class DeterministicSampler:
    """A pyabc sampler that runs each batch of proposals on the calibration's runner (this process or Dask)."""

    def __new__(cls, *args, **kwargs):  # subclass pyabc's Sampler lazily: pyabc is an optional dependency
        from pyabc.sampler import Sampler

        class _Sampler(Sampler):
            def __init__(self, evaluate, seed: int, batch: int):
                super().__init__()
                self.evaluate, self.seed, self.batch = evaluate, seed, batch
                self.recording, self.proposed, self.results, self.index = False, [], [], 0
                self.calls: dict[int, int] = {}
                self.observed: dict = {}

            def model(self, parameter) -> dict:
                """pyabc's model: records a proposal while recording, else hands back its computed statistics."""
                if self.recording:
                    self.proposed.append(dict(parameter))
                    return dict(self.observed)
                stats = self.results[self.index]
                assert dict(parameter) == self.proposed[self.index], "the replayed proposals differ from the batch"
                self.index += 1
                return stats

            def sample_until_n_accepted(
                self, n, simulate_one, t, *, max_eval=np.inf, all_accepted=False, ana_vars=None
            ):
                call = self.calls.get(t, 0)
                self.calls[t] = call + 1
                np.random.seed(np.random.SeedSequence([self.seed, t + 1, call]).generate_state(1)[0])
                sample = self._create_empty_sample()
                evaluations = 0
                while sample.n_accepted < n and evaluations < max_eval:
                    state = np.random.get_state()
                    self.recording, self.proposed = True, []
                    for _ in range(self.batch):
                        simulate_one()
                    self.recording = False
                    self.results, self.index = self.evaluate(self.proposed), 0
                    np.random.set_state(state)
                    for _ in range(self.batch):
                        sample.append(simulate_one())
                        evaluations += 1
                        if sample.n_accepted >= n:
                            break
                self.nr_evaluations_ = evaluations
                if sample.n_accepted < n:
                    sample.ok = False
                return sample

        return _Sampler(*args, **kwargs)


def _prior(cal):
    import pyabc

    rvs = {}
    for i, p in enumerate(cal.parameters):
        lo, hi = (math.log10(p.low), math.log10(p.high)) if p.log else (p.low, p.high)
        rvs[f"p{i}"] = pyabc.RV("uniform", lo, hi - lo)
    return pyabc.Distribution(**rvs)


def _values(cal, parameter: dict) -> dict:
    """pyabc's parameter (log10 for a log prior) as scenario values."""
    out = {}
    for i, p in enumerate(cal.parameters):
        x = float(parameter[f"p{i}"])
        out[p.key] = p.clip(10.0**x if p.log else x)
    return out


NLL = "nll:"  # a particle's statistic NLL + name: the target's negative log-likelihood at the particle's mean
NO_VALUE = 1e12  # a statistic (or an NLL) the model could not give (no survey answer, no customer): far from all


def _temperature(history):
    """pyabc's Temperature, annealed to 1 at the file's last generation counted from generation 0, resumed
    from the temperatures `history` holds (pyabc counts its last generation from the run's first)."""
    import pyabc

    class _Temperature(pyabc.Temperature):
        def initialize(self, t, get_weighted_distances, get_all_records, max_nr_populations, acceptor_config):
            self.temperatures = {int(g): float(e) for g, e in _epsilons(history).items()}
            super().initialize(t, get_weighted_distances, get_all_records, t + max_nr_populations, acceptor_config)

    return _Temperature()


def _epsilons(history) -> dict:
    if history is None or history.max_t < 0:
        return {}
    pops = history.get_all_populations()
    return dict(zip(pops.t[pops.t >= 0], pops.epsilon[pops.t >= 0], strict=True))


def _criterion(cal, nll_keys: list[str], history) -> dict:
    """How a particle is accepted. `likelihood`: with probability exp(-sum of the targets' NLL), tempered by a
    temperature annealed to 1 (pyabc's StochasticAcceptor; Wilkinson 2013): at 1 the last generation is the
    posterior under the targets' own error models. `distance`: pyabc's AdaptivePNormDistance below an epsilon."""
    import pyabc
    from pyabc.distance import AdaptivePNormDistance, FunctionKernel

    if cal.file.acceptance == "distance":
        return {"distance_function": AdaptivePNormDistance(p=2)}

    def log_likelihood(x, x_0, t, par):
        return -sum(float(x[k]) for k in nll_keys)

    return {
        "distance_function": FunctionKernel(log_likelihood, ret_scale=pyabc.distance.SCALE_LOG),
        "eps": _temperature(history),
        "acceptor": pyabc.StochasticAcceptor(),
    }


def run(cal, runner, db_path, resume: bool) -> Fit:
    import logging

    import pyabc

    for name in ("ABC", "ABC.History", "ABC.Population", "ABC.Distance", "ABC.Adaptation", "ABC.Epsilon"):
        logging.getLogger(name).setLevel(logging.WARNING)
    seeds = [cal.file.seed + r for r in range(cal.file.replicates)]
    observed = observed_values(cal.targets)
    keys = list(observed)
    nll_keys = [NLL + t.name for t in cal.targets] if cal.file.acceptance == "likelihood" else []

    def evaluate(proposals: list[dict]) -> list[dict]:
        points = [_values(cal, p) for p in proposals]
        runner.expect(len(points) * len(seeds))
        out = []
        for runs in runner.evaluate(points, seeds):
            sims = simulated(cal.targets, cal.scale, runs)
            flat = flat_values(sims)
            stats = {k: (flat[k] if flat.get(k) is not None else NO_VALUE) for k in keys}
            if nll_keys:
                nll = nll_of(cal.targets, sims)
                stats |= {NLL + name: min(value, NO_VALUE) for name, value in nll.items()}
            out.append(stats)
        return out

    batch = max(4, cal.file.particles // 2)  # fixed by the file: the workers decide nothing
    sampler = DeterministicSampler(evaluate, cal.file.seed, batch)
    sampler.observed = dict(observed) | dict.fromkeys(nll_keys, 0.0)  # what a proposal stands on while recorded
    sampler.show_progress = False
    db = f"sqlite:///{db_path}"
    resumed = resume and db_path.exists()
    history = pyabc.History(db, _id=1) if resumed else None
    abc = pyabc.ABCSMC(
        sampler.model,
        _prior(cal),
        population_size=cal.file.particles,
        sampler=sampler,
        **_criterion(cal, nll_keys, history),
    )
    if resumed:
        abc.load(db, 1)
        done = abc.history.n_populations
    else:
        abc.new(db, observed)
        done = 0
    if done < cal.file.generations:
        floor = cal.file.min_epsilon if cal.file.acceptance == "distance" else None  # a temperature stops at 1
        abc.run(minimum_epsilon=floor, max_nr_populations=cal.file.generations - done)
    return summarize(cal, runner, abc.history)


def summarize(cal, runner, history) -> Fit:
    observed = observed_values(cal.targets)
    frames = []
    for t in range(history.max_t + 1):
        particles = history.get_population(t=t).particles
        frame = pd.DataFrame(
            [
                {
                    **_values(cal, dict(q.parameter)),
                    "weight": float(q.weight),
                    "generation": t,
                    **{f"sim.{k}": float(q.sum_stat[k]) for k in observed},
                }
                for q in particles
            ]
        )
        frame["weight"] /= frame["weight"].sum()
        frames.append(frame)
    everything = pd.concat(frames, ignore_index=True)
    posterior = everything[everything.generation == history.max_t].reset_index(drop=True)
    w = posterior.weight.to_numpy(float)
    parameters, estimate = {}, {}
    for p in cal.parameters:
        x = posterior[p.key].to_numpy(float)
        estimate[p.key] = p.clip(weighted_quantile(x, w, 0.5))
        lo, hi = weighted_quantile(x, w, 0.05), weighted_quantile(x, w, 0.95)
        parameters[p.key] = {
            "estimate": estimate[p.key],
            "interval": [lo, hi],
            "prior": [p.low, p.high],
            "log": p.log,
            "at_prior_bound": at_prior_bound(p, lo, hi),
        }
    # the estimate re-run on fresh seeds: the simulated value of each target, its denominators and NPS shares
    seeds = [cal.file.seed + cal.file.replicates + r for r in range(cal.file.replicates)]
    runner.expect(len(seeds))
    (runs,) = runner.evaluate([estimate], seeds)
    sims = simulated(cal.targets, cal.scale, runs)
    nll = nll_of(cal.targets, sims)
    spread = per_run_values(cal, runs or [])
    intervals = {}
    for key in observed:
        col = posterior[f"sim.{key}"].to_numpy(float)
        lo, hi = weighted_quantile(col, w, 0.05), weighted_quantile(col, w, 0.95)
        a, b = mean_band(spread.get(key, []))
        intervals[key] = (min(x for x in (lo, a) if x is not None), max(x for x in (hi, b) if x is not None))
    nearest = nearest_of(observed, everything)
    targets = target_summaries(cal, sims, intervals, nearest, nll)
    held = nll_of(cal.targets, sims, months="holdout")
    for name, value in held.items():
        if "holdout" in targets.get(name, {}):
            targets[name]["holdout"]["nll"] = value
    pops = history.get_all_populations()
    generations = pd.DataFrame(
        {
            "generation": pops.t.astype(int),
            "epsilon": pops.epsilon.astype(float),
            "simulations": pops.samples.astype(int),
        }
    )
    generations = generations[generations.generation >= 0].reset_index(drop=True)
    if cal.file.acceptance == "likelihood":
        final = float(generations.epsilon.iloc[-1])
        how = "acceptance by the targets' likelihood, tempered to 1 (StochasticAcceptor): " + (
            "the posterior of the stated errors" if final <= 1.0 + 1e-9 else f"still at temperature {final:.3g}"
        )
    else:
        how = "acceptance below an adaptive distance's epsilon (AdaptivePNormDistance, p = 2)"
    notes = [
        f"ABC-SMC (pyabc): {history.max_t + 1} generations of {cal.file.particles} particles, each particle "
        f"{cal.file.replicates} runs on the same seeds; {int(generations.simulations.sum())} particles simulated; "
        + how,
        "estimate: the weighted posterior median; 90 % interval: the weighted 5-95 % quantiles of the last "
        "generation; simulated: the estimate re-run on fresh seeds, its interval the posterior's 5-95 % "
        "(widened to the re-run's 90 % band of the mean)",
    ]
    return Fit(
        "abc",
        parameters,
        targets,
        {"posterior": posterior, "particles": everything, "generations": generations},
        notes,
    )
