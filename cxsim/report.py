"""The comparison report: markdown and HTML with the KPI table, figures, parameter differences and tidy tables."""

import json
from pathlib import Path

import markdown
import pandas as pd

from cxsim import plots
from cxsim.comparison import Comparison
from cxsim.files import write_folder
from cxsim.kpis import KPIS, number
from cxsim.stats import shown

HEADLINE = (
    "retention",
    "churned",
    "acquisitions",
    "csat",
    "nps",
    "nps_survey",
    "complaints",
    "mean_service_wait_hours",
    "profit",
)
FIGURES = (  # file, caption, how it is drawn
    (
        "effects.png",
        "Paired differences against the baseline (95% intervals)",
        lambda c, p: plots.effects(c.table(), c.baseline.scenario.name, p),
    ),
    (
        "trajectories.png",
        "Trajectories with 95% bands over replicates",
        lambda c, p: plots.compared_trajectories(c.days(), p),
    ),
    (
        "churn_by_department.png",
        "Churn attributed to each department",
        lambda c, p: plots.churn_by_department(c.departments(), p),
    ),
    ("budgets.png", "Budget allocation over time", lambda c, p: plots.budget_shares(c.days(), p)),
)


def signed(x) -> str:
    return number(x) if x is None or x != x or x < 0 else "+" + number(x)


def interval_text(lo, hi) -> str:
    return "-" if lo is None or lo != lo else f"[{number(lo)}, {number(hi)}]"


def share_text(split: dict | None) -> str:
    """The share of a paired difference's variance from parameter uncertainty, in per cent (`stats.variance_split`)."""
    share = None if split is None else split.get("parameter_share")
    return "n/a" if share is None else f"{100 * share:.0f} %"


def kpi_rows(c: Comparison, kpi: str) -> list[list[str]]:
    """One KPI's rows: scenario, mean, 95% interval, difference vs baseline, its interval, verdict; with a
    posterior also the difference's interval at the posterior's centre and the share from the parameters."""
    rows = []
    for name, s in c.kpis[kpi].items():
        if "diff" in s:
            diff = [signed(s["diff"]), interval_text(*s["diff_ci95"]), s["verdict"]]
            if c.posterior is not None:
                diff += [interval_text(*s["diff_ci95_at_centre"]), share_text(s["variance"])]
        else:
            diff = ["baseline", "", ""] + (["", ""] if c.posterior is not None else [])
        rows.append([name, number(s["mean"]), interval_text(*s["ci95"]), *diff])
    return rows


COLUMNS = ["scenario", "mean", "95% CI", "diff vs baseline", "95% CI of diff", "verdict"]
POSTERIOR_COLUMNS = ["95% CI of diff at the centre", "from parameters"]


def columns(c: Comparison) -> list[str]:
    """The header of `kpi_rows`."""
    return COLUMNS + (POSTERIOR_COLUMNS if c.posterior is not None else [])


def posterior_header(c: Comparison) -> str:
    """What the posterior columns mean, for the terminal and the report."""
    p = c.posterior
    return (
        f"parameters drawn from the posterior of {p['folder']} ({p['method']}: {p['support']} support points; "
        f"{', '.join(p['keys'])}): replicate r of every scenario runs draw r ({p['draws']} draws, "
        f"{p['distinct_drawn']} distinct), and every scenario ran again with the parameters at the posterior's "
        "centre on the same seeds. '95% CI of diff' carries the parameter uncertainty; 'at the centre' is the "
        "interval without it; 'from parameters' is the share of the interval's variance that comes from the "
        "parameters (the rest is the simulation's own noise)."
    )


def posterior_section(c: Comparison, kpis=HEADLINE) -> list[str]:
    """The report's section on parameter uncertainty: the design, the shares, the draws, the notes."""
    p = c.posterior
    lines = [
        "## Parameter uncertainty",
        "",
        posterior_header(c),
        "",
        "With the paired difference D of replicate r (draw θ_r, seed r) and D0 the same pair at the centre θ0 "
        "on seed r, Var(D) = Var_θ(E[D | θ]) + E_θ[Var(D | θ)]: the replicates' variance of D is the total, "
        "the variance of D0 estimates the simulation's noise (at most the total), the parameters' part is the "
        "rest; the shares are the same for the interval of the mean (docs/CALIBRATION.md, "
        '"Carrying the uncertainty into a comparison").',
        "",
        "Share of each paired interval's variance from parameter uncertainty:",
        "",
    ]
    rows = [[name, *(share_text(c.kpis[k][name]["variance"]) for k in kpis)] for name in c.labels[1:]]
    lines += [markdown_table(["scenario", *kpis], rows), ""]
    drawn = pd.DataFrame(p["drawn"])
    rows = [
        [
            f"`{k}`",
            number(p["centre"][k]),
            number(drawn[k].min()),
            number(drawn[k].median()),
            number(drawn[k].max()),
        ]
        for k in p["keys"]
    ]
    lines += [
        f"The {p['draws']} draws ({p['distinct_drawn']} distinct of the posterior's {p['support']} points; seeded by "
        f"numpy's SeedSequence({p['draw_seed']})):",
        "",
        markdown_table(["parameter", "centre", "draws' min", "median", "max"], rows),
        "",
    ]
    lines += [f"- {line}" for line in p["notes"]] + [""]
    return lines


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |" for r in rows])


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table for the terminal, columns padded to their widest cell."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    return "\n".join(
        "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )


