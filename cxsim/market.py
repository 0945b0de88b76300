"""The market around the firm: the industry standard, the competitor, prices and a switcher's choice."""

import math
from typing import NamedTuple

from cxsim.kernel import choice_chance

CHEAPEST = 0.01  # a price below this share of the competitor's counts as this share (log price ratio stays finite)


class MarketDay(NamedTuple):
    """What the market offers today, beside the firm."""

    promise: float  # the firm's promise today
    competitor: float  # the competitor's quality, 0..1
    price: float  # the firm's price per month
    competitor_price: float
    price_value: float  # what the price is worth at a bill against the competitor's: -s ln(price / theirs)
    offer_value: float  # the firm's offer as a prospect sees it: w (promise - competitor) + price_value
    choice: float  # the chance a prospect the firm reached picks it
    expectation_shift: float  # today's rise of the standard, which every customer's expectation follows


class Market:
    """The competitor and the prices customers compare, day by day.

    The industry standard starts at the competitor's day-0 quality and rises by `standard_drift` a year; the
    competitor's quality is the standard, plus `competitor_response` times the market share it has lost to the
    firm since day 0, plus the steps of `competitor` events. A switcher the firm reached (a prospect, or a former
    customer) picks the firm with the logit chance 1 / (1 + exp(-beta (V - switching_cost))) (Guadagni & Little
    1983), V the offer's value; `kernel.winback_value` gives a former customer's V.
    """

    def __init__(self, scenario):
        m, c = scenario.market, scenario.customers
        self.config = m
        self.performance_weight = c.performance_weight
        self.price_sensitivity = c.price_sensitivity
        self.initial_share = m.initial_customers / m.population
        self.competitor_price = m.competitor_price if m.competitor_price is not None else m.price_per_month

    def standard(self, t: int) -> float:
        return self.config.competitor_attractiveness + self.config.standard_drift * t / 365.0

    def today(self, t: int, promise: float, share: float, steps=None) -> MarketDay:
        """Day t's market, for the firm's `promise` and yesterday's market `share`, with today's event `steps`
        (`model.Steps`; None: no events)."""
        m = self.config
        lost = max(0.0, share - self.initial_share)
        step, price_factor, theirs_factor = (
            (steps.competitor_quality, steps.price, steps.competitor_price) if steps else (0.0, 1.0, 1.0)
        )
        competitor = min(1.0, max(0.0, self.standard(t) + m.competitor_response * lost + step))
        price = m.price_per_month * price_factor
        theirs = self.competitor_price * theirs_factor
        price_value = -self.price_sensitivity * math.log(max(price / theirs, CHEAPEST) if theirs > 0 else 1.0)
        offer = self.performance_weight * (promise - competitor) + price_value
        return MarketDay(
            promise=promise,
            competitor=competitor,
            price=price,
            competitor_price=theirs,
            price_value=price_value,
            offer_value=offer,
            choice=choice_chance(offer, m.choice_sensitivity, m.switching_cost),
            expectation_shift=m.standard_drift / 365.0,
        )
