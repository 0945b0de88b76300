"""A finished calibration's posterior, read back, and parameter sets drawn from it (`cxsim compare --posterior DIR`).

    from cxsim.calibration.posterior import read_posterior, posterior_draws
    post = read_posterior("out/my_company")          # validated: a ScenarioError naming the file and key otherwise
    draws = posterior_draws(post, 20, seed=42)       # 20 rows: `point` (the support point drawn) and the dotted keys

What the posterior is (docs/CALIBRATION.md, "Carrying the uncertainty into a comparison"):

- **abc**: the last generation's particles in `posterior.parquet`, each with its `weight`: pyabc's weighted sample
  of the ABC posterior.
- **optimize**: no sampler of the posterior ran, so this is an approximation: `posterior.parquet` holds weighted
  draws of the targets' likelihood linearised at the estimate, on the priors' box (cxsim.calibration.information).

A point is a row of that table (`point` = its row number).

Draws are independent and with replacement, by weight: `u_1, ..., u_n` from numpy's PCG64 seeded with
`SeedSequence([seed, DRAW_STREAM])`, draw `r` the first point whose cumulative normalized weight exceeds `u_r`. They
are a pure function of (the folder's posterior, n, seed): the same in any process and whatever runs them, and the
first n of n + 1 draws are the n draws (more draws extend a comparison's).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxsim.scenario import ScenarioError, _chain, _did_you_mean, flatten, key_type
from cxsim.schema import Scenario

SETUP, SUMMARY, CALIBRATED = "setup.json", "summary.json", "calibrated.toml"
DRAW_STREAM = 0x706F73  # "pos": the draws' own stream of the compare seed, apart from the simulation's seeds
WHAT = "expected the --out folder of a finished `cxsim calibrate`"


@dataclass(frozen=True)
class Posterior:
    """A calibration's posterior: weighted support points over the calibrated dotted keys."""

    folder: Path
    method: str  # "abc" or "optimize"
    keys: list[str]  # the calibrated dotted scenario keys, in the calibration's order
    points: pd.DataFrame  # one row per support point: `point` (its row in posterior.parquet) and the keys
    weights: np.ndarray  # normalized to sum to 1, one per row of `points`
    central: dict[str, float]  # the calibration's estimate (calibrated.toml's values): the posterior's centre
    calibrated: Path  # DIR/calibrated.toml
    chain: list[Path] = field(default_factory=list)  # calibrated.toml's extends chain, root first, itself last
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> Path:
        """The table the points come from."""
        return self.folder / "posterior.parquet"

    @property
    def distinct(self) -> int:
        """Support points with a positive weight."""
        return int((self.weights > 0).sum())