def horizon_rows(c: Comparison, years: float) -> list[list[str]]:
    """At one horizon: a row per scenario but the baseline, each horizon KPI's paired difference and interval."""
    at = c.horizons[years]
    return [
        [name, *(f"{signed(at[k][name]['diff'])} {interval_text(*at[k][name]['diff_ci95'])}" for k in at)]
        for name in c.labels[1:]
    ]


def horizon_tables(c: Comparison, table=text_table) -> list[str]:
    """The paired differences against the baseline after each horizon the runs reach, a table each."""
    lines = []
    for years, at in c.horizons.items():
        lines += [f"after {years:g} year{'s' if years != 1 else ''} (day {round(365 * years)}):", ""]
        lines += [table(["scenario", *(f"{k} diff [95% CI]" for k in at)], horizon_rows(c, years)), ""]
    return lines


def digest(c: Comparison, kpis=HEADLINE) -> list[str]:
    """One line per scenario: which KPIs came out clearly higher or lower than the baseline, which are noise,
    and which have no interval (the table's n/a), with the reason."""
    lines = []
    single = len(c.baseline.runs) < 2
    undefined = "n/a (one replicate: no interval; --replicates 2 or more gives one)" if single else "n/a (no interval)"
    for name in c.labels[1:]:
        ci = {k: c.kpis[k][name]["diff_ci95"] for k in kpis}
        groups = {side: [k for k in kpis if shown(ci[k], side)] for side in ("higher", "lower")}
        groups["noise"] = [k for k in kpis if k not in groups["higher"] + groups["lower"] and ci[k][0] is not None]
        groups[undefined] = [k for k in kpis if ci[k][0] is None]
        parts = [f"{g}: {', '.join(ks)}" for g, ks in groups.items() if ks]
        lines.append(f"{name} vs {c.baseline.scenario.name}: {'; '.join(parts)}")
    return lines


def render(c: Comparison, command: str | None) -> str:
    b = c.baseline.scenario
    lines = [
        f"# cxsim comparison: {', '.join(c.labels)}",
        "",
        f"{len(c.labels)} scenarios, {b.market.population:,} people in the market, {b.days} days, "
        f"{len(c.baseline.runs)} replicates each (seeds {b.seed}..{b.seed + len(c.baseline.runs) - 1}, "
        f"the same for every scenario: common random numbers), engine {c.baseline.engine}. "
        f"Baseline: **{b.name}**.",
        "",
    ]
    if b.market.represents is not None:
        lines += [
            f"The {b.market.population:,} simulated people are a sample of the {b.market.represents:,} people of "
            f"the market (`market.represents`): one simulated person stands for {b.market.scale:,.4g}. Counts "
            "and money are the whole market's (the sample's times that); rates, shares, scores and waits are "
            "as the sample has them.",
            "",
        ]
    if c.posterior is not None:
        lines += [
            f"Replicate r of every scenario also runs draw r of the posterior of `{c.posterior['folder']}` "
            "(common random numbers on the parameters too): the intervals of the differences carry the "
            "parameter uncertainty (see *Parameter uncertainty*).",
            "",
        ]
    if command:
        lines += ["Reproduce with:", "", f"    {command}", ""]
    lines += [
        "Differences are paired by replicate; a difference is *clear* when its 95% interval excludes "
        "zero, *noise* when it does not, and *n/a* when there is no interval (one replicate, or too few values).",
        "",
        "## In short",
        "",
    ]
    lines += [f"- {line}" for line in digest(c)]
    if c.posterior is not None and len(c.labels) > 1:
        lines += [""] + posterior_section(c)
    if c.horizons:
        lines += [
            "",
            "## Over the years",
            "",
            "Paired differences against the baseline at each horizon: customers, CSAT and NPS on the "
            "horizon's last day, profit and discounted profit (`finance.discount_rate`) summed up to it.",
            "",
        ]
        lines += horizon_tables(c, markdown_table)
    lines += ["", "## Scenarios", ""]
    lines += [f"- **{r.scenario.name}**: {r.scenario.description or '(no description)'}" for r in c.results]
    for file, caption, _ in FIGURES:
        lines += ["", f"## {caption}", "", f"![{caption}]({file})"]
    lines += ["", "## KPIs", ""]
    for kpi, meaning in KPIS.items():
        lines += [f"### {kpi}", "", meaning, "", markdown_table(columns(c), kpi_rows(c, kpi)), ""]
    lines += ["## Parameters that differ from the baseline", ""]
    for name, diff in c.parameter_differences().items():
        lines += [f"### {name}", ""]
        rows = [[k, json.dumps(a), json.dumps(v)] for k, (a, v) in diff.items()]
        lines += [markdown_table(["key", b.name, name], rows) if rows else "identical parameters", ""]
    return "\n".join(lines) + "\n"


def write(c: Comparison, out_dir, command: str | None = None) -> list[Path]:
    """Write report.md, report.html, the figures, comparison.json and runs/days/departments Parquet to out_dir,
    replaced whole (`cxsim.files.write_folder`)."""
    text = render(c, command)
    html = markdown.markdown(text, extensions=["tables"])
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>cxsim comparison</title><style>"
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}img{max-width:100%}"
        f"</style></head><body>{html}</body></html>"
    )
    body = json.dumps(c.to_dict(), indent=1, allow_nan=False)

    def write(folder: Path):
        for name, frame in (("runs", c.runs()), ("days", c.days()), ("departments", c.departments())):
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        if c.central is not None:
            c.central_runs().to_parquet(folder / "central_runs.parquet", index=False)
        for file, _, draw in FIGURES:
            draw(c, folder / file)
        for file, content in (("report.md", text), ("report.html", page), ("comparison.json", body)):
            (folder / file).write_text(content, encoding="utf-8")

    return write_folder(out_dir, write)
