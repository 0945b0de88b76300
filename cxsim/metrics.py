"""The KPIs of `cxsim.kpis` and the daily and per-department tables, read off the model's daily tallies and ledger."""

import numpy as np
import pandas as pd

from cxsim import kernel as K
from cxsim.domain import DEPARTMENTS, N_DEPT
from cxsim.model import LEDGER

# the daily time series: column -> tally
DAILY_TALLIES = {
    "active_customers": K.T_ACTIVE, "prospects": K.T_PROSPECTS, "churned_customers": K.T_CHURNED,
    "acquisitions": K.T_ACQUISITIONS, "churned": K.T_CHURN, "complaints": K.T_COMPLAINTS,
    "contacts": K.T_CONTACTS, "wom_positive": K.T_WOM_POSITIVE, "wom_negative": K.T_WOM_NEGATIVE,
    "survey_responses": K.T_SURVEYED,
}


def _share(num, den):
    return float(num / den) if den > 0 else float("nan")


def nps_of(promoters, detractors, n):
    return 100.0 * _share(promoters - detractors, n)


def daily_table(model) -> pd.DataFrame:
    """One row per day: customer counts, flows, CSAT/NPS, the contact centre, money, budgets, failures."""
    h, ledger = model.history[:model.day], model.ledger[:model.day]
    active = h[:, K.T_ACTIVE]
    with np.errstate(invalid="ignore", divide="ignore"):
        table = {name: h[:, col] for name, col in DAILY_TALLIES.items()}
        table["csat"] = 100.0 * h[:, K.T_SATISFIED] / active
        table["nps"] = 100.0 * (h[:, K.T_PROMOTERS] - h[:, K.T_DETRACTORS]) / active
        table["mean_attitude"] = h[:, K.T_ATTITUDE] / active
        table["mean_expectation"] = h[:, K.T_EXPECTATION] / active
    for j, name in enumerate(LEDGER):
        table[name] = ledger[:, j]
    table["profit"] = table["revenue"] - table["cost"]
    return pd.DataFrame({"day": np.arange(model.day), **table})


def run_kpis(model) -> dict[str, float]:
    """The contract's KPIs for one finished run."""
    h, ledger = model.history[:model.day], model.ledger[:model.day]
    total = h.sum(axis=0)
    last = h[-1]
    n0 = model.config.market.initial_customers
    contacts = h[:, K.T_CONTACTS]
    revenue, cost = ledger[:, 0].sum(), ledger[:, 1].sum()
    unhappy = h[:, K.T_UNHAPPY]
    seen = unhappy > 0
    complaint_share = np.mean(h[seen, K.T_UNHAPPY_COMPLAINED] / unhappy[seen]) if seen.any() else float("nan")
    return {
        "active_customers": float(last[K.T_ACTIVE]),
        "acquisitions": float(total[K.T_ACQUISITIONS]),
        "churned": float(total[K.T_CHURN]),
        "retention": _share(last[K.T_RETAINED], n0),
        "silent_churn_share": _share(total[K.T_SILENT_CHURN], total[K.T_CHURN]),
        "csat": 100.0 * _share(last[K.T_SATISFIED], last[K.T_ACTIVE]),
        "nps": nps_of(last[K.T_PROMOTERS], last[K.T_DETRACTORS], last[K.T_ACTIVE]),
        "nps_survey": nps_of(total[K.T_SURVEY_PROMOTERS], total[K.T_SURVEY_DETRACTORS], total[K.T_SURVEYED]),
        "csat_survey": 100.0 * _share(total[K.T_SURVEY_SATISFIED], total[K.T_SURVEYED]),
        "complaints": float(total[K.T_COMPLAINTS]),
        "complaint_share_unhappy": float(complaint_share),
        "repeat_contacts": float(total[K.T_REPEAT_CONTACTS]),
        "mean_service_wait_hours": _share(np.sum(ledger[:, 4] * contacts), contacts.sum()) if contacts.sum() else 0.0,
        "revenue": float(revenue),
        "cost": float(cost),
        "profit": float(revenue - cost),
        "wom_positive": float(total[K.T_WOM_POSITIVE]),
        "wom_negative": float(total[K.T_WOM_NEGATIVE]),
    }


def department_table(model) -> pd.DataFrame:
    """One row per department: final budget, encounters, failures, complaints caused, churn attributed."""
    total = model.history[:model.day].sum(axis=0)
    rows = [{
        "department": name,
        "budget": float(model.departments[k].budget),
        "encounters": float(total[K.T_ENCOUNTERS + k]),
        "failures": float(total[K.T_FAILURES + k]),
        "complaints_caused": float(total[K.T_COMPLAINTS_BY + k]),
        "churn_attributed": float(total[K.T_CHURN_BY + k]),
    } for k, name in enumerate(DEPARTMENTS)]
    rows.append({"department": "none", "budget": 0.0, "encounters": 0.0, "failures": 0.0,
                 "complaints_caused": 0.0, "churn_attributed": float(total[K.T_CHURN_BY + N_DEPT])})
    return pd.DataFrame(rows)
