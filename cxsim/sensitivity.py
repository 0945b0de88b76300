"""Sensitivity of each KPI to each parameter: SALib's Sobol or Morris indices with confidence intervals.

`cxsim sensitivity FILE` runs the sweep (resuming like `cxsim sweep`), then
averages each design point's replicates and analyses every group of the
design's `by` parameters on its own: e.g. which department's budget moves
retention most, under each ownership model.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from cxsim import sweep as sweeping
from cxsim.files import atomic_write
from cxsim.scenario import ScenarioError
from cxsim.sweepfile import Sweep, unit_design

COLUMNS = {"sobol": ["S1", "S1_conf", "ST", "ST_conf"], "morris": ["mu_star", "mu_star_conf", "sigma", "mu"]}


def analyze(sweep: Sweep, out: str | Path) -> pd.DataFrame:
    """One row per (by group, KPI, parameter) with the design's indices and their 95% intervals."""
    from SALib.analyze import morris, sobol

    kind = sweep.design.kind
    design = sweeping.load(out, "design")
    missing = ~design.run_id.isin(sweeping.load(out, "runs").run_id)
    if missing.any():
        raise RuntimeError(
            f"{int(missing.sum())} runs of the design have no results (they failed); "
            "run the command again to retry them"
        )
    means = design.groupby("point")[list(sweep.kpis)].mean().sort_index()
    X = unit_design(sweep)
    problem = sweep.problem()
    groups = list(itertools.product(*(sweep.parameters[k].values for k in sweep.design.by)))
    if len(means) != len(groups) * len(X):
        raise RuntimeError(f"{out}: the store's design has {len(means)} points, the sweep file {len(groups) * len(X)}")
    rows = []
    for g, group in enumerate(groups):
        block = means.iloc[g * len(X) : (g + 1) * len(X)]
        for kpi in sweep.kpis:
            y = block[kpi].to_numpy(dtype=float)
            under = f" under {', '.join(map(str, group))}" if group else ""
            if np.isnan(y).any():  # e.g. NPS when no customer is left: no index can be computed
                print(
                    f"note: {kpi} is undefined at {int(np.isnan(y).sum())} design points{under} "
                    "(e.g. NPS with no customers left): its indices are not computed",
                    file=sys.stderr,
                )
                si = {c: np.full(len(sweep.free), np.nan) for c in COLUMNS[kind]}
            elif np.ptp(y) == 0:  # SALib would warn and divide by zero: nothing moves this KPI here
                print(f"note: {kpi} does not vary{under}: its indices are 0", file=sys.stderr)
                si = {c: np.zeros(len(sweep.free)) for c in COLUMNS[kind]}
            else:
                si = (
                    sobol.analyze(
                        problem,
                        y,
                        calc_second_order=sweep.design.second_order,
                        conf_level=0.95,
                        seed=sweep.seed,
                        print_to_console=False,
                    )
                    if kind == "sobol"
                    else morris.analyze(
                        problem,
                        X,
                        y,
                        num_levels=sweep.design.levels,
                        conf_level=0.95,
                        seed=sweep.seed,
                        print_to_console=False,
                    )
                )
                _warn_if_wide(si, kind, f"{kpi}{under}", sweep.design.samples)
            for j, name in enumerate(sweep.free):
                rows.append(
                    {
                        **dict(zip(sweep.design.by, group, strict=True)),
                        "kpi": kpi,
                        "parameter": name,
                        **{c: float(si[c][j]) for c in COLUMNS[kind]},
                    }
                )
    return pd.DataFrame(rows)


