"""Finance: how the budget pool follows revenue."""


def plan_margin(initial_pool: float, overhead: float, reference_revenue: float) -> float | None:
    """The operating margin the day-0 plan makes: (revenue - budgets - overhead) / revenue; None with no revenue."""
    if reference_revenue <= 0:
        return None
    return 1.0 - initial_pool * (1.0 + overhead) / reference_revenue


def next_pool(finance, annual_revenue: float, initial_pool: float, overhead: float, reference_revenue: float) -> float:
    """Next period's budget pool (currency per year) from the last period's revenue at an annual rate.

    - margin: the pool that keeps the operating margin, revenue (1 - margin) / (1 + overhead), at
      `operating_margin` (by default the day-0 plan's); with no day-0 revenue and no margin set, the pool stays;
    - reinvestment: pool_0 + reinvestment_share (revenue - day-0 revenue).
    """
    if finance.budget_policy == "reinvestment":
        return max(0.0, initial_pool + finance.reinvestment_share * (annual_revenue - reference_revenue))
    margin = finance.operating_margin
    if margin is None:
        margin = plan_margin(initial_pool, overhead, reference_revenue)
        if margin is None:
            return initial_pool
    return max(0.0, annual_revenue * (1.0 - margin) / (1.0 + overhead))
