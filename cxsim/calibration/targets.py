"""What a calibration can be fitted to: the target names, their units, the error models (likelihoods) and
the model's side of each target, read off a finished run's daily tallies.

Every target is a per-run KPI of `cxsim.kpis` or a rate derived from the same tallies. Rates are per
customer and per period (per customer-month, per customer-year, shares of people or of responses), so a
calibration on a sample of 20,000 people speaks for a market of millions; counts and money are per run at
the simulated scale, multiplied by `represents / population` (the people the sample stands for) before
they meet the user's numbers. docs/CALIBRATION.md gives each likelihood's equation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from cxsim.kpis import DEFINITIONS, KPIS, SCALED

MONTH_DAYS = 365.0 / 12.0  # a calendar month on average: twelve make a year
Z90 = 1.6448536269514722  # the standard normal's 95 % point: a two-sided 90 % band
NLL_90 = 2.705543454095404 / 2.0  # half the chi-square 90 % point with 1 degree of freedom (profile likelihood)

# units: what a value means, which range the model can produce and whether it scales with the represented market
SHARE, PERCENT, NPS, COUNT, PER_YEAR, MONEY, AMOUNT, HOURS = (
    "share",
    "percent",
    "nps",
    "count",
    "per customer-year",
    "money",
    "money per customer-month",
    "hours",
)
RANGES = {
    SHARE: (0.0, 1.0),
    PERCENT: (0.0, 100.0),
    NPS: (-100.0, 100.0),
    COUNT: (0.0, math.inf),
    PER_YEAR: (0.0, math.inf),
    MONEY: (-math.inf, math.inf),
    AMOUNT: (-math.inf, math.inf),
    HOURS: (0.0, math.inf),
}
KINDS_OF = {  # the error models that fit each unit
    SHARE: ("rate", "normal"),
    PERCENT: ("rate", "normal"),
    NPS: ("survey_nps", "normal"),
    COUNT: ("count", "normal"),
    PER_YEAR: ("count", "normal"),
    MONEY: ("normal",),
    AMOUNT: ("normal",),
    HOURS: ("normal",),
}


@dataclass(frozen=True)
class Target:
    name: str
    unit: str
    meaning: str
    series: str | None = None  # how a month of it is formed: "stock" (the month's last day), "flow" (summed), "rate"
    low: float | None = None  # a narrower range than the unit's (revenue and cost are never negative)

    @property
    def range(self) -> tuple[float, float]:
        lo, hi = RANGES[self.unit]
        return (lo if self.low is None else self.low), hi

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS_OF[self.unit]

    @property
    def scaled(self) -> bool:
        """Whether it grows with the represented market: a KPI as `cxsim.kpis` declares it (counts and amounts),
        a derived count (contacts) too; a per-customer rate never."""
        return DEFINITIONS[self.name].kind in SCALED if self.name in DEFINITIONS else self.unit == COUNT


_KPI_UNITS = {
    "active_customers": (COUNT, "stock"),
    "acquisitions": (COUNT, "flow"),
    "winbacks": (COUNT, "flow"),
    "market_share": (SHARE, "stock"),
    "churned": (COUNT, "flow"),
    "retention": (SHARE, None),
    "silent_churn_share": (SHARE, None),
    "csat": (PERCENT, "stock"),
    "nps": (NPS, "stock"),
    "nps_survey": (NPS, "rate"),
    "csat_survey": (PERCENT, "rate"),
    "nps_run": (NPS, None),
    "csat_run": (PERCENT, None),
    "complaints": (COUNT, "flow"),
    "complaint_share_unhappy": (SHARE, None),
    "repeat_contacts": (COUNT, "flow"),
    "mean_service_wait_hours": (HOURS, None),
    "revenue": (MONEY, "flow"),
    "cost": (MONEY, "flow"),
    "profit": (MONEY, "flow"),
    "npv_profit": (MONEY, None),
    "customer_equity": (MONEY, None),
    "wom_positive": (COUNT, "flow"),
    "wom_negative": (COUNT, "flow"),
}
assert set(_KPI_UNITS) == set(KPIS), "every per-run KPI is a target"

TARGETS: dict[str, Target] = {
    name: Target(name, unit, KPIS[name], series, 0.0 if name in ("revenue", "cost") else None)
    for name, (unit, series) in _KPI_UNITS.items()
} | {
    t.name: t
    for t in (
        Target("monthly_churn", SHARE, "customers lost per active customer-month", "rate"),
        Target("complaints_per_customer_year", PER_YEAR, "complaints per active customer-year", "rate"),
        Target("contacts_per_customer_year", PER_YEAR, "contact-centre contacts per active customer-year", "rate"),
        Target("acquisitions_per_customer_year", PER_YEAR, "customers won per active customer-year", "rate"),
        Target("revenue_per_customer_month", AMOUNT, "revenue per active customer-month (ARPU)", "rate"),
        Target("contacts", COUNT, "contact-centre contacts over the run", "flow"),
    )
}


# --- the model's side: one run's value of each target, the exposure it was measured on, NPS's shares ---


def _div(num, den):
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _measures(h: np.ndarray, ledger: np.ndarray, population: int, n0: float) -> dict[str, tuple]:
    """Per target, over the days of `h` (a run, or one month of it): (value, denominator, promoter share,
    detractor share) for the targets a month can have; stocks at the last day."""
    from cxsim import kernel as K

    T = K.TALLY
    tot = h.sum(axis=0)
    last = h[-1]
    active_days = tot[T.active]
    months, years = active_days / MONTH_DAYS, active_days / 365.0
    revenue, cost = ledger[:, 0].sum(), ledger[:, 1].sum()
    out = {
        "active_customers": (last[T.active], None),
        "acquisitions": (tot[T.acquisitions], None),
        "winbacks": (tot[T.winbacks], None),
        "market_share": (last[T.active] / population, population),
        "churned": (tot[T.churn], None),
        "csat": (100.0 * _div(last[T.satisfied], last[T.active]), last[T.active]),
        "nps": (
            100.0 * _div(last[T.promoters] - last[T.detractors], last[T.active]),
            last[T.active],
            _div(last[T.promoters], last[T.active]),
            _div(last[T.detractors], last[T.active]),
        ),
        "nps_survey": (
            100.0 * _div(tot[T.survey_promoters] - tot[T.survey_detractors], tot[T.surveyed]),
            tot[T.surveyed],
            _div(tot[T.survey_promoters], tot[T.surveyed]),
            _div(tot[T.survey_detractors], tot[T.surveyed]),
        ),
        "csat_survey": (100.0 * _div(tot[T.survey_satisfied], tot[T.surveyed]), tot[T.surveyed]),
        "complaints": (tot[T.complaints], None),
        "repeat_contacts": (tot[T.repeat_contacts], None),
        "revenue": (revenue, None),
        "cost": (cost, None),
        "profit": (revenue - cost, None),
        "wom_positive": (tot[T.wom_positive], None),
        "wom_negative": (tot[T.wom_negative], None),
        "contacts": (tot[T.contacts], None),
        "monthly_churn": (_div(tot[T.churn], months), months),
        "complaints_per_customer_year": (_div(tot[T.complaints], years), years),
        "contacts_per_customer_year": (_div(tot[T.contacts], years), years),
        "acquisitions_per_customer_year": (_div(tot[T.acquisitions], years), years),
        "revenue_per_customer_month": (_div(revenue, months), months),
    }
    return {k: tuple(None if x is None else float(x) for x in v) for k, v in out.items()}


def month_bounds(days: int) -> list[tuple[int, int]]:
    """The whole calendar months (of 365/12 days) a run of `days` days covers, as [first, end) day ranges."""
    n = (int(days) * 12) // 365  # in whole numbers: 365 days are exactly 12 months
    return [(int(round(m * MONTH_DAYS)), int(round((m + 1) * MONTH_DAYS))) for m in range(n)]


def summarize(model, names: list[str], series: list[str]) -> dict:
    """One finished run's side of the targets `names` (scalars over the run) and `series` (per month):
    {"scalar": {name: [value, denominator, p, d]}, "monthly": {name: [[value, denominator, p, d], ...]}}."""
    from cxsim import kernel as K
    from cxsim import metrics

    h, ledger = model.history[: model.day], model.ledger[: model.day]
    m = model.config.market
    whole = _measures(h, ledger, m.population, m.initial_customers)
    kpis = metrics.sample_kpis(model)
    T, tot = K.TALLY, h.sum(axis=0)
    denominators = {
        "retention": m.initial_customers,
        "silent_churn_share": tot[T.churn],
        "complaint_share_unhappy": float(np.mean(h[:, T.unhappy])),
        "csat_run": tot[T.active],
        "nps_run": tot[T.active],
        "mean_service_wait_hours": None,
        "npv_profit": None,
        "customer_equity": None,
    }
    shares = {"nps_run": (_div(tot[T.promoters], tot[T.active]), _div(tot[T.detractors], tot[T.active]))}
    scalar = {}
    for name in names:
        if name in whole:  # from the tallies at the sample's scale (equal to run_kpis' values: a test holds it)
            row = list(whole[name])
        else:  # from the sample's KPIs: counts and money at the sample's scale too (they scale once, later)
            den = denominators[name]
            row = [kpis[name], None if den is None else float(den), *shares.get(name, ())]
        scalar[name] = _clean(row)
    monthly = {}
    if series:
        bounds = month_bounds(model.day)
        per_month = [_measures(h[a:b], ledger[a:b], m.population, m.initial_customers) for a, b in bounds]
        monthly = {name: [_clean(list(month[name])) for month in per_month] for name in series}
    return {"scalar": scalar, "monthly": monthly}


def _clean(row: list) -> list:
    return [None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x) for x in row]


# --- the error models ---


@dataclass(frozen=True)
class Observation:
    """One number of the user's with its error model: `value` in the target's unit; the kind's fields."""

    target: Target
    kind: str
    value: float
    denominator: float | None = None  # rate: trials the rate was measured on (else the simulated exposure)
    responses: float | None = None  # survey_nps: responses the NPS was measured on
    promoters: float | None = None  # survey_nps: the promoter share, when known (exact multinomial)
    sigma: float | None = None  # normal: the standard deviation
    dispersion: float | None = None  # count: the negative binomial's size k (None: Poisson)
    exposure: float | None = None  # count of a per-customer-year rate: the customer-years measured on

    def nll(self, sim: Simulated) -> float:
        """The negative log-likelihood of the observed value given the model's (replicate-mean) value."""
        x, mu = self.value, sim.value
        if mu is None or not math.isfinite(mu):
            return math.inf
        if self.kind == "normal":
            s = self.sigma
            return 0.5 * ((x - mu) / s) ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi)
        if self.kind == "rate":
            f = 100.0 if self.target.unit == PERCENT else 1.0
            n = self.denominator or sim.denominator
            if not n:
                return math.inf
            p = min(max(mu / f, 1e-12), 1 - 1e-12)
            k = x / f * n
            return -float(
                gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)
            )
        if self.kind == "count":
            k_obs, mean = self._counts(sim)
            mean = max(mean, 1e-12)
            if self.dispersion is None:  # Poisson
                return -float(k_obs * math.log(mean) - mean - gammaln(k_obs + 1))
            r = self.dispersion
            return -float(
                gammaln(k_obs + r)
                - gammaln(r)
                - gammaln(k_obs + 1)
                + r * math.log(r / (r + mean))
                + k_obs * math.log(mean / (r + mean))
            )
        if self.kind == "survey_nps":
            n = self.responses
            p, d = sim.promoters, sim.detractors
            if p is None or d is None:
                return math.inf
            if self.promoters is not None:  # exact multinomial on (promoters, passives, detractors)
                P = self.promoters * n
                D = P - x / 100.0 * n
                shares = np.clip([p, 1.0 - p - d, d], 1e-12, 1.0)
                counts = np.clip([P, n - P - D, D], 0.0, None)
                return -float(gammaln(n + 1) - gammaln(counts + 1).sum() + (counts * np.log(shares)).sum())
            s = self.nps_sd(p, d)
            return 0.5 * ((x - mu) / s) ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi)
        raise ValueError(self.kind)

    def _counts(self, sim: Simulated) -> tuple[float, float]:
        """count: (observed events, the model's expected events)."""
        if self.target.unit == PER_YEAR:
            e = self.exposure or sim.denominator or 0.0
            return self.value * e, sim.value * e
        return self.value, sim.value

    def nps_sd(self, p: float, d: float) -> float:
        """The standard deviation of an NPS measured on `responses` answers with promoter and detractor
        shares p, d: 100 sqrt((p + d - (p - d)^2) / n), the multinomial's."""
        return max(100.0 * math.sqrt(max(p + d - (p - d) ** 2, 1e-9) / self.responses), 1e-6)

    def sd(self, sim: Simulated) -> float:
        """The observation's standard error under its error model (for the verdict), in the target's unit."""
        if self.kind == "normal":
            return self.sigma
        if self.kind == "rate":
            f = 100.0 if self.target.unit == PERCENT else 1.0
            n = self.denominator or sim.denominator or 1.0
            p = min(max(self.value / f, 0.0), 1.0)
            p = p if 0 < p < 1 else min(max((sim.value or 0.0) / f, 1e-9), 1 - 1e-9)
            return f * math.sqrt(p * (1 - p) / n)
        if self.kind == "count":
            k, _ = self._counts(sim)
            var = max(k, 1.0) + (k * k / self.dispersion if self.dispersion else 0.0)
            scale = self.value / k if k else 1.0
            return math.sqrt(var) * scale
        if self.kind == "survey_nps":
            p = sim.promoters if sim.promoters is not None else 0.5
            d = sim.detractors if sim.detractors is not None else 0.2
            return self.nps_sd(p, d)
        raise ValueError(self.kind)


