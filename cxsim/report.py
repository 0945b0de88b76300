"""The comparison report: markdown and HTML with the KPI table, figures, parameter differences and tidy tables."""

import json
from pathlib import Path

import markdown

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


def kpi_rows(c: Comparison, kpi: str) -> list[list[str]]:
    """One KPI's rows: scenario, mean, 95% interval, difference vs baseline, its interval, verdict."""
    rows = []
    for name, s in c.kpis[kpi].items():
        if "diff" in s:
            diff = [signed(s["diff"]), interval_text(*s["diff_ci95"]), s["verdict"]]
        else:
            diff = ["baseline", "", ""]
        rows.append([name, number(s["mean"]), interval_text(*s["ci95"]), *diff])
    return rows


COLUMNS = ["scenario", "mean", "95% CI", "diff vs baseline", "95% CI of diff", "verdict"]


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
        lines += [f"### {kpi}", "", meaning, "", markdown_table(COLUMNS, kpi_rows(c, kpi)), ""]
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
        for file, _, draw in FIGURES:
            draw(c, folder / file)
        for file, content in (("report.md", text), ("report.html", page), ("comparison.json", body)):
            (folder / file).write_text(content, encoding="utf-8")

    return write_folder(out_dir, write)
