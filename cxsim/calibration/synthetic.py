"""`cxsim calibrate FILE --synthetic`: can the file's method recover parameters from the file's targets?

For each of N true parameter sets drawn from the file's priors (the i-th from (seed, i): the same draws
whatever N, so more truths extend a check on `--resume`):

1. the targets the file names are simulated at the truth on seeds no calibration uses (`seed + 10^9 + 2 i`
   and the next one). The first run's value of each target is the observation, with the file's kind and
   error fields (`responses`, `sigma`, `denominator`, ...; a given `promoters` share becomes the run's);
   the second run measures the sample's own noise, to compare with the error the file states;
2. the file's method (optimize or abc, with every setting of the file) fits the parameters to those
   observations, as `cxsim calibrate` would, but with the seed `seed + 2000 i` (a calibration uses at most
   2,000 seeds from its own): with one seed for all, every fit would share the luck of its common random
   numbers, the misses would come together and the coverage's binomial interval would not hold;
3. per parameter: the truth, the estimate, the 90 % interval and whether it covers the truth.

Over the truths, per parameter: coverage (with a Clopper-Pearson 95 % interval), bias, relative error, the
interval's median width as a share of the prior's (log10 for a log prior) and a verdict, `identified`,
`weakly identified` or `not identified` (`verdict` below; docs/CALIBRATION.md says why it matters:
Carrella 2021, "no free lunch").

Each truth's calibration lives in DIR/truths/NNN/ (Optuna's or pyabc's storage) and its result in
DIR/truths/NNN.json once finished: `--resume` keeps the finished truths, continues an interrupted one from
its storage and adds truths when N grew; a folder of another file or setting is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cxsim.calibration.targets import Simulated, flat_values, observed_values, simulated
from cxsim.files import atomic_write, check_writable
from cxsim.scenario import ScenarioError

SETUP = "setup.json"
TRUTHS = "truths"  # DIR/truths/NNN/: one truth's calibration storage; DIR/truths/NNN.json: its result
OUTPUT_NAMES = frozenset(
    {SETUP, TRUTHS, "synthetic.parquet", "synthetic.md", "synthetic.json", "synthetic.png", "synthetic.html"}
)
DEFAULT_TRUTHS = 20
DATA_OFFSET = 10**9  # the data's seeds lie this far above the file's seed, far from the calibrations'
SEED_STRIDE = 2000  # truth i's calibration has the seed seed + 2000 i: it uses seeds seed_i ... seed_i + 1999 at most
DATA_RUNS = 2  # per truth: the first is the observation, the pair measures the sample's noise
# the verdict: widths and errors in units of the prior's width (log10 for a log prior)
NOT_IDENTIFIED_WIDTH = 0.7  # a median 90 % interval this wide spans most of the prior
IDENTIFIED_WIDTH = 0.4  # a median 90 % interval at most this wide is narrow
NOT_IDENTIFIED_ERROR = 0.25  # an RMSE of the estimate this large is what a guess gives (0.29 at the prior's middle)
MIN_COVERAGE_TRUTHS = 5  # fewer fits than this cannot test the coverage


def draw_truths(cal, n: int) -> list[dict]:
    """N parameter sets from the file's priors; the i-th depends only on (seed, i)."""
    out = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([cal.file.seed, 16, i]))
        values = {}
        for p in cal.parameters:
            u = float(rng.random())
            if p.integer and not p.log:  # every whole number equally likely, as Optuna's IntDistribution
                values[p.key] = int(min(p.high, math.floor(p.low + u * (p.high - p.low + 1))))
            else:
                values[p.key] = p.from_unit(u)
        out.append(values)
    return out


def data_seeds(cal, i: int) -> list[int]:
    return [cal.file.seed + DATA_OFFSET + DATA_RUNS * i + r for r in range(DATA_RUNS)]


def fit_seed(cal, i: int) -> int:
    """The seed of truth i's calibration (truth 1: the file's own)."""
    return cal.file.seed + SEED_STRIDE * i


