"""The KPIs a run reports: names, what each means (docs/MODEL.md section 7, the JSON contract), what kind of figure
each is, how a value is written.

`cxsim.metrics` computes them; this module imports nothing of the simulator, so the
command line and sweep files can name and check KPIs cheaply.

**Kinds.** A simulated market is a sample of the real one (`market.represents`): one simulated person stands for
`k = represents / population` people. A *count* (people, events) and an *amount* (currency) are reported for the
represented market, the sample's value times k; a *rate* (a share, a score, a mean per customer or per contact, a
price) is the same at every scale and reported as the sample has it. Every KPI and every column of the daily and
per-department tables declares its kind here, once.
"""

from typing import NamedTuple

from cxsim.domain import DEPARTMENTS

COUNT, AMOUNT, RATE = "count", "amount", "rate"
SCALED = (COUNT, AMOUNT)  # the kinds reported for the represented market (times k)


class KPI(NamedTuple):
    meaning: str
    kind: str  # COUNT, AMOUNT or RATE


DEFINITIONS: dict[str, KPI] = {
    "active_customers": KPI("active customers on the last day", COUNT),
    "acquisitions": KPI("customers won over the run (win-backs included)", COUNT),
    "winbacks": KPI("former customers won again over the run", COUNT),
    "market_share": KPI("active customers as a share of the market's people, last day", RATE),
    "churned": KPI("customers lost over the run", COUNT),
    "retention": KPI("share of the day-0 customers still active on the last day", RATE),
    "silent_churn_share": KPI("share of churners who never complained", RATE),
    "csat": KPI("% of active customers with a non-negative attitude, last day", RATE),
    "nps": KPI("true NPS of all active customers, last day", RATE),
    "nps_survey": KPI("NPS measured by the self-selected survey over the run", RATE),
    "csat_survey": KPI("CSAT measured by the survey over the run", RATE),
    "nps_run": KPI("true NPS of every active customer-day over the run (the survey's window)", RATE),
    "csat_run": KPI("% of active customer-days with a non-negative attitude over the run (the survey's window)", RATE),
    "complaints": KPI("complaints voiced over the run", COUNT),
    "complaint_share_unhappy": KPI("share of unhappy active customers who complained, averaged over days", RATE),
    "repeat_contacts": KPI("contacts on a complaint already raised before", COUNT),
    "mean_service_wait_hours": KPI("contact-weighted mean wait in the contact centre", RATE),
    "revenue": KPI("revenue over the run (currency)", AMOUNT),
    "cost": KPI("departments' budgets and governance overhead spent over the run (currency)", AMOUNT),
    "profit": KPI("revenue - cost", AMOUNT),
    "npv_profit": KPI("profit over the run discounted daily at finance.discount_rate (currency)", AMOUNT),
    "customer_equity": KPI(
        "discounted expected margin of the customers active on the last day, each at its own renewal hazard (currency)",
        AMOUNT,
    ),
    "wom_positive": KPI("positive word-of-mouth messages and posts", COUNT),
    "wom_negative": KPI("negative word-of-mouth messages and posts", COUNT),
}
KPIS = {name: kpi.meaning for name, kpi in DEFINITIONS.items()}

# the kinds of the daily table's and the per-department table's columns that are not KPIs (a column named like a KPI
# is that KPI's kind); identifiers (day, department, scenario, replicate, seed) are not figures and are not scaled
COLUMNS: dict[str, str] = {
    "prospects": COUNT,
    "churned_customers": COUNT,
    "contacts": COUNT,
    "survey_responses": COUNT,
    "mean_attitude": RATE,
    "mean_expectation": RATE,
    "pool": AMOUNT,
    "promise": RATE,
    "wait_hours": RATE,
    "abandonment": RATE,
    "price": RATE,
    "competitor_quality": RATE,
    **{f"budget_{d}": AMOUNT for d in DEPARTMENTS},
    **{f"failure_{d}": RATE for d in DEPARTMENTS},
    "budget": AMOUNT,
    "encounters": COUNT,
    "failures": COUNT,
    "complaints_caused": COUNT,
    "churn_attributed": COUNT,
    "winbacks_after": COUNT,
}
IDENTIFIERS = ("day", "department", "scenario", "replicate", "seed", "engine", "run_id")


def kind(name: str) -> str:
    """A KPI's or a table column's kind: COUNT, AMOUNT or RATE (KeyError for a figure nobody declared)."""
    return DEFINITIONS[name].kind if name in DEFINITIONS else COLUMNS[name]


def scaled(name: str) -> bool:
    """Whether a KPI or column is reported for the represented market (a count or an amount)."""
    return kind(name) in SCALED


def number(x) -> str:
    """A KPI value for a table: thousands separators for large numbers, 4 significant digits otherwise."""
    if x is None or x != x:
        return "-"
    if abs(x) < 1e-12:  # float sums of identical replicates
        return "0"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"