@dataclass(frozen=True)
class Simulated:
    """The model's side of one target (or one month of it): the replicate mean of its value (in the user's
    units: counts and money times the represented factor), of its denominator and of NPS's shares."""

    value: float | None
    denominator: float | None = None
    promoters: float | None = None
    detractors: float | None = None


def mean_of(rows: list[list], scale: float = 1.0) -> Simulated:
    """The replicate mean of [value, denominator, p, d] rows; the value times `scale`."""
    cols = list(zip(*[r + [None] * (4 - len(r)) for r in rows], strict=True)) if rows else [[None]] * 4

    def avg(col):
        v = [x for x in col if x is not None]
        return float(np.mean(v)) if v else None

    value = avg(cols[0])
    return Simulated(None if value is None else value * scale, avg(cols[1]), avg(cols[2]), avg(cols[3]))


def verdict(observed: float, sd: float, estimate: float | None, interval: tuple, nearest: float | None) -> str:
    """`fitted`: the simulated estimate lies within the observation's 90 % error band (observed +- 1.645 sd);
    `within error`: it does not, but the simulated 90 % interval reaches the band; `out of reach`: neither,
    with the nearest value the model reached in any trial (or particle): when that one lies within the band,
    the target is out of reach only together with the others."""
    if estimate is None:
        return "out of reach: the model gave no value"
    lo, hi = observed - Z90 * sd, observed + Z90 * sd
    if lo <= estimate <= hi:
        return "fitted"
    a, b = interval
    if a is not None and b is not None and a <= hi and b >= lo:
        return "within error"
    if nearest is not None and lo <= nearest <= hi:
        return f"out of reach together with the other targets (alone, a trial reached {nearest:.4g})"
    near = "none" if nearest is None else f"{nearest:.4g}"
    return f"out of reach: nearest the model reached {near}"


