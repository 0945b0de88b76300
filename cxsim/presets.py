"""Ownership models as presets of governance mechanisms, and the owner's objectives.

An ownership model is nothing but a set of mechanism parameters (the
`[ownership]` section); no outcome is written down anywhere, and the model's
label is never read by the simulation. A scenario that sets `ownership.model`
starts from that preset; keys set beside it override it. docs/MODEL.md gives
the reasons for each preset's values. Like `cxsim.domain`, this module imports
nothing of the simulator.
"""

from cxsim.domain import DIGITAL, MARKETING, SALES

_OWNER = dict(
    review_every_days=30,
    listening_delay_days=14,
    listening_noise=0.2,
    listening_source="operations",
    reallocation_rate=0.3,
    cost_weight=0.0,
    promise_policy="delivered_plus_markup",
    promise_markup=0.0,
)

PRESETS: dict[str, dict] = {
    # A chief customer officer: reads the whole journey's operational data, funds the
    # departments whose failures hurt customers most per unit of budget, promises what
    # is delivered, integrates the customer record, and costs an office.
    "cco_led": dict(_OWNER, objective="journey", handoff_consistency=0.8, overhead=0.01),
    # The voice of the customer decides: the same journey objective, but heard through
    # complaints (fast, yet blind to the silent majority), with one shared customer view.
    "customer_led": dict(
        _OWNER,
        objective="journey",
        listening_source="complaints",
        listening_delay_days=7,
        handoff_consistency=0.85,
        overhead=0.01,
    ),
    # The CMO: money follows acquisition, marketing promises a little more than is delivered.
    "cmo_led": dict(_OWNER, objective="acquisition", handoff_consistency=0.65, promise_markup=0.1, overhead=0.0),
    # Sales: money follows conversion at the point of sale; sellers overpromise to close.
    "sales_led": dict(
        _OWNER,
        objective="conversion",
        listening_delay_days=7,
        handoff_consistency=0.6,
        promise_markup=0.15,
        overhead=0.0,
    ),
    # Service: money follows the complaints heard into the contact centre (speed of service),
    # treating failure demand where it lands, at a watched cost per unit of work; the promise is left as it is.
    "service_led": dict(
        _OWNER,
        objective="service",
        listening_delay_days=7,
        listening_source="complaints",
        cost_weight=0.5,
        handoff_consistency=0.7,
        promise_policy="fixed",
        overhead=0.0,
    ),
    # A council of department heads: a compromise between the journey's harm and each
    # department's own KPI, argued on unit cost, decided quarterly and cautiously; meetings cost a little.
    "shared": dict(
        _OWNER,
        objective="consensus",
        review_every_days=90,
        listening_delay_days=21,
        listening_noise=0.3,
        reallocation_rate=0.2,
        cost_weight=0.5,
        handoff_consistency=0.7,
        promise_markup=0.05,
        overhead=0.005,
    ),
    # No owner: each department argues for budget from its own failure rate against its
    # own standard, late and noisily; context is lost between silos; the promise is fixed.
    "siloed": dict(
        _OWNER,
        objective="own_kpi",
        review_every_days=90,
        listening_delay_days=30,
        listening_noise=0.5,
        handoff_consistency=0.5,
        promise_policy="fixed",
        overhead=0.0,
    ),
}

OBJECTIVES = ("journey", "acquisition", "conversion", "service", "own_kpi", "consensus", "fixed")
# the departments each growth objective funds
FUNNELS = {"acquisition": (MARKETING, SALES, DIGITAL), "conversion": (SALES, DIGITAL)}