def identity(cal) -> str:
    """What decides a synthetic check's results: the calibration's identity and every setting of its method."""
    fit = cal.file.model_dump(mode="json", include={"trials", "generations", "min_epsilon", "rerun_top"})
    fit["rerun_replicates"] = cal.file.rerun_replicates
    return json.dumps({"synthetic": True, "calibration": cal.identity(), "fit": fit}, sort_keys=True)


def check_out(cal, out, resume: bool) -> None:
    """Refuse, before anything runs, a folder that cannot hold this synthetic check (nothing is written here)."""
    path = Path(out)
    if path.exists():
        if not path.is_dir():
            raise ScenarioError(f"--out {out}: expected a directory, found a file")
        names = {p.name for p in path.iterdir()}
        stored = json.loads((path / SETUP).read_text(encoding="utf-8")) if SETUP in names else None
        if stored is not None and not stored.get("synthetic"):
            raise ScenarioError(
                f"--out {out}: holds a calibration (cxsim calibrate without --synthetic), not a synthetic check; "
                "choose another folder"
            )
        foreign = sorted(n for n in names if n not in OUTPUT_NAMES and not n.startswith("."))
        if foreign:
            raise ScenarioError(
                f"--out {out}: holds files cxsim calibrate --synthetic did not write there ({', '.join(foreign[:5])}); "
                "expected a new or empty folder, or a synthetic check to --resume"
            )
        if SETUP in names and not resume:
            raise ScenarioError(
                f"--out {out}: holds a synthetic check already ({SETUP}); --resume continues it, "
                "or choose another folder"
            )
        if stored is not None and stored.get("identity") != identity(cal):
            raise ScenarioError(
                f"--resume: {out} holds a synthetic check of another file or setting ({stored.get('file')}); "
                "the file (its trials or generations too), its scenario and --population must be the same "
                "to resume; only --truths may grow"
            )
    if resume and not (path / SETUP).is_file():
        raise ScenarioError(f"--resume: {out} holds no synthetic check to resume (no {SETUP})")
    check_writable(out)


# --- one truth ---


def _observe(o, s: Simulated):
    """The observation `o` with the value (and promoter share) of one run's `s`, or why there is none."""
    if s.value is None or not math.isfinite(s.value):
        return "the run gave no value"
    lo, hi = o.target.range
    value = min(max(float(s.value), lo), hi)
    changes = {"value": value}
    if o.kind == "survey_nps" and o.promoters is not None:
        if s.promoters is None:
            return "the run's survey had no answer"
        p = min(max(float(s.promoters), 0.0), 1.0)
        changes["promoters"] = p
        changes["value"] = min(max(value, 100.0 * (2 * p - 1)), 100.0 * p)  # a detractor share in [0, 1 - p]
    return dataclasses.replace(o, **changes)


def observed_calibration(cal, run: dict, seed: int):
    """The calibration with each target's observation taken from one run (its kind and error fields kept)
    and the seed `seed`, or the reason it cannot be."""
    sims = simulated(cal.targets, cal.scale, [run])
    targets = []
    for t in cal.targets:
        if t.observation is not None:
            o = _observe(t.observation, sims[t.name])
            if isinstance(o, str):
                return f"targets.{t.name}: {o}"
            targets.append(dataclasses.replace(t, observation=o))
            continue
        monthly = []
        for m, o in zip(t.months, t.monthly, strict=True):
            om = _observe(o, sims[t.name][m])
            if isinstance(om, str):
                return f"targets.{t.name}, month {m}: {om}"
            monthly.append(om)
        targets.append(dataclasses.replace(t, monthly=monthly))
    return dataclasses.replace(cal, file=cal.file.model_copy(update={"seed": seed}), targets=targets, warnings=[])