def read_posterior(folder) -> Posterior:
    """Read and validate the calibration in `folder`; every problem is a ScenarioError naming the file and key."""

    path = Path(folder)
    if not path.exists():
        raise ScenarioError(f"--posterior {folder}: no such folder; {WHAT}")
    if not path.is_dir():
        raise ScenarioError(f"--posterior {folder}: a file, not a folder; {WHAT}")
    if not (path / SETUP).is_file():
        raise ScenarioError(f"--posterior {folder}: not a calibration (no {SETUP}); {WHAT}")
    setup = _json(path / SETUP)
    if setup.get("synthetic"):
        raise ScenarioError(
            f"--posterior {folder}: holds a synthetic check (cxsim calibrate --synthetic), not a calibration; {WHAT}"
        )
    method = setup.get("method")
    if method not in ("abc", "optimize"):
        raise ScenarioError(f'{path / SETUP}: key method: expected "abc" or "optimize", got {method!r}')
    if not (path / SUMMARY).is_file():
        raise ScenarioError(
            f"--posterior {folder}: the calibration has not finished (no {SUMMARY}); "
            f"`cxsim calibrate {setup.get('file', 'FILE')} --out {folder} --resume` finishes it"
        )
    summary = _json(path / SUMMARY)
    parameters = summary.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise ScenarioError(f"{path / SUMMARY}: key parameters: expected the calibrated parameters, got {parameters!r}")
    keys = list(parameters)
    central = {}
    for key, p in parameters.items():
        estimate = p.get("estimate") if isinstance(p, dict) else None
        if not _finite(estimate):
            raise ScenarioError(
                f'{path / SUMMARY}: key parameters."{key}".estimate: expected a number, got {estimate!r}'
            )
        central[key] = estimate
    for key in keys:
        _check_key(path / SUMMARY, key)
    calibrated = path / CALIBRATED
    if not calibrated.is_file():
        raise ScenarioError(f"{calibrated}: missing: the calibration writes its calibrated scenario there; {WHAT}")
    chain = [Path(label).resolve() for label, _ in _chain(calibrated, str(calibrated), [])]
    table = _parquet(path / "posterior.parquet", method)
    _columns(path / "posterior.parquet", table, [*keys, "weight"])
    weights = _weights(path / "posterior.parquet", table["weight"])
    points = table[keys].copy()
    points.insert(0, "point", np.arange(len(table)))
    if method == "abc":
        notes = [
            f"the posterior: the {len(table)} weighted particles of the ABC-SMC's last generation "
            f"({path / 'posterior.parquet'})"
        ]
    else:
        notes = [
            f"an approximate posterior (method optimize: no sampler of the posterior ran): {len(table)} weighted draws "
            "of the targets' likelihood linearised at the estimate, on the priors' box "
            f"({path / 'posterior.parquet'}; method = abc samples the posterior)"
        ]
    for key in keys:
        values = pd.to_numeric(points[key], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise ScenarioError(
                f"{path / 'posterior.parquet'}: column {key}: expected "
                f"finite numbers, row {int(bad[0])} has {points[key].iloc[bad[0]]!r}"
            )
        if key_type(key) is int:
            points[key] = np.round(values).astype(int)
            central[key] = int(round(central[key]))
        else:
            points[key] = values
            central[key] = float(central[key])
    return Posterior(path, method, keys, points.reset_index(drop=True), weights, central, calibrated, chain, notes)


def posterior_draws(posterior, n: int, seed: int) -> pd.DataFrame:
    """`n` independent draws by weight (with replacement), a pure function of (posterior, n, seed): one row per
    draw `r` = 0..n-1 with `point` (the support point drawn) and its values of the dotted keys. `posterior` is a
    `Posterior` or a calibration folder."""
    post = posterior if isinstance(posterior, Posterior) else read_posterior(posterior)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ScenarioError(f"--draws: expected a whole number >= 1, got {n!r}")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), DRAW_STREAM])))
    u = rng.random(int(n))
    cdf = np.cumsum(post.weights)
    cdf /= cdf[-1]
    rows = np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
    out = post.points.iloc[rows].reset_index(drop=True)
    out.insert(0, "draw", np.arange(int(n)))
    return out


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ScenarioError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e}); {WHAT}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: expected a JSON object; {WHAT}")
    return data


def _parquet(path: Path, method: str) -> pd.DataFrame:
    if not path.is_file():
        raise ScenarioError(
            f"{path}: missing: a finished {method} calibration writes it (expected {path.name} beside summary.json)"
        )
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow's errors have no common base worth naming
        raise ScenarioError(f"{path}: cannot read as Parquet ({type(e).__name__}: {e})") from None


def _columns(path: Path, table: pd.DataFrame, names: list[str]) -> None:
    for name in names:
        if name not in table.columns:
            raise ScenarioError(
                f"{path}: column {name}: missing{_did_you_mean(name, [str(c) for c in table.columns])} "
                "(summary.json's parameters name the calibrated keys)"
            )


def _weights(path: Path, column: pd.Series) -> np.ndarray:
    w = pd.to_numeric(column, errors="coerce").to_numpy(float)
    if len(w) == 0 or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ScenarioError(f"{path}: column weight: expected finite weights >= 0 with a positive sum")
    return w / w.sum()


def _check_key(where: Path, key: str) -> None:
    """A calibrated key must still be a numeric scenario key (the schema may have changed since the calibration)."""
    t = key_type(key) if all(part for part in key.split(".")) else None
    if t is None or t is bool or t not in (int, float):
        numeric = [k for k, v in flatten(Scenario().model_dump(mode="json")).items() if _finite(v)]
        why = "not a scenario key" if t is None else "not a numeric scenario key"
        raise ScenarioError(
            f'{where}: key parameters."{key}": {why} of this cxsim{_did_you_mean(key, numeric)}; expected the '
            "calibrated keys to be numeric keys of the scenario (calibrate again after a change of the schema)"
        )


def _finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
