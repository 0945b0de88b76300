"""Matplotlib figures readable on a slide: titles, units, replicate bands."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from cxsim.domain import DEPARTMENTS
from cxsim.stats import interval
from cxsim.sweepstore import load

PANELS = (  # column, title, unit, rolling window (days)
    ("active_customers", "Active customers", "customers", 1),
    ("csat", "CSAT", "% satisfied", 1),
    ("nps", "NPS (true)", "NPS points", 1),
    ("churned", "Churn", "customers / day (7-day mean)", 7),
    ("wait_hours", "Contact-centre wait", "minutes", 1),
    ("promise", "Brand promise", "quality 0..1", 1),
)


def _save(fig, path):
    if path is not None:
        fig.savefig(path, dpi=110, format="png")
        plt.close(fig)
    return fig


def _band(ax, days, column, window, scale=1.0, label=None):
    wide = days.pivot_table(index="day", columns="replicate", values=column) * scale
    if window > 1:
        wide = wide.rolling(window, min_periods=1).mean()
    mean = wide.mean(axis=1)
    line = ax.plot(mean.index, mean.values, label=label)[0]
    if wide.shape[1] > 1:
        ax.fill_between(
            mean.index,
            wide.quantile(0.025, axis=1),
            wide.quantile(0.975, axis=1),
            color=line.get_color(),
            alpha=0.2,
            linewidth=0,
        )


def trajectories(days, title: str = "", path=None):
    """The main trajectories of one scenario (mean and 95% band over replicates), plus budgets."""
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), constrained_layout=True)
    for ax, (column, name, unit, window) in zip(axes.flat, PANELS, strict=False):
        _band(ax, days, column, window, scale=60.0 if column == "wait_hours" else 1.0)
        ax.set_title(name)
        ax.set_ylabel(unit)
        ax.set_xlabel("day")
    ax = axes.flat[6]
    for d in DEPARTMENTS:
        _band(ax, days, f"budget_{d}", 1, scale=1e-6, label=d)
    ax.set_title("Budgets")
    ax.set_ylabel("million per year")
    ax.set_xlabel("day")
    ax.legend(fontsize=7, ncol=2)
    ax = axes.flat[7]
    for d in DEPARTMENTS:
        _band(ax, days, f"failure_{d}", 1, scale=100.0, label=d)
    ax.set_title("Failure probability per encounter")
    ax.set_ylabel("%")
    ax.set_xlabel("day")
    fig.suptitle(f"{title}: mean and 95% band over replicates" if title else "mean and 95% band over replicates")
    return _save(fig, path)


# the comparison's trajectory panels: the contact-centre wait gives way to complaints
COMPARED = (*PANELS[:4], ("complaints", "Complaints", "complaints / day (7-day mean)", 7), PANELS[5])
EFFECTS = (
    ("retention", "Retention", "share of day-0 customers", 1.0),
    ("csat", "CSAT", "% points", 1.0),
    ("nps", "NPS (true)", "NPS points", 1.0),
    ("churned", "Churned", "customers", 1.0),
    ("complaints", "Complaints", "complaints", 1.0),
    ("profit", "Profit", "thousand (currency)", 1e-3),
)


def compared_trajectories(days, path=None):
    """Each main KPI over time, one line per scenario with its 95% band over replicates."""
    fig, axes = plt.subplots(2, 3, figsize=(16, 8), constrained_layout=True)
    for ax, (column, name, unit, window) in zip(axes.flat, COMPARED, strict=False):
        for scenario, group in days.groupby("scenario", sort=False):
            _band(ax, group, column, window, label=scenario)
        ax.set_title(name)
        ax.set_ylabel(unit)
        ax.set_xlabel("day")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Trajectories by scenario: mean and 95% band over replicates")
    return _save(fig, path)


def _money_unit(largest) -> tuple[float, str]:
    """The scale and axis label of amounts of currency up to `largest`: thousands until they reach 100,000 thousand,
    then millions, then billions."""
    for scale, name in ((1e-3, "thousand"), (1e-6, "million")):
        if not largest >= 1e5 / scale:  # NaN (no intervals) stays in thousands
            return scale, f"{name} (currency)"
    return 1e-9, "billion (currency)"


def effects(table, baseline: str, path=None):
    """Paired difference of each headline KPI against the baseline, with its 95% interval."""
    fig, axes = plt.subplots(2, 3, figsize=(16, 8), constrained_layout=True)
    for ax, (kpi, name, unit, scale) in zip(axes.flat, EFFECTS, strict=False):
        rows = table[(table.kpi == kpi) & (table.verdict != "baseline")]
        if unit.startswith("thousand"):  # money in the unit its size needs (a represented market's millions)
            bounds = np.abs(rows[["diff_low", "diff_high"]].to_numpy(float))
            scale, unit = _money_unit(np.nanmax(bounds) if np.isfinite(bounds).any() else np.nan)
        y = np.arange(len(rows))
        diff = rows["diff"].to_numpy(float) * scale
        err = np.vstack([diff - rows.diff_low.to_numpy(float) * scale, rows.diff_high.to_numpy(float) * scale - diff])
        colours = ["tab:blue" if v == "clear" else "tab:gray" for v in rows.verdict]
        ax.barh(y, diff, xerr=err, color=colours, capsize=3)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(y, rows.scenario)
        ax.invert_yaxis()
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_title(f"{name}: difference vs {baseline}")
        ax.set_xlabel(unit)
    fig.suptitle("Paired differences against the baseline, 95% intervals (grey: indistinguishable from noise)")
    return _save(fig, path)


def churn_by_department(departments, path=None):
    """Churn attributed to each department (its failure was the customer's last), per scenario."""
    stats = departments.groupby(["department", "scenario"], sort=False)["churn_attributed"].agg(["mean", "std"])
    scenarios = list(dict.fromkeys(departments.scenario))
    names = list(dict.fromkeys(departments.department))
    fig, ax = plt.subplots(figsize=(14, 6), constrained_layout=True)
    width = 0.8 / len(scenarios)
    x = np.arange(len(names))
    for i, s in enumerate(scenarios):
        rows = stats.xs(s, level="scenario").reindex(names)
        ax.bar(
            x + (i - (len(scenarios) - 1) / 2) * width,
            rows["mean"],
            width,
            yerr=rows["std"].fillna(0.0),
            label=s,
            capsize=2,
        )
    ax.set_xticks(x, [n if n != "none" else "no failure" for n in names])
    ax.set_ylabel("customers lost over the run (mean; bars: sd over replicates)")
    ax.set_title("Churn attributed to each department, by scenario")
    ax.legend(fontsize=8)
    return _save(fig, path)


def budget_shares(days, path=None):
    """Each department's share of the budget over time, one panel per scenario (mean over replicates)."""
    scenarios = list(dict.fromkeys(days.scenario))
    cols = min(4, len(scenarios))
    rows = -(-len(scenarios) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False, sharey=True, constrained_layout=True
    )
    budget = [f"budget_{d}" for d in DEPARTMENTS]
    for ax, s in zip(axes.flat, scenarios, strict=False):
        mean = days[days.scenario == s].groupby("day")[budget].mean()
        shares = mean.div(mean.sum(axis=1).replace(0.0, np.nan), axis=0) * 100.0
        ax.stackplot(shares.index, shares.to_numpy().T, labels=DEPARTMENTS)
        ax.set_title(s)
        ax.set_xlabel("day")
        ax.set_ylim(0, 100)
    for ax in axes[:, 0]:
        ax.set_ylabel("% of the budget")
    for ax in axes.flat[len(scenarios) :]:
        ax.set_visible(False)
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside right upper")
    fig.suptitle("Budget allocation over time")
    return _save(fig, path)


def kpi_against(runs, kpi: str, x: str, hue: str | None = None, path=None):
    """A sweep's KPI against one parameter (and one line per value of a second): mean over replicates
    with its 95% confidence band. `runs` is `cxsim.sweep.load(dir)` or a directory."""
    if not hasattr(runs, "groupby"):
        runs = load(runs)
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    for value, group in runs.groupby(hue, sort=True) if hue else [(None, runs)]:
        stats = [(xv, interval(g[kpi].tolist())) for xv, g in group.groupby(x, sort=True)]
        xs = [xv for xv, _ in stats]
        line = ax.plot(
            xs, [s["mean"] for _, s in stats], marker="o", ms=3, label=None if hue is None else f"{hue} = {value}"
        )[0]
        lo, hi = ([s["ci95"][k] if s["ci95"][k] is not None else s["mean"] for _, s in stats] for k in (0, 1))
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(x)
    ax.set_ylabel(kpi)
    ax.set_title(f"{kpi} against {x} (mean and 95% interval over replicates)", fontsize=10)
    if hue:
        ax.legend(fontsize=8)
    return _save(fig, path)