def _stated_errors(cal, run: dict) -> dict[str, float]:
    """Flat key -> the observation's standard error under the file's error model, at the observed value (the
    run's exposure and NPS shares where the error model takes the simulation's)."""
    from cxsim.calibration.fit import flat_simulated

    sims = flat_simulated(simulated(cal.targets, cal.scale, [run]))
    out = {}
    for t in cal.targets:
        pairs = [(t.name, t.observation)] if t.observation is not None else []
        pairs += [(f"{t.name}[{m}]", o) for m, o in zip(t.months, t.monthly, strict=True)]
        for key, o in pairs:
            out[key] = float(o.sd(sims[key]))
    return out


def _abc_started(db: Path) -> bool:
    """Does pyabc's database hold a started run (else a kill came before it was set up: start anew)?"""
    try:
        with sqlite3.connect(db, timeout=10) as c:
            return c.execute("select count(*) from abc_smc").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def fit_truth(cal, runner, i: int, values: dict, folder: Path) -> dict:
    """One truth: its data runs, its calibration (into `folder`), and what it recovered."""
    from cxsim.calibration import abc, optimize

    start, runs0 = time.perf_counter(), runner.runs
    seeds = data_seeds(cal, i)
    runner.expect(len(seeds))
    (runs,) = runner.evaluate([values], seeds)
    record = {"truth": i + 1, "values": values, "data_seeds": seeds, "seed": fit_seed(cal, i)}
    if runs is None:
        return record | {"failed": "the truth makes no valid scenario", "runs": runner.runs - runs0}
    made = observed_calibration(cal, runs[0], fit_seed(cal, i))
    if isinstance(made, str):
        return record | {"failed": made, "runs": runner.runs - runs0, "seconds": time.perf_counter() - start}
    others = [flat_values(simulated(cal.targets, cal.scale, [r])) for r in runs]
    noise = {
        k: [o[k] - others[0][k] for o in others[1:] if o[k] is not None and others[0][k] is not None] for k in others[0]
    }
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if cal.file.method == "optimize":
            fit = optimize.run(made, runner, folder / "optuna.db")
        else:
            db = folder / "abc.db"
            if db.exists() and not _abc_started(db):
                db.unlink()
            fit = abc.run(made, runner, db, db.exists())
    except ScenarioError as e:  # no trial reached a finite likelihood
        return record | {"failed": str(e), "runs": runner.runs - runs0, "seconds": time.perf_counter() - start}
    parameters = {}
    for p in cal.parameters:
        f = fit.parameters[p.key]
        lo, hi = f["interval"]
        parameters[p.key] = {
            "estimate": f["estimate"],
            "interval": [lo, hi],
            "covered": bool(lo <= values[p.key] <= hi),
            "at_prior_bound": f["at_prior_bound"],
        } | {k: f[k] for k in ("interval_trials", "interval_fisher") if k in f}
    return record | {
        "observed": observed_values(made.targets),
        "stated_error": _stated_errors(made, runs[0]),
        "noise": noise,
        "parameters": parameters,
        "targets": {name: {"simulated": t["simulated"], "verdict": t["verdict"]} for name, t in fit.targets.items()},
        "runs": runner.runs - runs0,
        "seconds": time.perf_counter() - start,
    }


# --- over the truths ---


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial proportion k / n."""
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def verdict(width: float, error: float, covered: int, n: int, ci: tuple[float, float]) -> tuple[str, str]:
    """(identified | weakly identified | not identified, why): `width` the median 90 % interval and `error`
    the estimate's RMSE, both in units of the prior's width; `covered` of `n` intervals held the truth."""
    cov = f"coverage {covered}/{n} [{ci[0]:.2f}, {ci[1]:.2f}]"
    shape = f"median interval {width:.0%} of the prior, estimate error (RMSE) {error:.0%} of it"
    if width >= NOT_IDENTIFIED_WIDTH:
        return "not identified", f"the 90 % interval spans most of the prior ({shape})"
    if error >= NOT_IDENTIFIED_ERROR:
        return "not identified", f"the estimates do not follow the truth, as a guess would not ({shape}; {cov})"
    consistent = ci[0] <= 0.9 <= ci[1]
    if width <= IDENTIFIED_WIDTH and consistent:
        testable = "" if n >= MIN_COVERAGE_TRUTHS else f"; {n} fits cannot test the coverage"
        return "identified", f"{shape}; {cov}, consistent with 90 %{testable}"
    if not consistent and ci[1] < 0.9:
        return "weakly identified", (
            f"the estimates follow the truth ({shape}), but the 90 % intervals cover it too rarely ({cov}): "
            "they are too narrow for these fits"
        )
    return "weakly identified", f"the targets narrow the prior only partly ({shape}; {cov})"


def intervals_verdict(covered: int, n: int, ci: tuple[float, float]) -> str:
    """Do the 90 % intervals cover as they claim? From the coverage's 95 % Clopper-Pearson interval."""
    if n < MIN_COVERAGE_TRUTHS:
        return f"untestable with {n} fits"
    if ci[1] < 0.9:
        return "too narrow"
    if ci[0] > 0.9:
        return "too wide"
    return "consistent with 90 %"


