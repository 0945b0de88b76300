"""The scenario schema: every parameter of the model, its default, unit and range.

Units: money in currency per year (budgets) or per month (price); quality,
expectation and promise on a 0..1 scale of "how good the experience is";
rates are probabilities per customer per day unless named otherwise.
docs/MODEL.md gives each parameter's source.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_serializer, model_validator

from cxsim.domain import DEPARTMENTS
from cxsim.presets import OBJECTIVES, PRESETS

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
Kano = Literal["must_be", "one_dimensional", "attractive"]


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Network(Strict):
    degree: Annotated[int, Field(ge=2, le=100)] = 10
    rewire: Probability = 0.1

    @model_validator(mode="after")
    def _even_degree(self):
        if self.degree % 2:
            raise ValueError(f"degree must be even (a ring lattice links k/2 each side), got {self.degree}")
        return self


MIN_POPULATION = 3  # the fewest people whose small world has any links (a ring of degree >= 2)


class Market(Strict):
    population: Annotated[int, Field(ge=MIN_POPULATION)] = 100_000
    # people of the real market the simulated population stands for; None: the sample stands for itself. When set,
    # initial_customers and the departments' budgets are the company's, and counts and money are reported for it
    represents: Annotated[int, Field(ge=MIN_POPULATION)] | None = None
    initial_customers: Annotated[int, Field(ge=0)] = 40_000
    warm_up_days: Annotated[int, Field(ge=0, le=3650)] = 180
    price_per_month: NonNegative = 50.0
    value_dispersion: NonNegative = 0.5
    switching_cost: Probability = 0.3
    competitor_attractiveness: Probability = 0.6  # the competitor's quality on day 0, on the 0..1 scale
    competitor_price: Positive | None = None  # per month; None: the firm's price_per_month
    choice_sensitivity: NonNegative = 10.0  # logit slope of a switcher's choice in value (1 / value units)
    standard_drift: Annotated[float, Field(ge=-0.2, le=0.2)] = 0.0  # the industry standard's rise per year
    competitor_response: NonNegative = 0.0  # competitor quality gained per unit of market share it lost
    promise: Probability = 0.75
    advertising_rate: Probability = 0.0012  # calibrated: the base keeps its 40 % share (docs/MODEL.md §10)
    advertising_elasticity: NonNegative = 0.5
    promise_pull: NonNegative = 3.0
    wom_adoption: Probability = 0.008
    wom_deterrence: Probability = 0.05
    broadcast_reach: NonNegative = 50.0

    @field_validator("represents")
    @classmethod
    def _represents_the_sample(cls, represents, info):
        population = info.data.get("population")
        if represents is not None and population is not None and represents < population:
            raise ValueError(
                f"expected at least market.population ({population:,} people): the simulated people are a sample "
                f"of the {represents:,} people of the real market, so there cannot be more of them; got {represents}"
            )
        return represents

    @model_validator(mode="after")
    def _customers_fit(self):
        if self.represents is not None:
            if self.initial_customers > self.represents:
                raise ValueError(
                    f"initial_customers ({self.initial_customers:,}) must not exceed represents "
                    f"({self.represents:,}), the people of the real market whose customers they are"
                )
        elif self.initial_customers > self.population:
            raise ValueError(
                f"initial_customers ({self.initial_customers}) must not exceed population ({self.population})"
            )
        return self

    @model_serializer(mode="wrap")
    def _without_unset_represents(self, handler):
        """A market that stands for itself dumps as it did before `represents` existed (sweep run ids hash it)."""
        data = handler(self)
        if self.represents is None and isinstance(data, dict):
            data.pop("represents", None)
        return data

    @property
    def scale(self) -> float:
        """k: the people of the real market one simulated person stands for (1 without `represents`)."""
        return self.represents / self.population if self.represents is not None else 1.0


class Customers(Strict):
    loss_aversion: Annotated[float, Field(ge=1.0, le=5.0)] = 2.0
    performance_weight: NonNegative = 1.0
    tolerance: Annotated[float, Field(ge=0.0, le=0.5)] = 0.05
    expectation_learning: Probability = 0.1
    promise_learning: Probability = 0.05
    gain_learning: Probability = 0.1
    loss_learning: Probability = 0.3
    memory_weight: Probability = 0.5
    memory_halflife_days: Positive = 30.0
    incident_halflife_days: Positive = 45.0
    complaint_propensity: Probability = 0.25
    wom_propensity: Probability = 0.02
    wom_positive_slope: NonNegative = 1.0
    wom_negative_slope: NonNegative = 1.0
    broadcast_share: Probability = 0.3
    survey_rate: Probability = 0.01
    survey_response_rate: Probability = 0.1
    survey_self_selection: NonNegative = 2.0
    base_monthly_churn: Probability = 0.01
    churn_attitude: NonNegative = 2.5
    churn_incident: NonNegative = 0.8
    churn_switching: NonNegative = 2.0
    recovery_share: Probability = 0.5
    handoff_loss: NonNegative = 0.1
    wait_loss: NonNegative = 0.1
    contact_fatigue: NonNegative = 0.01
    rating_anchor: Annotated[float, Field(ge=0.0, le=10.0)] = 7.5
    rating_slope: NonNegative = 10.0
    price_sensitivity: NonNegative = 0.3  # value lost at a bill per unit of log(price / competitor's price)
    winback_memory_halflife_days: Positive = 180.0  # how fast a former customer forgets the firm
    winback_grudge: NonNegative = 0.2  # value a former customer holds against the firm per unit of failure harm
    network: Network = Network()


class Journey(Strict):
    usage_per_day: Probability = 0.2
    digital_per_day: Probability = 0.1
    orders_per_day: Probability = 0.033
    order_handoff_share: Probability = 0.3
    marketing_contacts_per_day: Probability = 0.07
    support_per_day: Probability = 0.015
    billing_cycle_days: Annotated[int, Field(ge=1, le=365)] = 30
    digital_purchase_share: Probability = 0.5
    wom_after_churn_days: Annotated[int, Field(ge=0)] = 30
    max_contact_attempts: Annotated[int, Field(ge=1, le=50)] = 4


class DepartmentSettings(Strict):
    """One department's settings (the Mesa agent they configure is `cxsim.departments.Department`)."""

    budget: NonNegative
    reference_budget: Positive
    failure_rate: Probability
    quality: Probability
    severity: Probability
    kano: Kano
    quality_elasticity: NonNegative = 0.3
    failure_elasticity: NonNegative = 0.7
    lag_days: Annotated[float, Field(ge=1.0)] = 30.0
    capacity_headroom: Positive = 2.0
    planning_days: Annotated[int, Field(ge=1)] = 90  # capacity is re-planned to the load this often
    hiring_lead_days: Annotated[int, Field(ge=0)] = 60  # planned capacity arrives this long after the plan


