"""The side-by-side page's pieces: two organisations (a `PairModel`) meeting the same customers with the same luck.

Side A is drawn in blue, side B in orange; every chart shades the difference,
the KPI cards show both and B - A, and the customers whose fate differs between
the sides are framed in blue in both grids.
"""

from __future__ import annotations

from html import escape

import numpy as np
import solara

from cxsim.domain import ACTIVE, CHURNED, PROSPECT
from cxsim.viz.components import (
    CUSTOMER_LEGEND,
    JOURNEY_HINT,
    KPI_FORMATS,
    STATE_WORDS,
    Note,
    _finite,
    chart,
    command_note,
    customer_grid,
    departments_table,
    describe_run,
    journey_span,
    journey_view,
    kpi_text,
    kpis_today,
    selected_customer,
)

SIDE_COLOURS = ("#1f77b4", "#ff7f0e")

# what a difference in state says, side A's state first
FATES = {
    (ACTIVE, CHURNED): "kept by {a}, lost by {b}",
    (CHURNED, ACTIVE): "lost by {a}, kept by {b}",
    (ACTIVE, PROSPECT): "won by {a}, not by {b}",
    (PROSPECT, ACTIVE): "won by {b}, not by {a}",
}


def fates(pair) -> list[str]:
    """Per shown customer, how their fate differs between the two sides ("" where it is the same)."""
    a, b = pair.sides
    labels = dict(zip("ab", pair.contrast.labels, strict=True))
    with a.lock, b.lock:
        states = zip(a.population.state[a.shown].tolist(), b.population.state[b.shown].tolist(), strict=True)
    out = []
    for sa, sb in states:
        if sa == sb:
            out.append("")
        else:
            words = FATES.get((sa, sb), f"{STATE_WORDS[sa]} under {{a}}, {STATE_WORDS[sb]} under {{b}}")
            out.append(words.format(**labels))
    return out


def _side(label: str, k: int) -> str:
    return f'<span style="color: {SIDE_COLOURS[k]}">&#9632;</span> <b>{escape(label)}</b>'


@solara.component
def PairKpiPanel(pair, tick: int = 0):
    """Today's numbers of both organisations and their difference (B - A)."""
    a, b = pair.sides
    labels = pair.contrast.labels
    numbers = [kpis_today(side) for side in pair.sides]

    def card(label: str) -> str:
        a, b = (n[label] for n in numbers)
        return (
            '<div class="cx-pair-kpi" style="border: 1px solid #ddd; border-radius: 4px; padding: 2px 8px; '
            'min-width: 92px; font-size: 0.9em">'
            f'<div style="font-size: 0.8em">{label}</div>'
            f'<div class="cx-pair-a" style="color: {SIDE_COLOURS[0]}; font-weight: bold">{kpi_text(label, a)}</div>'
            f'<div class="cx-pair-b" style="color: {SIDE_COLOURS[1]}; font-weight: bold">{kpi_text(label, b)}</div>'
            f'<div class="cx-pair-diff">B - A {kpi_text(label, b - a, difference=True)}</div></div>'
        )

    cards = "".join(card(label) for label in KPI_FORMATS)
    with solara.Column(classes=["cx-kpis"], style={"padding": "8px"}):
        Note(
            f"<b>Day {pair.day} of {a.config.days}</b> · two organisations, the same {a.config.market.population:,} "
            f"people and the same luck (seed {a.seed}, engine {a.engine})<br>"
            f"A {_side(labels[0], 0)}: {describe_run(a)}<br>B {_side(labels[1], 1)}: {describe_run(b)}",
            classes=["cx-day"],
        )
        Note(f'<div style="display: flex; flex-wrap: wrap; gap: 4px">{cards}</div>')


@solara.component
def PairCustomerView(pair, tick: int = 0):
    """Both populations side by side, the same customer in the same place; customers whose fate differs framed."""
    a = pair.sides[0]
    told = fates(pair)
    differ = sum(1 for f in told if f)
    with solara.Column(style={"padding": "8px", "height": "100%"}):
        Note(
            f"<b>Customers</b> ({len(a.shown):,} of {a.config.market.population:,}, the same people on both sides) · "
            f"{CUSTOMER_LEGEND} · <span style='color: #1565c0'>blue frame</span> = a different fate on the other "
            f"side: <b class='cx-differ-count'>{differ}</b> customers so far",
        )
        with solara.Columns([1, 1]):
            for k, side in enumerate(pair.sides):
                with solara.Column(classes=[f"cx-side-{'ab'[k]}"]):
                    Note(_side(pair.contrast.labels[k], k), small=True)
                    customer_grid(side, told)


@solara.component
def PairJourneyPanel(pair, tick: int = 0):
    """The clicked customer's two journeys, one above the other on one scale: the same person, the same luck."""
    j = selected_customer.value
    with solara.Column(classes=["cx-journey"], style={"padding": "8px"}):
        if not 0 <= j < len(pair.sides[0].shown):
            Note(JOURNEY_HINT)
            return
        spans = [journey_span(side, j) for side in pair.sides]
        ylim = (min(s[0] for s in spans), max(s[1] for s in spans))
        told = fates(pair)[j]
        if told:
            Note(f"<b>{escape(told)}</b>", classes=["cx-fate"])
        for k, side in enumerate(pair.sides):
            with solara.Column(classes=[f"cx-journey-{'ab'[k]}"]):
                journey_view(side, j, heading=f"{_side(pair.contrast.labels[k], k)} · ", ylim=ylim)


@solara.component
def PairDepartmentPanel(pair, tick: int = 0):
    """Both organisations' budgets, failure rates and churn attributed (A over B), and the `cxsim compare`
    command that runs the pair over replicates."""
    labels = pair.contrast.labels
    Note(
        f"<b>Departments</b> · A {_side(labels[0], 0)} / B {_side(labels[1], 1)}"
        + departments_table([side.departments_now() for side in pair.sides], list(SIDE_COLOURS))
    )
    command_note(
        pair.compare_command(),
        "the same pair over replicates, with 95% intervals of the paired differences (its first replicate is this run)",
    )


def pair_chart(title: str, ylabel: str, column: str, cumulative: bool = False):
    """A chart component of one `daily()` column of both sides, the difference shaded; `cumulative` sums it."""

    @solara.component
    def Chart(pair, tick: int = 0):
        series = []
        for side, label, colour in zip(pair.sides, pair.contrast.labels, SIDE_COLOURS, strict=True):
            values = side.daily()[column].to_numpy(dtype=float)
            values = np.cumsum(values) if cumulative else values
            series.append({"name": label, "color": colour, "values": _finite(values)})
        chart(title, ylabel, series, band=(0, 1))

    Chart.__name__ = f"PairChart_{title}"
    return Chart


PAIR_CHARTS = [
    pair_chart("Active customers", "customers", "active_customers"),
    pair_chart("Customers lost so far", "customers", "churned", cumulative=True),
    pair_chart("CSAT %", "%", "csat"),
    pair_chart("NPS (true)", "points", "nps"),
    pair_chart("Service wait", "minutes", "wait_minutes"),
    pair_chart("Revenue so far", "currency", "revenue", cumulative=True),
]

PAIR_COMPONENTS = [PairKpiPanel, PairCustomerView, PairJourneyPanel, PairDepartmentPanel, *PAIR_CHARTS]
