"""Matplotlib figures readable on a slide: titles, units, replicate bands."""

import matplotlib.pyplot as plt

from cxsim.kernel import DEPARTMENTS

PANELS = (  # column, title, unit, rolling window (days)
    ("active_customers", "Active customers", "customers", 1),
    ("csat", "CSAT", "% satisfied", 1),
    ("nps", "NPS (true)", "NPS points", 1),
    ("churned", "Churn", "customers / day (7-day mean)", 7),
    ("wait_hours", "Contact-centre wait", "minutes", 1),
    ("promise", "Brand promise", "quality 0..1", 1),
)


def _band(ax, days, column, window, scale=1.0, label=None):
    wide = days.pivot_table(index="day", columns="replicate", values=column) * scale
    if window > 1:
        wide = wide.rolling(window, min_periods=1).mean()
    mean = wide.mean(axis=1)
    line = ax.plot(mean.index, mean.values, label=label)[0]
    if wide.shape[1] > 1:
        ax.fill_between(mean.index, wide.quantile(0.025, axis=1), wide.quantile(0.975, axis=1),
                        color=line.get_color(), alpha=0.2, linewidth=0)


def trajectories(days, title: str = "", path=None):
    """The main trajectories of one scenario (mean and 95% band over replicates), plus budgets."""
    fig, axes = plt.subplots(2, 4, figsize=(16, 7), constrained_layout=True)
    for ax, (column, name, unit, window) in zip(axes.flat, PANELS):
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
    if path is not None:
        fig.savefig(path, dpi=110, format="png")
        plt.close(fig)
    return fig


def kpi_against(runs, kpi: str, x: str, hue: str | None = None, path=None):
    """A sweep's KPI against one parameter (and one line per value of a second): mean over replicates
    with its 95% confidence band. `runs` is `cxsim.sweep.load(dir)` or a directory."""
    from cxsim.experiment import interval
    from cxsim.sweepstore import load

    if not hasattr(runs, "groupby"):
        runs = load(runs)
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    for value, group in runs.groupby(hue, sort=True) if hue else [(None, runs)]:
        stats = [(xv, interval(g[kpi].tolist())) for xv, g in group.groupby(x, sort=True)]
        xs = [xv for xv, _ in stats]
        line = ax.plot(xs, [s["mean"] for _, s in stats], marker="o", ms=3,
                       label=None if hue is None else f"{hue} = {value}")[0]
        lo, hi = ([s["ci95"][k] if s["ci95"][k] is not None else s["mean"] for _, s in stats] for k in (0, 1))
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(x)
    ax.set_ylabel(kpi)
    ax.set_title(f"{kpi} against {x} (mean and 95% interval over replicates)", fontsize=10)
    if hue:
        ax.legend(fontsize=8)
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
