"""The page's pieces: KPIs, the customers as agents, one customer's journey, departments, charts.

Every component takes the live `TeachingModel` and re-renders when Mesa's
`update_counter` moves (after Step, during Play, on Reset). Charts and the
customer view are small SVG widgets (cxsim.viz.widgets), text is plain HTML:
nothing is fetched from a CDN.
"""

from __future__ import annotations

import json
from html import escape

import matplotlib
import numpy as np
import solara
from matplotlib.colors import TwoSlopeNorm, to_hex
from mesa.visualization.utils import update_counter

from cxsim import kernel as K
from cxsim.domain import ACTIVE, CHURNED, DEPARTMENTS, NO_DEPT, PROSPECT
from cxsim.viz.widgets import CustomerGridWidget, LineChartWidget

ATTITUDE_COLOURS = matplotlib.colormaps["RdYlGn"]
ATTITUDE_NORM = TwoSlopeNorm(vmin=-0.5, vcenter=0.0, vmax=0.25)
PROSPECT_COLOUR, CHURNED_COLOUR = "#e8eaf0", "#8d8d8d"
DEPARTMENT_COLOURS = {d: to_hex(c) for d, c in zip(DEPARTMENTS, matplotlib.colormaps["tab10"].colors, strict=False)}
STATE_WORDS = {PROSPECT: "prospect", ACTIVE: "customer", CHURNED: "churned"}

# the one customer the user clicked (an index into model.shown); per browser session
selected_customer = solara.reactive(-1)


def _signed(x: float) -> str:
    return f"{x:+.2f}"


@solara.component
def Note(html: str, classes: list[str] | None = None, small: bool = False):
    """A paragraph of trusted HTML (escape what comes from files). Not `solara.Markdown`: it loads KaTeX from
    a CDN, which fails offline."""
    style = f"font-size: {'0.85em' if small else '1em'}; margin: 2px 0 6px 0"
    solara.HTML(tag="div", unsafe_innerHTML=html, classes=classes or [], style=style)


@solara.component
def KpiPanel(model):
    """Today's numbers: customers, flows, satisfaction, the contact centre."""
    update_counter.get()
    day, days = model.day, model.config.days
    if day == 0:
        values = {"active customers": f"{int(np.count_nonzero(model.population.state == ACTIVE)):,}"}
    else:
        table = model.daily()
        today = table.iloc[-1]
        values = {
            "active customers": f"{today.active_customers:,.0f}",
            "won today / so far": f"{today.acquisitions:.0f} / {table.acquisitions.sum():,.0f}",
            "churned today / so far": f"{today.churned:.0f} / {table.churned.sum():,.0f}",
            "CSAT %": f"{today.csat:.1f}",
            "NPS (true)": f"{today.nps:+.0f}",
            "NPS (surveyed)": "-" if np.isnan(today.nps_survey) else f"{today.nps_survey:+.0f}",
            "service wait, min": f"{today.wait_minutes:.1f}",
            "open complaints": f"{today.open_complaints:.0f}",
        }
    o = model.config.ownership
    cards = "".join(
        '<div class="cx-kpi" style="border: 1px solid #ddd; border-radius: 4px; padding: 2px 8px; min-width: 84px">'
        f'<div class="cx-kpi-value" style="font-size: 1.2em; font-weight: bold">{value}</div>'
        f'<div style="font-size: 0.75em">{label}</div></div>'
        for label, value in values.items()
    )
    with solara.Column(classes=["cx-kpis"], style={"padding": "8px"}):
        Note(
            f"<b>Day {day} of {days}</b> · {escape(model.config.name)} · ownership <code>{o.model}</code> · "
            f"{model.config.market.population:,} people · promise markup {o.promise_markup:+.2f} · "
            f"handoff consistency {o.handoff_consistency:.2f} · seed {model.seed} · engine {model.engine}",
            classes=["cx-day"],
        )
        Note(f'<div style="display: flex; flex-wrap: wrap; gap: 4px">{cards}</div>')


def customer_cells(model) -> list[list]:
    """One [colour, complaining, hover text] per shown customer: attitude red..green, prospects pale,
    churned grey, an open complaint marked."""
    pop, rows = model.population, model.shown
    state, attitude = pop.state[rows], model.attitudes()
    colours = [to_hex(c) for c in ATTITUDE_COLOURS(ATTITUDE_NORM(attitude))]
    cells = []
    for j, row in enumerate(rows):
        s = int(state[j])
        complaint = int(pop.complaint[row]) if s == ACTIVE else NO_DEPT
        text = f"customer {row}: {STATE_WORDS[s]}"
        if s == ACTIVE:
            text += f" for {pop.tenure[row]} days, attitude {_signed(attitude[j])}"
            if complaint != NO_DEPT:
                text += f", complaining about {DEPARTMENTS[complaint]}"
        colour = colours[j] if s == ACTIVE else PROSPECT_COLOUR if s == PROSPECT else CHURNED_COLOUR
        cells.append([colour, int(complaint != NO_DEPT), text])
    return cells


@solara.component
def CustomerView(model):
    """Every shown customer as an agent; hover for a summary, click to follow one customer's journey."""
    update_counter.get()
    n, shown = model.config.market.population, len(model.shown)
    with solara.Column(style={"padding": "8px", "height": "100%"}):
        Note(
            f"<b>Customers</b> ({shown:,} of {n:,}, neighbours on the network side by side) · "
            "colour = attitude (red unhappy, green happy) · pale = prospect · grey = churned · "
            "dot = open complaint · hover for a summary, click to follow a journey"
        )
        CustomerGridWidget.element(
            cells_json=json.dumps(customer_cells(model)),
            columns=int(np.ceil(np.sqrt(shown))),
            selected=selected_customer.value,
            on_pick=selected_customer.set,
        )


