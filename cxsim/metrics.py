"""The KPIs of `cxsim.kpis` and the daily and per-department tables, read off the model's daily tallies and ledger."""

import numpy as np
import pandas as pd

from cxsim import kernel as K
from cxsim.domain import DEPARTMENTS, N_DEPT
from cxsim.kpis import IDENTIFIERS, scaled
from cxsim.model import LEDGER

# the daily time series: column -> tally
DAILY_TALLIES = {
    "active_customers": K.TALLY.active,
    "prospects": K.TALLY.prospects,
    "churned_customers": K.TALLY.churned,
    "acquisitions": K.TALLY.acquisitions,
    "winbacks": K.TALLY.winbacks,
    "churned": K.TALLY.churn,
    "complaints": K.TALLY.complaints,
    "contacts": K.TALLY.contacts,
    "wom_positive": K.TALLY.wom_positive,
    "wom_negative": K.TALLY.wom_negative,
    "survey_responses": K.TALLY.surveyed,
}


def for_market(figures, scale: float):
    """KPIs (a dict) or a table (a DataFrame) for the represented market: each count and amount (`cxsim.kpis`) times
    `scale`, the people one simulated person stands for; rates as they are. At scale 1, `figures` itself."""
    if scale == 1.0:
        return figures
    if isinstance(figures, pd.DataFrame):
        columns = [c for c in figures.columns if c not in IDENTIFIERS and scaled(c)]
        return figures.assign(**{c: figures[c] * scale for c in columns})
    return {name: value * scale if scaled(name) else value for name, value in figures.items()}


def _share(num, den):
    return float(num / den) if den > 0 else float("nan")


def nps_of(promoters, detractors, n):
    return 100.0 * _share(promoters - detractors, n)


def daily_table(model) -> pd.DataFrame:
    """One row per day: customer counts, flows, CSAT/NPS, the contact centre, money, budgets, failures."""
    h, ledger = model.history[: model.day], model.ledger[: model.day]
    active = h[:, K.TALLY.active]
    with np.errstate(invalid="ignore", divide="ignore"):
        table = {name: h[:, col] for name, col in DAILY_TALLIES.items()}
        table["market_share"] = active / model.config.market.population
        table["csat"] = 100.0 * h[:, K.TALLY.satisfied] / active
        table["nps"] = 100.0 * (h[:, K.TALLY.promoters] - h[:, K.TALLY.detractors]) / active
        table["mean_attitude"] = h[:, K.TALLY.attitude] / active
        table["mean_expectation"] = h[:, K.TALLY.expectation] / active
    for j, name in enumerate(LEDGER):
        table[name] = ledger[:, j]
    table["profit"] = table["revenue"] - table["cost"]
    return for_market(pd.DataFrame({"day": np.arange(model.day), **table}), model.config.market.scale)


