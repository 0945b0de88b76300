"""The KPIs a run reports: names, what each means (docs/MODEL.md section 7, the JSON contract), how a value is written.

`cxsim.metrics` computes them; this module imports nothing of the simulator, so the
command line and sweep files can name and check KPIs cheaply.
"""

KPIS = {
    "active_customers": "active customers on the last day",
    "acquisitions": "customers won over the run (win-backs included)",
    "winbacks": "former customers won again over the run",
    "market_share": "active customers as a share of the market's people, last day",
    "churned": "customers lost over the run",
    "retention": "share of the day-0 customers still active on the last day",
    "silent_churn_share": "share of churners who never complained",
    "csat": "% of active customers with a non-negative attitude, last day",
    "nps": "true NPS of all active customers, last day",
    "nps_survey": "NPS measured by the self-selected survey over the run",
    "csat_survey": "CSAT measured by the survey over the run",
    "nps_run": "true NPS of every active customer-day over the run (the survey's window)",
    "csat_run": "% of active customer-days with a non-negative attitude over the run (the survey's window)",
    "complaints": "complaints voiced over the run",
    "complaint_share_unhappy": "share of unhappy active customers who complained, averaged over days",
    "repeat_contacts": "contacts on a complaint already raised before",
    "mean_service_wait_hours": "contact-weighted mean wait in the contact centre",
    "revenue": "revenue over the run (currency)",
    "cost": "departments' budgets and governance overhead spent over the run (currency)",
    "profit": "revenue - cost",
    "npv_profit": "profit over the run discounted daily at finance.discount_rate (currency)",
    "customer_equity": "discounted expected margin of the customers active on the last day, each at its own "
    "renewal hazard (currency)",
    "wom_positive": "positive word-of-mouth messages and posts",
    "wom_negative": "negative word-of-mouth messages and posts",
}


def number(x) -> str:
    """A KPI value for a table: thousands separators for large numbers, 4 significant digits otherwise."""
    if x is None or x != x:
        return "-"
    if abs(x) < 1e-12:  # float sums of identical replicates
        return "0"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"