DEPARTMENT_DEFAULTS: dict[str, dict] = {
    "marketing": dict(
        budget=2.5e6, reference_budget=2.5e6, failure_rate=0.05, quality=0.70, severity=0.10, kano="attractive"
    ),
    "sales": dict(budget=1.5e6, reference_budget=1.5e6, failure_rate=0.03, quality=0.75, severity=0.30, kano="must_be"),
    "digital": dict(
        budget=1.5e6, reference_budget=1.5e6, failure_rate=0.02, quality=0.75, severity=0.30, kano="one_dimensional"
    ),
    "product": dict(
        budget=2.5e6, reference_budget=2.5e6, failure_rate=0.01, quality=0.75, severity=0.40, kano="one_dimensional"
    ),
    "fulfilment": dict(
        budget=1.5e6, reference_budget=1.5e6, failure_rate=0.03, quality=0.75, severity=0.50, kano="must_be"
    ),
    "billing": dict(
        budget=0.8e6, reference_budget=0.8e6, failure_rate=0.01, quality=0.75, severity=0.50, kano="must_be"
    ),
    "service": dict(
        budget=1.7e6,
        reference_budget=1.7e6,
        failure_rate=0.08,
        quality=0.70,
        severity=0.40,
        kano="one_dimensional",
        capacity_headroom=1.25,
    ),
}


class Departments(Strict):
    marketing: DepartmentSettings
    sales: DepartmentSettings
    digital: DepartmentSettings
    product: DepartmentSettings
    fulfilment: DepartmentSettings
    billing: DepartmentSettings
    service: DepartmentSettings

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data):
        """A file names only what it changes; each department keeps its own defaults for the rest."""
        if not isinstance(data, dict):
            return data
        return {
            name: {**DEPARTMENT_DEFAULTS[name], **data[name]}
            if isinstance(data.get(name), dict)
            else data.get(name, DEPARTMENT_DEFAULTS[name])
            for name in DEPARTMENTS
        } | {k: v for k, v in data.items() if k not in DEPARTMENTS}

    def __iter__(self):
        return iter((name, getattr(self, name)) for name in DEPARTMENTS)


class ContactCentre(Strict):
    contacts_per_agent_hour: Positive = 6.0
    hours_per_day: Annotated[float, Field(gt=0.0, le=24.0)] = 10.0
    patience_minutes: Positive = 15.0
    wait_tolerance_minutes: Positive = 3.0


REINVESTMENT_SHARE = 0.5