def summarize(cal, records: list[dict]) -> dict:
    """Per parameter, over the truths that were fitted: coverage, bias, errors, widths and the verdict."""
    ok = [r for r in records if "failed" not in r]
    out = {}
    for p in cal.parameters:
        truth = np.array([r["values"][p.key] for r in ok], float)
        est = np.array([r["parameters"][p.key]["estimate"] for r in ok], float)
        lo = np.array([r["parameters"][p.key]["interval"][0] for r in ok], float)
        hi = np.array([r["parameters"][p.key]["interval"][1] for r in ok], float)
        covered = int(sum(r["parameters"][p.key]["covered"] for r in ok))
        n = len(ok)
        entry = {"prior": [p.low, p.high], "log": p.log, "fits": n, "covered": covered}
        if n == 0:
            out[p.key] = entry | {"verdict": "not measured", "why": "no truth could be fitted"}
            continue
        u_t = np.array([p.unit(x) for x in truth])
        u_e = np.array([p.unit(x) for x in est])
        width = np.array([p.unit(b) - p.unit(a) for a, b in zip(lo, hi, strict=True)])
        ci = clopper_pearson(covered, n)
        error = float(np.sqrt(np.mean((u_e - u_t) ** 2)))
        rel = np.abs(est - truth) / np.where(truth != 0, np.abs(truth), np.nan)
        corr = None
        if n >= 3 and np.std(u_t) > 0 and np.std(u_e) > 0:
            corr = float(np.corrcoef(u_t, u_e)[0, 1])
        word, why = verdict(float(np.median(width)), error, covered, n, ci)
        entry |= {
            "verdict": word,
            "why": why,
            "intervals": intervals_verdict(covered, n, ci),
            "coverage": covered / n,
            "coverage_interval": list(ci),
            "bias": float(np.mean(est - truth)),
            "bias_prior": float(np.mean(u_e - u_t)),
            "relative_error": None if np.all(np.isnan(rel)) else float(np.nanmedian(rel)),
            "error_prior": error,
            "width_prior": float(np.median(width)),
            "correlation": corr,
            "at_prior_bound": int(sum(r["parameters"][p.key]["at_prior_bound"] for r in ok)),
        }
        for kind in ("interval_trials", "interval_fisher"):  # optimize: how each half of the union covers
            if any(kind in r["parameters"][p.key] for r in ok):
                ivs = [r["parameters"][p.key].get(kind) for r in ok]
                hits = [iv is not None and iv[0] <= t <= iv[1] for iv, t in zip(ivs, truth, strict=True)]
                entry[f"coverage_{kind[9:]}"] = [int(sum(hits)), sum(iv is not None for iv in ivs)]
        out[p.key] = entry
    return out