# --- a point's fit: the replicate means of its runs against the targets ---


def scale_of(target: Target, scale: float) -> float:
    return scale if target.scaled else 1.0


def simulated(targets, scale: float, runs: list[dict] | None) -> dict:
    """The model's side of every target from one point's runs: name -> Simulated (a scalar target) or
    name -> {month: Simulated} (a series: every month of the run the data has)."""
    out = {}
    for t in targets:
        f = scale_of(TARGETS[t.name], scale)
        if t.observation is not None:
            out[t.name] = mean_of([r["scalar"][t.name] for r in runs] if runs else [], f)
        else:
            out[t.name] = {m: mean_of([r["monthly"][t.name][m - 1] for r in runs] if runs else [], f) for m in t.months}
    return out


def nll_of(targets, sims: dict, months: str = "fitted") -> dict[str, float]:
    """Per target, its negative log-likelihood at the simulated values: a series summed over its fitted
    months (`months = "holdout"`: over its held-out months)."""
    out = {}
    for t in targets:
        if t.observation is not None:
            if months == "fitted":
                out[t.name] = t.observation.nll(sims[t.name])
            continue
        chosen = t.fitted_months if months == "fitted" else t.months[len(t.months) - t.holdout :]
        pairs = [(o, sims[t.name][m]) for m, o in zip(t.months, t.monthly, strict=True) if m in set(chosen)]
        if pairs:
            out[t.name] = float(sum(o.nll(s) for o, s in pairs))
    return out


def flat_values(sims: dict) -> dict[str, float | None]:
    """Simulated values as flat columns: `name` for a scalar, `name[m]` for month m of a series."""
    out = {}
    for name, s in sims.items():
        if isinstance(s, dict):
            for m, sm in s.items():
                out[f"{name}[{m}]"] = sm.value
        else:
            out[name] = s.value
    return out


def observed_values(targets) -> dict[str, float]:
    out = {}
    for t in targets:
        if t.observation is not None:
            out[t.name] = t.observation.value
        else:
            for m, o in zip(t.months, t.monthly, strict=True):
                out[f"{t.name}[{m}]"] = o.value
    return out