def _warn_if_wide(si, kind: str, what: str, samples: int) -> None:
    """A note where the widest 95% interval is as wide as the largest index: too few samples to rank."""
    confs = [c for c in COLUMNS[kind] if c.endswith("_conf")]
    widest = max(float(np.nanmax(si[c])) for c in confs)
    largest = max(float(np.nanmax(np.abs(si[c.removesuffix("_conf")]))) for c in confs)
    if 2 * widest >= largest:
        print(
            f"note: {what}: the widest 95% interval (+-{widest:.2g}) is as wide as the largest index "
            f"({largest:.2g}) at N = {samples}: too few samples to rank the parameters; raise design.samples "
            "(the intervals narrow about as 1/sqrt(N))",
            file=sys.stderr,
        )


def plot(table: pd.DataFrame, sweep: Sweep, path=None):
    """Bars of each parameter's indices with 95% intervals: one panel per KPI (rows) and `by` group (columns)."""
    import matplotlib.pyplot as plt

    by = list(sweep.design.by)
    groups = [()] if not by else list(table[by].drop_duplicates().itertuples(index=False, name=None))
    kpis = list(dict.fromkeys(table["kpi"]))
    fig, axes = plt.subplots(
        len(kpis),
        len(groups),
        squeeze=False,
        sharey=True,
        sharex="row",
        figsize=(2.6 * len(groups) + 1.6, 0.35 * len(sweep.free) * len(kpis) + 1.2 * len(kpis) + 0.4),
        layout="constrained",
    )
    first, total = ("S1", "ST") if sweep.design.kind == "sobol" else ("mu_star", "sigma")
    pos = np.arange(len(sweep.free))
    for (i, kpi), (j, group) in itertools.product(enumerate(kpis), enumerate(groups)):
        ax = axes[i, j]
        sel = table[
            (table["kpi"] == kpi)
            & np.logical_and.reduce(
                [table[b] == v for b, v in zip(by, group, strict=True)] or [np.ones(len(table), bool)]
            )
        ]
        sel = sel.set_index("parameter").loc[sweep.free]
        ax.barh(pos - 0.2, sel[first], 0.4, xerr=sel[f"{first}_conf"], label=first, color="tab:blue")
        ax.barh(pos + 0.2, sel[total], 0.4, xerr=sel.get(f"{total}_conf"), label=total, color="tab:orange")
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_yticks(pos, [_label(p) for p in sweep.free])
        ax.set_title(f"{kpi}" + (f" | {', '.join(map(str, group))}" if group else ""), fontsize=9)
    axes[0, 0].invert_yaxis()  # the first parameter on top (once: the panels share the y axis)
    fig.suptitle(f"{sweep.name}: {sweep.design.kind} indices, 95% intervals", fontsize=10)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncols=2)
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def _label(key: str) -> str:
    return key.removeprefix("departments.").replace(".", " ")


def add_arguments(p) -> None:
    sweeping.add_arguments(p)
    p.add_argument("--plot", help="also write the plot here (it always goes to OUT/sensitivity.png)")


def main(args) -> int:
    sweep, out, cores, options = sweeping.from_arguments(args)
    if args.plot and not Path(args.plot).absolute().parent.is_dir():
        raise ScenarioError(f"--plot {args.plot}: expected a file in an existing folder")
    if sweep.design.kind not in COLUMNS:
        raise ScenarioError(
            f"{args.sweep}: key design.kind: sensitivity needs 'sobol' or 'morris', got {sweep.design.kind!r}"
        )
    summary = sweeping.run_sweep(sweep, out, cores, **options)
    print(f"{sweep.name}: {summary}; results in {out}", file=sys.stderr)
    if summary.stopped:
        return 130 if summary.stopped == "interrupted" else 1
    try:
        table = analyze(sweep, out)
    except RuntimeError as e:
        print(f"cxsim: {e}", file=sys.stderr)
        return 1
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    atomic_write(Path(out) / "sensitivity.csv", lambda p: table.to_csv(p, index=False))
    for path in [Path(out) / "sensitivity.png"] + ([Path(args.plot)] if args.plot else []):
        atomic_write(path, lambda p: plot(table, sweep, p))
        print(f"wrote {path}", file=sys.stderr)
    return 0