def target_noise(cal, records: list[dict]) -> dict[str, dict]:
    """Per target: the error the file states (median over the truths' observations) against the sample's own
    noise (the pooled standard deviation of the two data runs of each truth) and what the likelihood needs
    to cover the truth 90 % of the time: the noise of the observation and of the calibration's replicate mean,
    noise x sqrt(1 + 1/replicates)."""
    ok = [r for r in records if "failed" not in r]
    out = {}
    for t in cal.targets:
        keys = [t.name] if t.observation is not None else [f"{t.name}[{m}]" for m in t.fitted_months]
        stated = [r["stated_error"][k] for r in ok for k in keys if k in r["stated_error"]]
        diffs = [d for r in ok for k in keys for d in r["noise"].get(k, [])]
        if not stated:
            continue
        noise = float(math.sqrt(np.mean(np.square(diffs)) / 2)) if diffs else None
        needed = None if noise is None else noise * math.sqrt(1 + 1 / cal.file.replicates)
        out[t.name] = {
            "stated_error": float(np.median(stated)),
            "sample_noise": noise,
            "needed_error": needed,
            "ratio": None if not needed else float(np.median(stated)) / needed,
        }
    return out


# --- the check ---


def run(cal, out, cores=None, *, truths: int = DEFAULT_TRUTHS, resume: bool = False, progress=None, cluster=None):
    """The synthetic check into `out` (or with `resume`, its continuation); returns the JSON summary."""
    from cxsim.calibration import require_method
    from cxsim.calibration.runs import Runner
    from cxsim.compiler import compile_once

    if truths < 1:
        raise ScenarioError(f"--truths: expected a whole number >= 1, got {truths}")
    check_out(cal, out, resume)
    require_method(cal)
    runner = Runner(cal, cores, progress, cluster)
    out = Path(out)
    (out / TRUTHS).mkdir(parents=True, exist_ok=True)
    if not (out / SETUP).exists():
        setup = {"file": str(cal.path), "method": cal.file.method, "synthetic": True, "identity": identity(cal)}
        atomic_write(out / SETUP, lambda tmp: Path(tmp).write_text(json.dumps(setup) + "\n", encoding="utf-8"))
    start = time.perf_counter()
    records = []
    draws = draw_truths(cal, truths)
    if runner.in_process:
        compile_once(cal.scenario.engine)
    with runner:
        for i, values in enumerate(draws):
            done = out / TRUTHS / f"{i + 1:03d}.json"
            if done.is_file():
                records.append(json.loads(done.read_text(encoding="utf-8")))
                continue
            runner.bar.set_description(f"synthetic {i + 1}/{truths}")
            record = fit_truth(cal, runner, i, values, out / TRUTHS / f"{i + 1:03d}")
            text = json.dumps(record, allow_nan=False, default=_json_default)
            atomic_write(done, lambda tmp, s=text: Path(tmp).write_text(s + "\n", encoding="utf-8"))
            records.append(json.loads(text))
            if runner.progress:
                print(f"cxsim: synthetic truth {i + 1}/{truths} done", file=sys.stderr)
    summary = {
        "synthetic": True,
        **cal.header(),
        "truths": truths,
        "fitted": sum("failed" not in r for r in records),
        "failed": [{"truth": r["truth"], "reason": r["failed"]} for r in records if "failed" in r],
        "parameters": summarize(cal, records),
        "targets": target_noise(cal, records),
        "fits": records,
        "runs": int(sum(r.get("runs", 0) for r in records)),
        "seconds": round(float(sum(r.get("seconds", 0.0) for r in records)), 2),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "notes": notes(cal),
    }
    return write(cal, summary, out)


def notes(cal) -> list[str]:
    first = cal.file.seed + DATA_OFFSET
    return [
        f"each truth drawn from the priors (the i-th from seed {cal.file.seed} and i); its observations are one run "
        f"at the truth on seed {first} + {DATA_RUNS}(i - 1), a second run on the next seed measures the sample's "
        f"noise; truth i is calibrated as `cxsim calibrate` would, with the seed {cal.file.seed} + "
        f"{SEED_STRIDE}(i - 1) (each fit has luck of its own, so the misses are independent)",
        "every target keeps the file's kind and error fields (responses, sigma, denominator, dispersion, exposure); "
        "a given promoter share becomes the run's",
        f"verdict: not identified when the median 90 % interval spans {NOT_IDENTIFIED_WIDTH:.0%} or more of the "
        f"prior's width (log10 for a log prior) or the estimate's RMSE is {NOT_IDENTIFIED_ERROR:.0%} of it or more "
        f"(a guess at the prior's middle gives 29 %); identified when the median interval is at most "
        f"{IDENTIFIED_WIDTH:.0%} of the prior and 90 % lies in the coverage's 95 % Clopper-Pearson interval; "
        "weakly identified otherwise",
    ]


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    raise TypeError(type(x))


