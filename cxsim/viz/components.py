"""The page's pieces: KPIs, the customers as agents, one customer's journey, departments, charts, the lesson's
guide and the board that lays them out (side-by-side versions: `cxsim.viz.compare`).

Every panel takes the live `TeachingModel` and the board's `tick`, and re-renders
when Mesa's `update_counter` moves (after Step, during Play, on Reset). Charts and the
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


# today's numbers: label -> format spec of the value (a difference is shown with a sign)
KPI_FORMATS = {
    "active customers": ",.0f",
    "won so far": ",.0f",
    "churned so far": ",.0f",
    "CSAT %": ".1f",
    "NPS (true)": "+.0f",
    "NPS (surveyed)": "+.0f",
    "service wait, min": ".1f",
    "open complaints": ",.0f",
}


def kpis_today(model) -> dict[str, float]:
    """Today's numbers of one organisation, by `KPI_FORMATS` label (NaN before the first day)."""
    with model.lock:
        day, active = model.day, float(np.count_nonzero(model.population.state == ACTIVE))
    if day == 0:
        return {label: active if label == "active customers" else np.nan for label in KPI_FORMATS}
    table = model.daily()
    today = table.iloc[-1]
    return dict(
        zip(
            KPI_FORMATS,
            (
                today.active_customers,
                table.acquisitions.sum(),
                table.churned.sum(),
                today.csat,
                today.nps,
                today.nps_survey,
                today.wait_minutes,
                today.open_complaints,
            ),
            strict=True,
        )
    )


def kpi_text(label: str, value: float, difference: bool = False) -> str:
    if not np.isfinite(value):
        return "-"
    spec = KPI_FORMATS[label]
    return format(value, "+" + spec.lstrip("+") if difference else spec)


def _card(value: str, label: str, extra: str = "") -> str:
    return (
        '<div class="cx-kpi" style="border: 1px solid #ddd; border-radius: 4px; padding: 2px 8px; min-width: 84px">'
        f'<div class="cx-kpi-value" style="font-size: 1.2em; font-weight: bold">{value}</div>{extra}'
        f'<div style="font-size: 0.75em">{label}</div></div>'
    )


def _cards(cards: list[str]) -> None:
    Note(f'<div style="display: flex; flex-wrap: wrap; gap: 4px">{"".join(cards)}</div>')


def describe_run(model) -> str:
    o = model.config.ownership
    return (
        f"{escape(model.config.name)} · ownership <code>{o.model}</code> · promise markup {o.promise_markup:+.2f} · "
        f"handoff consistency {o.handoff_consistency:.2f}"
    )


@solara.component
def KpiPanel(model, tick: int = 0):
    """Today's numbers: customers, flows, satisfaction, the contact centre."""
    with solara.Column(classes=["cx-kpis"], style={"padding": "8px"}):
        Note(
            f"<b>Day {model.day} of {model.config.days}</b> · {describe_run(model)} · "
            f"{model.config.market.population:,} people · seed {model.seed} · engine {model.engine}",
            classes=["cx-day"],
        )
        _cards([_card(kpi_text(label, x), label) for label, x in kpis_today(model).items()])


# the attitude colour scale in 256 steps, as hex: a lookup per customer instead of a colour conversion
ATTITUDE_STEPS = np.array([to_hex(c) for c in ATTITUDE_COLOURS(np.linspace(0.0, 1.0, 256))])


def attitude_colours(attitude: np.ndarray) -> np.ndarray:
    """Hex colours of attitudes on the red..green scale (`ATTITUDE_NORM`)."""
    return ATTITUDE_STEPS[np.clip(np.rint(255 * ATTITUDE_NORM(attitude).filled(0.5)), 0, 255).astype(int)]


def customer_cells(model, fates: list[str] | None = None) -> list[list]:
    """One [colour, complaining, hover text, marked] per shown customer: attitude red..green, prospects pale,
    churned grey, an open complaint marked; `fates` (a pair's, see `cxsim.viz.compare`) marks and tells the
    customers whose fate differs on the other side."""
    with model.lock:
        return _cells(model, fates)