def yearly_table(days: pd.DataFrame) -> pd.DataFrame:
    """Per year of a daily table, over its replicates: stocks as daily means, acquisitions and win-backs per
    replicate, monthly churn per active customer-month."""
    d = days.assign(year=days.day // 365 + 1)
    g = d.groupby("year")
    out = g[["active_customers", "market_share", "csat", "nps", "pool"]].mean()
    out["monthly_churn"] = 100.0 * 30.0 * g["churned"].sum() / g["active_customers"].sum()
    return out.join(g[["acquisitions", "winbacks"]].sum() / d.replicate.nunique())


def discounted(flows, annual_rate: float) -> float:
    """The present value of daily flows, day t's at its end ((t + 1) / 365 years from the start)."""
    years = np.arange(1, len(flows) + 1) / 365.0
    return float(np.sum(np.asarray(flows) * (1.0 + annual_rate) ** -years))


def customer_equity(model) -> float:
    """What the customers active now are worth: each one's discounted expected margin at its renewal hazard."""
    f, cycle = model.config.finance, model.config.journey.billing_cycle_days
    margin = model.revenue_of(1.0) * f.contribution_margin
    return K.customer_equity(model.population, model.params, margin, (1.0 + f.discount_rate) ** (cycle / 365.0) - 1.0)


# what a comparison shows at each horizon: stocks on the horizon's last day, flows summed up to it
HORIZON_KPIS = ("active_customers", "csat", "nps", "profit", "npv_profit")


def at_horizon(days: pd.DataFrame, horizon_days: int, annual_rate: float) -> dict[str, float]:
    """One run's HORIZON_KPIS after its first `horizon_days` days, from its daily table."""
    first = days.iloc[:horizon_days]
    last = first.iloc[-1]
    return {
        "active_customers": float(last["active_customers"]),
        "csat": float(last["csat"]),
        "nps": float(last["nps"]),
        "profit": float(first["profit"].sum()),
        "npv_profit": discounted(first["profit"].to_numpy(), annual_rate),
    }


def run_kpis(model) -> dict[str, float]:
    """The contract's KPIs for one finished run, for the represented market (`for_market`)."""
    return for_market(sample_kpis(model), model.config.market.scale)


def sample_kpis(model) -> dict[str, float]:
    """The contract's KPIs for one finished run, counts and money as the simulated sample has them."""
    h, ledger = model.history[: model.day], model.ledger[: model.day]
    total = h.sum(axis=0)
    last = h[-1]
    n0 = model.config.market.initial_customers
    contacts = h[:, K.TALLY.contacts]
    profit = ledger[:, 0] - ledger[:, 1]  # revenue - cost, daily
    revenue, cost = ledger[:, 0].sum(), ledger[:, 1].sum()
    unhappy = h[:, K.TALLY.unhappy]
    seen = unhappy > 0
    complaint_share = np.mean(h[seen, K.TALLY.unhappy_complained] / unhappy[seen]) if seen.any() else float("nan")
    return {
        "active_customers": float(last[K.TALLY.active]),
        "acquisitions": float(total[K.TALLY.acquisitions]),
        "winbacks": float(total[K.TALLY.winbacks]),
        "market_share": float(last[K.TALLY.active] / model.config.market.population),
        "churned": float(total[K.TALLY.churn]),
        "retention": _share(last[K.TALLY.retained], n0),
        "silent_churn_share": _share(total[K.TALLY.silent_churn], total[K.TALLY.churn]),
        "csat": 100.0 * _share(last[K.TALLY.satisfied], last[K.TALLY.active]),
        "nps": nps_of(last[K.TALLY.promoters], last[K.TALLY.detractors], last[K.TALLY.active]),
        "nps_survey": nps_of(
            total[K.TALLY.survey_promoters], total[K.TALLY.survey_detractors], total[K.TALLY.surveyed]
        ),
        "csat_survey": 100.0 * _share(total[K.TALLY.survey_satisfied], total[K.TALLY.surveyed]),
        "nps_run": nps_of(total[K.TALLY.promoters], total[K.TALLY.detractors], total[K.TALLY.active]),
        "csat_run": 100.0 * _share(total[K.TALLY.satisfied], total[K.TALLY.active]),
        "complaints": float(total[K.TALLY.complaints]),
        "complaint_share_unhappy": float(complaint_share),
        "repeat_contacts": float(total[K.TALLY.repeat_contacts]),
        "mean_service_wait_hours": _share(np.sum(ledger[:, 4] * contacts), contacts.sum()) if contacts.sum() else 0.0,
        "revenue": float(revenue),
        "cost": float(cost),
        "profit": float(revenue - cost),
        "npv_profit": discounted(profit, model.config.finance.discount_rate),
        "customer_equity": customer_equity(model),
        "wom_positive": float(total[K.TALLY.wom_positive]),
        "wom_negative": float(total[K.TALLY.wom_negative]),
    }


def department_table(model) -> pd.DataFrame:
    """One row per department: final budget, encounters, failures, complaints caused, churn attributed and the
    win-backs of customers who had left blaming it."""
    total = model.history[: model.day].sum(axis=0)
    rows = [
        {
            "department": name,
            "budget": float(model.departments[k].budget),
            "encounters": float(total[K.TALLY.encounters + k]),
            "failures": float(total[K.TALLY.failures + k]),
            "complaints_caused": float(total[K.TALLY.complaints_by + k]),
            "churn_attributed": float(total[K.TALLY.churn_by + k]),
            "winbacks_after": float(total[K.TALLY.winbacks_by + k]),
        }
        for k, name in enumerate(DEPARTMENTS)
    ]
    rows.append(
        {
            "department": "none",
            "budget": 0.0,
            "encounters": 0.0,
            "failures": 0.0,
            "complaints_caused": 0.0,
            "churn_attributed": float(total[K.TALLY.churn_by + N_DEPT]),
            "winbacks_after": float(total[K.TALLY.winbacks_by + N_DEPT]),
        }
    )
    return for_market(pd.DataFrame(rows), model.config.market.scale)