# --- the outputs ---


def table(cal, summary: dict) -> pd.DataFrame:
    """One row per truth and parameter: the truth, estimate, interval, coverage, and the truth's observations."""
    rows = []
    for r in summary["fits"]:
        for p in cal.parameters:
            row = {"truth": r["truth"], "parameter": p.key, "value": r["values"][p.key], "failed": r.get("failed")}
            if "failed" not in r:
                f = r["parameters"][p.key]
                row |= {
                    "estimate": f["estimate"],
                    "low": f["interval"][0],
                    "high": f["interval"][1],
                    "covered": f["covered"],
                    "width_prior": p.unit(f["interval"][1]) - p.unit(f["interval"][0]),
                    "at_prior_bound": f["at_prior_bound"],
                }
                for kind in ("interval_trials", "interval_fisher"):
                    if kind in f:
                        iv = f[kind] or [None, None]
                        row |= {f"low_{kind[9:]}": iv[0], f"high_{kind[9:]}": iv[1]}
                row |= {f"observed.{k}": v for k, v in r["observed"].items()}
            row |= {"runs": r.get("runs"), "seconds": r.get("seconds")}
            rows.append(row)
    return pd.DataFrame(rows)


def _g(x, fmt=".4g") -> str:
    return "-" if x is None else format(x, fmt)


def render(cal, summary: dict) -> str:
    s = summary
    lines = [
        f"# Synthetic check of {cal.path}",
        "",
        f"Method **{s['method']}**, {s['population']:,} people, {s['days']} days, {s['replicates']} replicate(s) per "
        f"trial, seed {s['seed']}: {s['truths']} true parameter sets drawn from the priors, {s['fitted']} fitted"
        + (f", {len(s['failed'])} could not be" if s["failed"] else "")
        + f"; {s['runs']} runs in {s['seconds']:.1f} s.",
        "",
        "## Parameters",
        "",
        "Coverage: how many of the 90 % intervals held the truth, with its 95 % Clopper-Pearson interval "
        "(intervals: whether that is consistent with 90 %); width: "
        "the median interval as a share of the prior's width (log10 for a log prior); error: the estimate's RMSE "
        "in the same units; bias: the mean of estimate - truth; relative error: the median |estimate - truth| / "
        "truth.",
        "",
    ]
    from cxsim.report import markdown_table

    rows = []
    for key, p in s["parameters"].items():
        if "coverage" not in p:
            rows.append([key, p["verdict"], "-", "-", "-", "-", "-", "-", "-", p["why"]])
            continue
        lo, hi = p["coverage_interval"]
        rows.append(
            [
                key,
                f"**{p['verdict']}**",
                f"{p['covered']}/{p['fits']} [{lo:.2f}, {hi:.2f}]",
                p["intervals"],
                f"{p['width_prior']:.0%}",
                f"{p['error_prior']:.0%}",
                _g(p["bias"]),
                _g(p["relative_error"], ".1%"),
                _g(p["correlation"], ".2f"),
                p["why"],
            ]
        )
    header = [
        "parameter",
        "verdict",
        "coverage",
        "intervals",
        "width",
        "error",
        "bias",
        "relative error",
        "corr.",
        "why",
    ]
    lines += [markdown_table(header, rows), ""]
    parts = [
        (key, p["coverage_trials"], p["coverage_fisher"])
        for key, p in s["parameters"].items()
        if "coverage_trials" in p
    ]
    if parts:
        lines += [
            "Optimize's interval is the union of the trials' range and the information's: each alone covered",
            "",
            markdown_table(
                ["parameter", "trials' range", "information"],
                [[k, f"{a[0]}/{a[1]}", f"{b[0]}/{b[1]}"] for k, a, b in parts],
            ),
            "",
        ]
    if s["targets"]:
        lines += [
            "## The file's errors against the sample's noise",
            "",
            "The intervals cover 90 % when the error the file states is about the noise of the observation and of "
            f"the calibration's replicate mean: the sample's noise x sqrt(1 + 1/{s['replicates']}). A smaller "
            "stated error makes the intervals too narrow (give the sample's precision: `responses` near the "
            "sample's survey answers, a larger `sigma`); a larger one makes them wide.",
            "",
            markdown_table(
                ["target", "stated error", "sample's noise", "needed", "stated / needed"],
                [
                    [k, _g(t["stated_error"]), _g(t["sample_noise"]), _g(t["needed_error"]), _g(t["ratio"], ".2f")]
                    for k, t in s["targets"].items()
                ],
            ),
            "",
        ]
    lines += ["## Each truth", ""]
    keys = list(s["parameters"])
    rows = []
    for r in s["fits"]:
        if "failed" in r:
            rows.append([str(r["truth"]), f"failed: {r['failed']}"] + [""] * (len(keys) - 1))
            continue
        cells = []
        for k in keys:
            f = r["parameters"][k]
            mark = "" if f["covered"] else " **missed**"
            cells.append(
                f"{r['values'][k]:.4g} -> {f['estimate']:.4g} [{f['interval'][0]:.4g}, {f['interval'][1]:.4g}]{mark}"
            )
        rows.append([str(r["truth"]), *cells])
    lines += [
        "truth -> estimate [90 % interval]",
        "",
        markdown_table(["truth", *keys], rows),
        "",
        "## How these numbers came",
        "",
        *[f"- {n}" for n in s["notes"]],
        "",
        "![each parameter's estimate and 90 % interval against its truth](synthetic.png)",
        "",
    ]
    return "\n".join(lines)