def _cells(model, fates: list[str] | None) -> list[list]:
    pop, rows = model.population, model.shown
    state, attitude = pop.state[rows], model.attitudes()
    colours = attitude_colours(attitude).tolist()
    cells = []
    for j, row in enumerate(rows):
        s = int(state[j])
        complaint = int(pop.complaint[row]) if s == ACTIVE else NO_DEPT
        text = f"customer {row}: {STATE_WORDS[s]}"
        if s == ACTIVE:
            text += f" for {pop.tenure[row]} days, attitude {_signed(attitude[j])}"
            if complaint != NO_DEPT:
                text += f", complaining about {DEPARTMENTS[complaint]}"
        fate = fates[j] if fates else ""
        if fate:
            text += f" · {fate}"
        colour = colours[j] if s == ACTIVE else PROSPECT_COLOUR if s == PROSPECT else CHURNED_COLOUR
        cells.append([colour, int(complaint != NO_DEPT), text, int(bool(fate))])
    return cells


def customer_grid(model, fates: list[str] | None = None):
    """The customer grid widget of one organisation; a click picks the customer for the journey panel."""
    shown = len(model.shown)
    return CustomerGridWidget.element(
        cells_json=json.dumps(customer_cells(model, fates)),
        columns=int(np.ceil(np.sqrt(shown))),
        selected=selected_customer.value,
        on_pick=selected_customer.set,
    )


CUSTOMER_LEGEND = (
    "colour = attitude (red unhappy, green happy) · pale = prospect · grey = churned · dot = open complaint · "
    "hover for a summary, click to follow a journey"
)


@solara.component
def CustomerView(model, tick: int = 0):
    """Every shown customer as an agent; hover for a summary, click to follow one customer's journey."""
    n, shown = model.config.market.population, len(model.shown)
    with solara.Column(style={"padding": "8px", "height": "100%"}):
        Note(f"<b>Customers</b> ({shown:,} of {n:,}, neighbours on the network side by side) · {CUSTOMER_LEGEND}")
        customer_grid(model)


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


def journey_span(model, j: int) -> tuple[float, float]:
    """The lowest and highest attitude of shown customer j so far (to put two journeys on one scale)."""
    with model.lock:
        attitude = model.journey_attitude[: model.day, j].copy()
    return (float(attitude.min()), float(attitude.max())) if len(attitude) else (0.0, 1.0)


def journey_view(model, j: int, heading: str = "", ylim: tuple[float, float] | None = None):
    """Shown customer j's journey so far under one organisation: its state, attitude day by day with failures
    (by department), complaints and resolutions marked, and the latest events in words."""
    with model.lock:
        _journey_view(model, j, heading, ylim)


def _journey_view(model, j: int, heading: str, ylim: tuple[float, float] | None):
    row = int(model.shown[j])
    pop = model.population
    s = int(pop.state[row])
    head = f"{heading}<b>Customer {row}</b>: {STATE_WORDS[s]}"
    if s == ACTIVE:
        head += (
            f" for {pop.tenure[row]} days · attitude {_signed(model.attitudes()[j])} · expects "
            f"{pop.expectation[row]:.2f} · complained {'yes' if pop.complained[row] else 'never'}"
        )
    Note(head, classes=["cx-journey-head"])
    days, told = model.journey(j)
    attitude = days.attitude.to_numpy(dtype=float)
    chart(
        "attitude day by day",
        "attitude",
        [{"name": "attitude", "color": "#333333", "values": _finite(attitude)}],
        markers=_journey_markers(model, j, attitude),
        ylim=ylim or (),
    )
    recent = "; ".join(f"day {d}: {w}" for d, w in told[-12:]) or "no failure, complaint or word of mouth yet"
    Note(recent, small=True, classes=["cx-journey-events"])


JOURNEY_HINT = "<b>One customer's journey</b> · click a customer in the customer view to follow them."


@solara.component
def JourneyPanel(model, tick: int = 0):
    """The clicked customer's journey so far: attitude day by day, failures by department, complaints."""
    j = selected_customer.value
    with solara.Column(classes=["cx-journey"], style={"padding": "8px"}):
        if 0 <= j < len(model.shown):
            journey_view(model, j)
        else:
            Note(JOURNEY_HINT)