class Finance(Strict):
    budget_policy: Literal["margin", "reinvestment"] = "margin"
    operating_margin: Annotated[float, Field(ge=-1.0, lt=1.0)] | None = None  # None: the plan's margin on day 0
    reinvestment_share: Probability = REINVESTMENT_SHARE
    budget_period_days: Annotated[int, Field(ge=1)] = 90
    discount_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.10  # per year: npv_profit, customer_equity
    contribution_margin: Probability = 0.6  # share of a bill that is margin before fixed costs: customer_equity

    @model_validator(mode="after")
    def _one_policy(self):
        if self.budget_policy == "margin" and self.reinvestment_share != REINVESTMENT_SHARE:
            raise ValueError(
                "reinvestment_share applies only with budget_policy = 'reinvestment' (the default policy, "
                "'margin', keeps the operating margin at operating_margin)"
            )
        if self.budget_policy == "reinvestment" and self.operating_margin is not None:
            raise ValueError("operating_margin applies only with budget_policy = 'margin'")
        return self


class Ownership(Strict):
    model: Literal[tuple(PRESETS)] = "cco_led"
    settled: bool = True  # the owner ran the organisation through the warm-up (false: budgets start as entered)
    objective: Literal[OBJECTIVES] = "journey"
    review_every_days: Annotated[int, Field(ge=1)] = 30
    listening_delay_days: Annotated[int, Field(ge=0)] = 14
    listening_noise: NonNegative = 0.2
    listening_source: Literal["operations", "complaints", "churn", "surveys", "social"] = "operations"
    listening_scope: tuple[Literal[DEPARTMENTS], ...] = DEPARTMENTS
    reallocation_rate: Probability = 0.3
    reallocation_strength: NonNegative = 0.5
    cost_weight: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0  # need x (spend per unit of load / plan) ** -weight
    min_budget_fraction: Probability = 0.5
    handoff_consistency: Probability = 0.8
    promise_policy: Literal["fixed", "delivered_plus_markup"] = "delivered_plus_markup"
    promise_markup: Annotated[float, Field(ge=-0.5, le=0.5)] = 0.0
    overhead: Annotated[float, Field(ge=0.0, le=0.5)] = 0.01


# each event kind: the range of its size and the targets it takes (the first is the default)
EVENT_KINDS = {
    "outage": ((0.0, 1.0), ("all",) + DEPARTMENTS),  # a failure rate of at least `size`
    "budget_cut": ((0.0, 1.0), ("all",) + DEPARTMENTS),  # budget x (1 - size)
    "promise": ((-1.0, 1.0), ("all",)),  # promise x (1 + size)
    "price": ((-0.9, 1.0), ("firm",)),  # the firm's price per month x (1 + size)
    "competitor": ((-0.9, 1.0), ("quality", "price")),  # the competitor's quality + size, or its price x (1 + size)
}


class Event(Strict):
    day: Annotated[int, Field(ge=0)]
    kind: Literal[tuple(EVENT_KINDS)]
    target: str | None = None  # None: the kind's first target
    size: float
    duration: Annotated[int, Field(ge=1)] | None = None

    @field_validator("target")
    @classmethod
    def _target_fits_kind(cls, target, info):
        targets = EVENT_KINDS[info.data["kind"]][1] if "kind" in info.data else ()
        if target is not None and targets and target not in targets:
            raise ValueError(f"expected one of {', '.join(targets)} for a {info.data['kind']} event, got {target!r}")
        return target

    @model_validator(mode="after")
    def _size_fits_kind(self):
        lo, hi = EVENT_KINDS[self.kind][0]
        if not lo <= self.size <= hi:
            raise ValueError(f"size of a {self.kind} event must be in [{lo}, {hi}], got {self.size}")
        return self

    @property
    def aim(self) -> str:
        """The target, or the kind's default."""
        return self.target or EVENT_KINDS[self.kind][1][0]


class Lesson(Strict):
    """A teaching scenario's claim: against `control`, each KPI in `expect` comes out higher or lower.

    `notice` and `try_this` are the page's guide beside the run: what to watch, and what to change next.
    """

    control: str
    expect: dict[str, Literal["higher", "lower"]]
    notice: tuple[str, ...] = ()
    try_this: tuple[str, ...] = ()


class Scenario(Strict):
    name: str = "unnamed"
    description: str = ""
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 42
    days: Annotated[int, Field(ge=1, le=36500)] = 365
    replicates: Annotated[int, Field(ge=1, le=10_000)] = 10
    engine: Literal["numba", "agents"] = "numba"
    market: Market = Market()
    customers: Customers = Customers()
    journey: Journey = Journey()
    departments: Departments = Departments.model_validate({})
    contact_centre: ContactCentre = ContactCentre()
    finance: Finance = Finance()
    ownership: Ownership = Ownership()
    events: tuple[Event, ...] = ()
    lesson: Lesson | None = None
    # set by `scenario.sample_of` on the scenario a simulation runs: its counts and money are the sample's
    _sample: bool = PrivateAttr(default=False)

    @property
    def is_sample(self) -> bool:
        """Whether this is the simulated sample of a represented market (`scenario.sample_of`), not the company's."""
        return self._sample