def figure(cal, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in summary["fits"] if "failed" not in r]
    n = len(cal.parameters)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 3.3), squeeze=False)
    for ax, p in zip(axes[0], cal.parameters, strict=True):
        for r in ok:
            f = r["parameters"][p.key]
            t, e = r["values"][p.key], f["estimate"]
            lo, hi = f["interval"]
            ax.errorbar(
                [t],
                [e],
                yerr=[[max(e - lo, 0)], [max(hi - e, 0)]],
                fmt="o",
                ms=4,
                capsize=2,
                color="C0" if f["covered"] else "C3",
            )
        ax.plot([p.low, p.high], [p.low, p.high], color="grey", lw=0.8, ls="--")
        ax.set_xlim(p.low, p.high)
        ax.set_ylim(p.low, p.high)
        if p.log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        v = summary["parameters"][p.key]
        ax.set_title(f"{p.key}\n{v['verdict']}", fontsize=8)
        ax.set_xlabel("truth", fontsize=8)
        ax.set_ylabel("estimate, 90 % interval (red: missed)", fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def write(cal, summary: dict, out: Path) -> dict:
    """synthetic.json, synthetic.parquet, synthetic.md, synthetic.html and synthetic.png, each written whole."""
    import markdown

    text = json.dumps(summary, indent=1, allow_nan=False, default=_json_default)
    frame = table(cal, summary)
    atomic_write(out / "synthetic.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    atomic_write(out / "synthetic.json", lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    figure(cal, summary, out / "synthetic.png")
    md = render(cal, summary)
    atomic_write(out / "synthetic.md", lambda tmp: Path(tmp).write_text(md, encoding="utf-8"))
    page = markdown.markdown(md, extensions=["tables"])
    html = f"<!doctype html><meta charset='utf-8'><title>synthetic check</title><body>{page}</body>"
    atomic_write(out / "synthetic.html", lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))
    return json.loads(text)
