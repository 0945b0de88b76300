"""Ownership models: presets of governance mechanisms, and the owner's budget policy.

An ownership model is nothing but a set of mechanism parameters (the
`[ownership]` section); no outcome is written down anywhere. A scenario that
sets `ownership.model` starts from that preset; keys set beside it override it.
"""

PRESETS: dict[str, dict] = {
    # A chief customer officer: reads the whole journey's operational signals,
    # moves money toward the departments whose failures hurt most, keeps the
    # promise at delivered quality, and costs an office.
    "cco_led": dict(objective="journey", review_every_days=30, listening_delay_days=14, listening_noise=0.2,
                    listening_source="operations", handoff_consistency=0.8,
                    promise_policy="delivered_plus_markup", promise_markup=0.0, overhead=0.01),
    # No owner: each department keeps its budget; context is lost between silos.
    "siloed": dict(objective="fixed", review_every_days=90, listening_delay_days=30, listening_noise=0.5,
                   listening_source="operations", handoff_consistency=0.5,
                   promise_policy="fixed", promise_markup=0.0, overhead=0.0),
}
