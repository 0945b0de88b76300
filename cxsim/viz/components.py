"""The page's pieces: KPIs, the customers as agents, one customer's journey, departments, charts.

Every component takes the live `TeachingModel` and re-renders when Mesa's
`update_counter` moves (after Step, during Play, on Reset). Charts are
matplotlib images and the customer view is a small Vue template, so nothing is
fetched from a CDN.
"""

from __future__ import annotations

from html import escape

import ipyvuetify
import matplotlib
import numpy as np
import solara
import traitlets
from matplotlib.colors import TwoSlopeNorm, to_hex
from matplotlib.figure import Figure
from mesa.visualization import make_plot_component
from mesa.visualization.utils import update_counter

from cxsim import kernel as K
from cxsim.kernel import DEPARTMENTS

ATTITUDE_COLOURS = matplotlib.colormaps["RdYlGn"]
ATTITUDE_NORM = TwoSlopeNorm(vmin=-0.5, vcenter=0.0, vmax=0.25)
PROSPECT_COLOUR, CHURNED_COLOUR = "#e8eaf0", "#8d8d8d"
DEPARTMENT_COLOURS = dict(zip(DEPARTMENTS, matplotlib.colormaps["tab10"].colors))
STATE_WORDS = {K.PROSPECT: "prospect", K.ACTIVE: "customer", K.CHURNED: "churned"}

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
        values = {"active customers": f"{int(np.count_nonzero(model.population.state == K.ACTIVE)):,}"}
    else:
        table = model.daily()
        today = table.iloc[-1]
        values = {
            "active customers": f"{today.active_customers:,.0f}",
            "acquisitions (today / total)": f"{today.acquisitions:.0f} / {table.acquisitions.sum():,.0f}",
            "churn (today / total)": f"{today.churned:.0f} / {table.churned.sum():,.0f}",
            "CSAT %": f"{today.csat:.1f}",
            "NPS (true)": f"{today.nps:+.0f}",
            "NPS (surveyed)": "-" if np.isnan(today.nps_survey) else f"{today.nps_survey:+.0f}",
            "service wait (min)": f"{today.wait_minutes:.1f}",
            "open complaints": f"{today.open_complaints:.0f}",
        }
    with solara.Column(classes=["cx-kpis"], style={"padding": "8px"}):
        o = model.config.ownership
        Note(f"<b>Day {day} of {days}</b> · {escape(model.config.name)} · ownership <code>{o.model}</code> · "
             f"{model.config.market.population:,} people · promise markup {o.promise_markup:+.2f} · "
             f"handoff consistency {o.handoff_consistency:.2f} · seed {model.seed} · engine {model.engine}",
             classes=["cx-day"])
        with solara.Row(style={"flex-wrap": "wrap", "gap": "6px"}):
            for label, value in values.items():
                with solara.Card(margin=0, classes=["cx-kpi"], style={"min-width": "120px", "padding": "4px 10px"}):
                    solara.Text(value, style={"font-size": "1.4em", "font-weight": "bold"}, classes=["cx-kpi-value"])
                    solara.Text(label, style={"font-size": "0.8em", "display": "block"})
        Note(f"the same run from the command line: <code>{escape(model.command_line())}</code>", small=True)


def customer_cells(model) -> list[list]:
    """One [colour, complaining, hover text] per shown customer: attitude red..green, prospects pale,
    churned grey, an open complaint marked."""
    pop, rows = model.population, model.shown
    state, attitude = pop.state[rows], model.attitudes()
    colours = [to_hex(c) for c in ATTITUDE_COLOURS(ATTITUDE_NORM(attitude))]
    cells = []
    for j, row in enumerate(rows):
        s = int(state[j])
        complaint = int(pop.complaint[row]) if s == K.ACTIVE else K.NO_DEPT
        text = f"customer {row}: {STATE_WORDS[s]}"
        if s == K.ACTIVE:
            text += f" for {pop.tenure[row]} days, attitude {_signed(attitude[j])}"
            if complaint != K.NO_DEPT:
                text += f", complaining about {DEPARTMENTS[complaint]}"
        colour = colours[j] if s == K.ACTIVE else PROSPECT_COLOUR if s == K.PROSPECT else CHURNED_COLOUR
        cells.append([colour, int(complaint != K.NO_DEPT), text])
    return cells


class CustomerGridWidget(ipyvuetify.VuetifyTemplate):
    """The customers as coloured squares laid along the network's ring (snaking row by row); click picks one."""

    template = traitlets.Unicode("""
<template>
  <svg class="cx-customers" :viewBox="'0 0 ' + columns + ' ' + rows" width="100%"
       :style="'max-height: 100%; aspect-ratio: ' + columns + ' / ' + rows" preserveAspectRatio="xMidYMin meet">
    <g v-for="(c, i) in cells" :key="i" @click="pick(i)" style="cursor: pointer">
      <rect :x="col(i) + 0.06" :y="row(i) + 0.06" width="0.88" height="0.88" :fill="c[0]"
            :stroke="i === selected ? '#000' : 'none'" stroke-width="0.25"><title>{{ c[2] }}</title></rect>
      <circle v-if="c[1]" :cx="col(i) + 0.5" :cy="row(i) + 0.5" r="0.2" fill="#1a1a1a" pointer-events="none"/>
    </g>
  </svg>
</template>
<script>
module.exports = {
  computed: { rows() { return Math.max(1, Math.ceil(this.cells.length / this.columns)); } },
  methods: {
    row(i) { return Math.floor(i / this.columns); },
    col(i) { const c = i % this.columns; return this.row(i) % 2 ? this.columns - 1 - c : c; },
  },
};
</script>
""").tag(sync=True)
    cells = traitlets.List().tag(sync=True)
    columns = traitlets.Int(1).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    on_pick = traitlets.Callable(None, allow_none=True)

    def vue_pick(self, index):
        if self.on_pick is not None:
            self.on_pick(int(index))