def _journey_markers(model, j: int, attitude: np.ndarray) -> list[dict]:
    """Dots on the attitude line: failures in their department's colour, complaints, resolutions, joining, leaving."""
    events = model.journey_events[: model.day, j]
    marks = [(K.EVENT.failed + k, DEPARTMENT_COLOURS[d], f"{d} failed") for k, d in enumerate(DEPARTMENTS)]
    marks += [
        (K.EVENT.new_complaint, "#000000", "complained"),
        (K.EVENT.resolved, "#2e7d32", "complaint resolved"),
        (K.EVENT.acquired, "#00c853", "became a customer"),
        (K.EVENT.churned, "#616161", "left"),
    ]
    return [
        {"x": int(day), "y": float(attitude[day]), "color": colour, "label": f"day {day}: {label}"}
        for bit, colour, label in marks
        for day in np.flatnonzero(events & (1 << bit))
    ]


@solara.component
def JourneyPanel(model):
    """The clicked customer's journey so far: attitude day by day, failures by department, complaints."""
    update_counter.get()
    j = selected_customer.value
    with solara.Column(classes=["cx-journey"], style={"padding": "8px"}):
        if not 0 <= j < len(model.shown):
            Note("<b>One customer's journey</b> · click a customer in the customer view to follow them.")
            return
        row = int(model.shown[j])
        pop = model.population
        s = int(pop.state[row])
        head = f"<b>Customer {row}</b>: {STATE_WORDS[s]}"
        if s == ACTIVE:
            head += (
                f" for {pop.tenure[row]} days · attitude {_signed(model.attitudes()[j])} · expects "
                f"{pop.expectation[row]:.2f} · complained {'yes' if pop.complained[row] else 'never'}"
            )
        Note(head, classes=["cx-journey-head"])
        days, told = model.journey(j)
        attitude = days.attitude.to_numpy(dtype=float)
        LineChartWidget.element(
            title="attitude day by day",
            ylabel="attitude",
            series=[{"name": "attitude", "color": "#333333", "values": _finite(attitude)}],
            markers=_journey_markers(model, j, attitude),
        )
        recent = "; ".join(f"day {d}: {w}" for d, w in told[-12:]) or "no failure, complaint or word of mouth yet"
        Note(recent, small=True)


def _bar(value: float, top: float, colour: str, text: str) -> str:
    width = 0.0 if top <= 0 else 65.0 * value / top
    return (
        f'<td style="width: 30%; padding: 1px 4px; white-space: nowrap">'
        f'<div style="background: {colour}; width: {width:.1f}%; '
        f'height: 12px; display: inline-block; vertical-align: middle"></div> {text}</td>'
    )


@solara.component
def DepartmentPanel(model):
    """Each department's budget, failure rate and the churn blamed on it."""
    update_counter.get()
    table = model.departments_now()
    top = table.max()
    rows = "".join(
        f'<tr><td style="padding-right: 6px">{name}</td>'
        + _bar(d.budget, top.budget, DEPARTMENT_COLOURS[name], f"{d.budget / 1e3:,.1f}k")
        + _bar(d.failure_rate, top.failure_rate, DEPARTMENT_COLOURS[name], f"{100 * d.failure_rate:.1f}%")
        + _bar(d.churn_attributed, top.churn_attributed, DEPARTMENT_COLOURS[name], f"{d.churn_attributed:.0f}")
        + "</tr>"
        for name, d in table.iterrows()
    )
    Note(
        '<b>Departments</b><table class="cx-departments" style="width: 100%; font-size: 0.85em; '
        'border-collapse: collapse"><tr><th></th><th align="left">budget / year</th>'
        '<th align="left">failure rate today</th><th align="left">churn attributed</th></tr>'
        f"{rows}</table>"
    )
    Note(
        f"the same run from the command line: <code style='white-space: normal; word-break: break-word'>"
        f"{escape(model.command_line())}</code>",
        small=True,
        classes=["cx-command"],
    )


def _finite(values) -> list:
    """Numbers for JSON: NaN (e.g. no survey answer yet) becomes a gap."""
    return [None if not np.isfinite(x) else round(float(x), 4) for x in values]


def line_chart(title: str, ylabel: str, lines: dict[str, tuple[str, str]]):
    """A chart component of `model.daily()` columns: {column: (legend name, colour)}."""

    @solara.component
    def Chart(model):
        update_counter.get()
        table = model.daily()
        LineChartWidget.element(
            title=title,
            ylabel=ylabel,
            series=[
                {"name": name, "color": colour, "values": _finite(table[column])}
                for column, (name, colour) in lines.items()
            ],
        )

    Chart.__name__ = f"Chart_{title}"
    return Chart


CHARTS = [
    line_chart("Active customers", "customers", {"active_customers": ("active", "#1f77b4")}),
    line_chart(
        "Acquisitions and churn per day",
        "customers",
        {"acquisitions": ("acquisitions", "#2ca02c"), "churned": ("churned", "#d62728")},
    ),
    line_chart(
        "CSAT and NPS",
        "% / points",
        {
            "csat": ("CSAT %", "#1f77b4"),
            "nps": ("NPS (true)", "#9467bd"),
            "nps_survey": ("NPS (surveyed, to date)", "#ff7f0e"),
        },
    ),
    line_chart(
        "Contact centre",
        "minutes / complaints",
        {"wait_minutes": ("wait (minutes)", "#8c564b"), "open_complaints": ("open complaints", "#7f7f7f")},
    ),
]

COMPONENTS = [KpiPanel, CustomerView, JourneyPanel, DepartmentPanel, *CHARTS]