def _bars(values, top: float, colours, text: str) -> str:
    """A table cell: the text, and below it one bar per organisation (a pair's stacked)."""
    height = 10 if len(values) == 1 else 5
    bars = "".join(
        f'<div style="background: {c}; width: {0.0 if top <= 0 else 90.0 * v / top:.1f}%; height: {height}px; '
        'margin-top: 1px"></div>'
        for v, c in zip(values, colours, strict=True)
    )
    return f'<td style="width: 30%; padding: 1px 6px 3px 0; white-space: nowrap; vertical-align: top">{text}{bars}</td>'


def departments_table(tables: list, colours: list) -> str:
    """Per department a row of budget, failure rate and churn attributed, one bar per organisation's table."""
    columns = {"budget": lambda x: f"{x / 1e3:,.1f}k", "failure_rate": lambda x: f"{100 * x:.1f}%"}
    columns["churn_attributed"] = lambda x: f"{x:.0f}"
    values = {c: np.array([t[c].to_numpy(dtype=float) for t in tables]) for c in columns}  # organisation x dept
    rows = ""
    for k, name in enumerate(tables[0].index):
        cols = colours or [DEPARTMENT_COLOURS[name]]
        cells = "".join(
            _bars(v[:, k], v.max(), cols, " / ".join(text(x) for x in v[:, k]))
            for v, text in ((values[c], f) for c, f in columns.items())
        )
        rows += f'<tr><td style="padding-right: 6px; vertical-align: top">{name}</td>{cells}</tr>'
    return (
        '<table class="cx-departments" style="width: 100%; font-size: 0.85em; '
        'border-collapse: collapse"><tr><th></th><th align="left">budget / year</th>'
        '<th align="left">failure rate today</th><th align="left">churn attributed</th></tr>'
        f"{rows}</table>"
    )


def command_note(command: str, what: str) -> None:
    Note(
        f"{what}: <code style='white-space: normal; word-break: break-word'>{escape(command)}</code>",
        small=True,
        classes=["cx-command"],
    )


@solara.component
def DepartmentPanel(model, tick: int = 0):
    """Each department's budget, failure rate and the churn blamed on it."""
    Note("<b>Departments</b>" + departments_table([model.departments_now()], []))
    command_note(model.command_line(), "the same run from the command line")


def _finite(values) -> list:
    """Numbers for JSON: NaN (e.g. no survey answer yet) becomes a gap."""
    x = np.round(np.asarray(values, dtype=float), 4)
    return np.where(np.isfinite(x), x, None).tolist()


def chart(title: str, ylabel: str, series: list[dict], markers: list[dict] = (), band=(), ylim=()):
    """A `LineChartWidget` element (see there for the shapes of series, markers, band and ylim)."""
    return LineChartWidget.element(
        title=title,
        ylabel=ylabel,
        series_json=json.dumps(series),
        markers_json=json.dumps(list(markers)),
        band=list(band),
        ylim=list(ylim),
    )


def line_chart(title: str, ylabel: str, lines: dict[str, tuple[str, str]]):
    """A chart component of `model.daily()` columns: {column: (legend name, colour)}."""

    @solara.component
    def Chart(model, tick: int = 0):
        table = model.daily()
        chart(
            title,
            ylabel,
            [
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


@solara.component
def GuidePanel(lesson):
    """The lesson's guide beside the run: things to notice, things to try (as NetLogo's Info tab has them)."""
    parts = [
        f"<b>{title}</b><ul style='margin: 2px 0 6px 0; padding-left: 18px'>"
        + "".join(f"<li>{escape(item)}</li>" for item in items)
        + "</ul>"
        for title, items in (("Things to notice", lesson.notice), ("Try this", lesson.try_this))
        if items
    ]
    with solara.Column(classes=["cx-guide"], style={"padding": "8px"}):
        Note("".join(parts))


PANEL_STYLE = "border-radius: 4px; box-shadow: 0 1px 3px rgba(0, 0, 0, 0.25); background: white; min-width: 0"


@solara.component
def Board(model, panels: list):
    """The main view: every panel on a card of a two-column grid (Mesa's own grid comes under a stray "Page 0"
    tab). `panels`: components of (model, tick) that draw one panel each. Only the board follows Mesa's
    update counter and hands it on as `tick`: one render pass per day for all panels, not one per panel."""
    tick = update_counter.get()
    with solara.Div(
        classes=["cx-board"],
        style="display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 10px; padding: 8px",
    ):
        for panel in panels:
            with solara.Div(classes=["cx-panel"], style=PANEL_STYLE):
                panel(model, tick)