@solara.component
def CustomerView(model):
    """Every shown customer as an agent; hover for a summary, click to follow one customer's journey."""
    update_counter.get()
    n, shown = model.config.market.population, len(model.shown)
    with solara.Column(style={"padding": "8px", "height": "100%"}):
        Note(f"<b>Customers</b> ({shown:,} of {n:,}, neighbours on the network side by side) · "
             "colour = attitude (red unhappy, green happy) · pale = prospect · grey = churned · "
             "dot = open complaint · hover for a summary, click to follow a journey")
        CustomerGridWidget.element(cells=customer_cells(model), columns=int(np.ceil(np.sqrt(shown))),
                                   selected=selected_customer.value, on_pick=selected_customer.set)


def _journey_figure(model, j: int, days) -> Figure:
    fig = Figure(figsize=(6, 2.6), layout="constrained")
    ax = fig.subplots()
    ax.axhline(0.0, color="#999", lw=0.8)
    ax.plot(days.day, days.attitude, color="#333", lw=1.5, label="attitude")
    events = model.journey_events[:model.day, j]
    for k, name in enumerate(DEPARTMENTS):
        failed = np.flatnonzero(events & (1 << (K.FAILURE_BIT + k)))
        if len(failed):
            ax.scatter(failed, days.attitude.to_numpy()[failed], color=DEPARTMENT_COLOURS[name], s=28, zorder=3,
                       label=f"{name} failed")
    for bit, marker, label in ((K.NEW_COMPLAINT, "v", "complained"), (K.RESOLVED, "^", "resolved")):
        when = np.flatnonzero(events & (1 << bit))
        if len(when):
            ax.scatter(when, days.attitude.to_numpy()[when], marker=marker, facecolor="none", edgecolor="k", s=60,
                       zorder=4, label=label)
    for bit, colour, label in ((K.ACQUIRED, "tab:green", "joined"), (K.CHURNED_TODAY, "k", "left")):
        for day in np.flatnonzero(events & (1 << bit)):
            ax.axvline(day, color=colour, ls="--", lw=1, label=label)
    ax.set_xlim(0, max(1, model.day - 1))
    ax.set_xlabel("day")
    ax.set_ylabel("attitude")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="lower left", ncols=3)
    return fig


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
        if s == K.ACTIVE:
            head += (f" for {pop.tenure[row]} days · attitude {_signed(model.attitudes()[j])} · expects "
                     f"{pop.expectation[row]:.2f} · complained {'yes' if pop.complained[row] else 'never'}")
        Note(head, classes=["cx-journey-head"])
        days, told = model.journey(j)
        if model.day:
            solara.FigureMatplotlib(_journey_figure(model, j, days), format="png")
        recent = "; ".join(f"day {d}: {w}" for d, w in told[-12:]) or "nothing has happened yet"
        Note(recent, small=True)


def _departments_figure(model) -> Figure:
    table = model.departments_now()
    fig = Figure(figsize=(7, 2.6), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    colours = [DEPARTMENT_COLOURS[d] for d in table.index]
    for ax, column, title, scale in ((axes[0], "budget", "budget (k / year)", 1e-3),
                                     (axes[1], "failure_rate", "failure rate today (%)", 100.0),
                                     (axes[2], "churn_attributed", "churn attributed (customers)", 1.0)):
        ax.barh(table.index, table[column] * scale, color=colours)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].invert_yaxis()
    return fig


@solara.component
def DepartmentPanel(model):
    """Each department's budget, failure rate and the churn blamed on it."""
    update_counter.get()
    with solara.Column(classes=["cx-departments"], style={"padding": "8px"}):
        solara.FigureMatplotlib(_departments_figure(model), format="png")


def _titled(title: str, ylabel: str, labels: list[str] | None = None):
    def post_process(ax):
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("day")
        if labels:
            ax.legend(labels, fontsize=8, loc="best")
    return post_process


CHARTS = [
    make_plot_component("active_customers", post_process=_titled("Active customers", "customers")),
    make_plot_component({"acquisitions": "tab:green", "churned": "tab:red"},
                        post_process=_titled("Acquisitions and churn per day", "customers",
                                             ["acquisitions", "churned"])),
    make_plot_component({"csat": "tab:blue", "nps": "tab:purple", "nps_survey": "tab:orange"},
                        post_process=_titled("CSAT and NPS", "% / points",
                                             ["CSAT %", "NPS (true)", "NPS (surveyed, to date)"])),
    make_plot_component({"wait_minutes": "tab:brown", "open_complaints": "tab:gray"},
                        post_process=_titled("Contact centre", "minutes / complaints",
                                             ["service wait (minutes)", "open complaints"])),
]

COMPONENTS = [KpiPanel, CustomerView, JourneyPanel, DepartmentPanel, *CHARTS]
