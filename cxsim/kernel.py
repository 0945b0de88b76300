"""The daily customer transition, written once.

`customer_day` moves one customer through one day. The numba engine runs it in
a `prange` loop over fixed chunks of customers (`step_population`); the agents
engine calls its plain-Python form (`customer_day.py_func`) from each Mesa
`Customer.step()`. Customers read only yesterday's word of mouth of others
(delivered after each day by `spread_wom`) and write their own row, so the order
of stepping does not matter and both engines give bit-identical results. Every
draw is `rng.uniform(seat, slot)` of the customer-day's seat with a fixed slot
per decision, drawn in pairs where both are always needed.

Speed: the numba engine inlines `customer_day` into a per-chunk loop compiled
without reference counting (`_nrt=False`: no allocation there), so a customer
costs no function calls and no atomic operations.

Scales: quality, expectation and promise in 0..1; an encounter's value is its
disconfirmation after the zone of tolerance and loss aversion; cumulative
satisfaction `cs`, the peak and the last encounter share that scale. Attitude
a = (1 - w) * cs + w * (peak + last) / 2 is what churn, word of mouth, ratings
and surveys read.
"""

import math
import types
from collections import namedtuple
from typing import NamedTuple

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from cxsim.domain import (
    ACTIVE,
    BILLING,
    CHURNED,
    DEPARTMENTS,
    DIGITAL,
    FULFILMENT,
    MARKETING,
    N_DEPT,
    NO_DEPT,
    PRODUCT,
    PROSPECT,
    SALES,
    SERVICE,
)
from cxsim.rng import seat, uniform, uniform2

CHUNK = 4096  # customers per chunk: partial sums per chunk make totals independent of the thread count
PARALLEL_CHUNKS = 4  # fewer chunks than this are stepped on one thread


class Params(NamedTuple):
    """The customers' parameters, as the kernel reads them (`model.kernel_params` fills them from a scenario).

    All floats, so that one compiled specialisation serves every scenario. Passed by value: values the
    compiler keeps at hand, where array reads would be repeated after every store to the population.
    """

    loss_aversion: float
    expectation_learning: float
    promise_learning: float  # how far a campaign pulls the expectation toward today's promise
    gain_learning: float
    loss_learning: float
    memory_weight: float  # weight of peak-end memory in the attitude
    memory_decay: float  # daily decay of the remembered peak
    incident_decay: float  # daily decay of recent failures (and of the blame's weight)
    voice_factor: float  # exit vs voice: cheap exit, less voice
    wom_positive_slope: float
    wom_negative_slope: float
    broadcast_share: float  # share of word of mouth posted to everyone instead of told to followers
    survey_rate: float
    survey_response: float
    survey_self_selection: float
    churn_base: float  # renewal hazard at a neutral attitude, per billing cycle
    churn_attitude: float
    churn_incident: float
    recovery_share: float  # share of a complained failure's harm a resolution repairs
    handoff_loss: float
    contact_fatigue: float
    rating_anchor: float
    rating_slope: float
    usage_rate: float  # touchpoints per active customer per day: product use,
    digital_rate: float  # digital visits,
    order_rate: float  # orders,
    marketing_rate: float  # campaigns,
    support_rate: float  # routine questions to service
    billing_cycle: float  # days
    digital_purchase_share: float
    wom_after_churn: float  # days a former customer still talks
    max_attempts: float  # contacts on a complaint before the customer gives up
    wom_adoption: float
    wom_deterrence: float
    initial_customers: float  # rows below this are the day-0 customers
    performance_weight: float
    order_handoff_share: float  # share of orders that cross a handoff into fulfilment
    choice_sensitivity: float  # logit slope of a switcher's choice, per unit of value
    switching_cost: float  # the value a switcher needs before it moves
    winback_memory_decay: float  # daily decay of a former customer's memory of the firm
    winback_grudge: float  # value held against the firm per unit of the harm that made a customer leave


class Today(NamedTuple):
    """Today's organisation-wide state, set by the model before the customers step (`CXModel.today`)."""

    promise: float
    wait_value: float  # what waiting in the contact centre is worth (negative beyond the tolerated wait)
    abandon: float  # chance a contact abandons the queue
    handoff: float  # chance a handoff keeps the customer's context
    stay: float  # chance a prospect is pulled neither by advertising nor by broadcasts: (1 - p_ad) exp(-q E+)
    undeterred: float  # chance broadcasts do not deter a prospect: exp(-d E-)
    competitor: float  # the competitor's quality
    price_value: float  # what today's price is worth at a bill, against the competitor's
    offer_value: float  # the firm's offer as a prospect sees it (`market.Market`)
    choice: float  # the chance a prospect the firm reached picks it
    expectation_shift: float  # today's rise of the industry standard, which expectations follow


class Mind(NamedTuple):
    """An active customer's working state during its day, read from and written back to its row."""

    expectation: float
    satisfaction: float  # cumulative satisfaction
    peak: float
    last: float
    incident: float
    blame: int  # the department that hurt most (NO_DEPT: none)
    blame_weight: float
    complaint: int  # the department of the open complaint (NO_DEPT: none)
    attempts: int
    complained: int
    events: int  # bits of EVENT set today


class Traits(NamedTuple):
    """What a customer brings to every encounter."""

    tolerance: float  # half-width of the zone of tolerance
    voice: float  # propensity to complain about a failure


def layout(name: str, blocks: tuple) -> tuple[tuple, int]:
    """Indices named once: each block is a name (one index) or (name, width) (a run of indices, e.g. one per
    department). Returns a namedtuple of each block's first index, and the number of indices."""
    names, starts, end = [], [], 0
    for block in blocks:
        label, width = (block, 1) if isinstance(block, str) else block
        names.append(label)
        starts.append(end)
        end += width
    return namedtuple(name, names)(*starts), end


def expand(blocks: tuple) -> tuple[str, ...]:
    """The name of every index of a layout: a per-department block gives `<block>_<department>`."""
    out = []
    for block in blocks:
        label, width = (block, 1) if isinstance(block, str) else block
        if width == 1:
            out.append(label)
        else:
            out += [f"{label}_{d}" for d in (*DEPARTMENTS, "none")[:width]]
    return tuple(out)


# --- the department table (D[k, COL.x]), refreshed daily by the departments
COL, N_DCOLS = layout("DepartmentColumn", ("quality", "failure", "severity", "gain_weight", "loss_weight"))

# --- what happened to a customer today: bits of Population.events
EVENT_BLOCKS = (
    ("met", N_DEPT),
    ("failed", N_DEPT),
    "acquired",
    "won_back",
    "churned",
    "new_complaint",
    "contact",
    "repeat_contact",
    "abandoned",
    "gave_up",
    "resolved",
    "handoff_lost",
    "lost_sale",
    "wom_positive",
    "wom_negative",
    "broadcast",
    "surveyed",
    "billed",
)
EVENT, N_EVENTS = layout("Event", EVENT_BLOCKS)

# --- per-day tallies (columns of the partial sums and of the model's history)
TALLY_BLOCKS = (
    "prospects",
    "active",
    "churned",
    "acquisitions",
    "churn",
    "silent_churn",
    "complaints",
    "contacts",
    "repeat_contacts",
    "abandoned",
    "gave_up",
    "resolved",
    "handoff_lost",
    "lost_sales",
    "wom_positive",
    "wom_negative",
    "broadcast_positive",
    "broadcast_negative",
    "surveyed",
    "survey_promoters",
    "survey_detractors",
    "survey_satisfied",
    "satisfied",
    "promoters",
    "detractors",
    "billed_value",
    "attitude",
    "expectation",
    "retained",
    "unhappy",
    "unhappy_complained",
    ("encounters", N_DEPT),
    ("failures", N_DEPT),
    ("churn_by", N_DEPT + 1),  # + N_DEPT: churn with no failure to blame
    ("complaints_by", N_DEPT),
    # what the owner hears through surveys and social media: each surveyed detractor and each negative
    # post, by the department the customer blames (+ N_DEPT: none)
    ("survey_detractors_by", N_DEPT + 1),
    ("posts_negative_by", N_DEPT + 1),
    "winbacks",
    ("winbacks_by", N_DEPT + 1),  # by the department blamed at the exit (+ N_DEPT: none)
)
TALLY, N_TALLIES = layout("Tally", TALLY_BLOCKS)
TALLY_NAMES = expand(TALLY_BLOCKS)

# --- draw slots: slots 2w and 2w + 1 share one random word (rng.uniform2), so the draws every
# active customer makes each day come in pairs: (support, usage), (digital, order), (marketing, talk),
# (survey, broadcast); the rest are drawn only when needed
(
    S_SUPPORT,
    S_USAGE,
    S_DIGITAL,
    S_ORDER,
    S_MARKETING,
    S_TALK,
    S_SURVEY,
    S_BROADCAST,
    S_PURCHASE_AWARE,
    S_PURCHASE_CHANNEL,
    S_CONTACT_FAIL,
    S_CONTACT_HANDOFF,
    S_SUPPORT_ABANDON,
    S_SUPPORT_FAIL,
    S_ORDER_FAIL,
    S_ORDER_HANDOFF,
    S_BILLING_FAIL,
    S_RENEW,
    S_PURCHASE_FAIL,
    S_CONTACT_ABANDON,
    S_USAGE_FAIL,
    S_DIGITAL_FAIL,
    S_MARKETING_FAIL,
    S_VOICE,
) = range(24)
# the first slot of every pair drawn with uniform2 is even
assert all(
    slot % 2 == 0
    for slot in (
        S_SUPPORT,
        S_DIGITAL,
        S_MARKETING,
        S_SURVEY,
        S_PURCHASE_AWARE,
        S_CONTACT_FAIL,
        S_SUPPORT_ABANDON,
        S_ORDER_FAIL,
        S_BILLING_FAIL,
    )
)
# voice draws use S_VOICE + department index, so S_VOICE must stay last


@njit(cache=True, _nrt=False)
def encounter_value(x, e, tolerance, gain_weight, loss_weight, competitor, P):
    """Experienced value of quality x: performance against the competitor's quality plus disconfirmation.

    u = performance_weight * (x - competitor) + (x - e beyond the zone of tolerance);
    gains count `gain_weight`, losses `loss_weight * loss_aversion` (Kano and prospect theory).
    """
    d = x - e
    if d > tolerance:
        d -= tolerance
    elif d < -tolerance:
        d += tolerance
    else:
        d = 0.0
    u = P.performance_weight * (x - competitor) + d
    return gain_weight * u if u >= 0.0 else loss_weight * P.loss_aversion * u


@njit(cache=True, _nrt=False)
def remember(v, cs, peak, P):
    """Fold an encounter's value into cumulative satisfaction (losses learned faster) and the peak."""
    eta = P.loss_learning if v < cs else P.gain_learning
    cs += eta * (v - cs)
    if abs(v) >= abs(peak):
        peak = v
    return cs, peak


@njit(cache=True, _nrt=False)
def attitude(cs, peak, last, P):
    """What a customer thinks of the firm: cumulative satisfaction blended with peak-end memory."""
    w = P.memory_weight
    return (1.0 - w) * cs + w * 0.5 * (peak + last)


@njit(cache=True, _nrt=False)
def renewal_hazard(a, incident, P):
    """The hazard of leaving at a bill: it rises as the attitude falls and with recent incidents."""
    return P.churn_base * math.exp(-P.churn_attitude * a + P.churn_incident * incident)


@njit(cache=True, _nrt=False)
def choice_chance(value, sensitivity, switching_cost):
    """The chance a switcher picks an offer of this value over staying where it is: a binary logit."""
    z = sensitivity * (value - switching_cost)
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0.0 else math.exp(z) / (1.0 + math.exp(z))


@njit(cache=True, _nrt=False)
def winback_value(i, remembered, pop, P, G):
    """A former customer's value of the firm's offer: the attitude it left with, less a grudge for the harm that
    made it leave, weighted by how much it still remembers; the rest is the offer a prospect sees."""
    a = attitude(np.float64(pop.satisfaction[i]), np.float64(pop.peak[i]), np.float64(pop.last[i]), P)
    memory = a - P.winback_grudge * np.float64(pop.blame_weight[i])
    return remembered * memory + (1.0 - remembered) * G.offer_value


@njit(cache=True, _nrt=False)
def join(i, remembered, G, pop):
    """Customer i becomes active: a prospect starts at the promise, a former customer from what it remembers (and
    it still blames the department it left over, until a new failure replaces it)."""
    pop.state[i] = ACTIVE
    pop.expectation[i] = remembered * np.float64(pop.expectation[i]) + (1.0 - remembered) * G.promise
    pop.satisfaction[i] = remembered * np.float64(pop.satisfaction[i])
    pop.peak[i] = remembered * np.float64(pop.peak[i])
    pop.last[i] = remembered * np.float64(pop.last[i])
    pop.incident[i] = 0.0
    pop.blame_weight[i] = 0.0
    pop.complaint[i] = NO_DEPT
    pop.attempts[i] = 0
    pop.complained[i] = 0
    pop.tenure[i] = 0


@njit(cache=True, _nrt=False)
def rating(a, P):
    """Likelihood to recommend on the 0..10 survey scale."""
    r = math.floor(P.rating_anchor + P.rating_slope * a + 0.5)
    return min(10.0, max(0.0, r))


@njit(cache=True, _nrt=False)
def experienced(m, expectation, satisfaction, peak, last, events):
    """The working state after an experience that moves the expectation, memories and events only (not the
    incidents, blame or complaint)."""
    return Mind(
        expectation=expectation,
        satisfaction=satisfaction,
        peak=peak,
        last=last,
        incident=m.incident,
        blame=m.blame,
        blame_weight=m.blame_weight,
        complaint=m.complaint,
        attempts=m.attempts,
        complained=m.complained,
        events=events,
    )


@njit(cache=True, _nrt=False)
def with_events(m, bits):
    """The working state with more event bits set."""
    return experienced(m, m.expectation, m.satisfaction, m.peak, m.last, m.events | bits)


@njit(cache=True, _nrt=False, inline="always")
def touch(s, k, u_fail, x_extra, m, traits, P, D, G):
    """A customer (seat `s`, working state `m`) meets department k: a failure if `u_fail < D[k, COL.failure]`,
    else its quality; returns the state updated.

    A failure may open a complaint (voice), which lands in service's queue from tomorrow on.
    """
    failed = u_fail < D[k, COL.failure]
    x = D[k, COL.quality] - (D[k, COL.severity] if failed else 0.0)
    gain, loss = D[k, COL.gain_weight], D[k, COL.loss_weight]
    v = encounter_value(x, m.expectation, traits.tolerance, gain, loss, G.competitor, P) + x_extra
    cs, peak = remember(v, m.satisfaction, m.peak, P)
    incident, blame, blame_weight = m.incident, m.blame, m.blame_weight
    complaint, attempts, complained = m.complaint, m.attempts, m.complained
    events = m.events | (1 << (EVENT.met + k))
    if failed:
        events |= 1 << (EVENT.failed + k)
        incident += 1.0
        if -v >= blame_weight:
            blame, blame_weight = k, -v
        if complaint == NO_DEPT and uniform(s, S_VOICE + k) < traits.voice * 2.0 * D[k, COL.severity]:
            complaint, attempts, complained = k, 0, 1
            events |= 1 << EVENT.new_complaint
    return Mind(
        expectation=m.expectation + P.expectation_learning * (x - m.expectation),
        satisfaction=cs,
        peak=peak,
        last=v,
        incident=incident,
        blame=blame,
        blame_weight=blame_weight,
        complaint=complaint,
        attempts=attempts,
        complained=complained,
        events=events,
    )


@njit(cache=True, _nrt=False, inline="always")
def follow_up(s, m, P, D, G):
    """One contact a day on an open complaint: it waits, then is abandoned, fails, loses context or is resolved."""
    events = m.events | (1 << EVENT.contact) | ((1 << EVENT.repeat_contact) if m.attempts > 0 else 0)
    attempts = m.attempts + 1
    incident, complaint = m.incident, m.complaint
    cs, peak = remember(G.wait_value, m.satisfaction, m.peak, P)
    last = G.wait_value
    if uniform(s, S_CONTACT_ABANDON) < G.abandon:
        events |= 1 << EVENT.abandoned
    else:
        events |= 1 << (EVENT.met + SERVICE)
        u_fail, u_handoff = uniform2(s, S_CONTACT_FAIL)
        if u_fail < D[SERVICE, COL.failure]:
            events |= 1 << (EVENT.failed + SERVICE)
            incident += 1.0
            loss = -P.loss_aversion * D[SERVICE, COL.severity]
            last += loss
            cs, peak = remember(loss, cs, peak, P)
        elif u_handoff >= G.handoff:
            events |= 1 << EVENT.handoff_lost
            last -= P.handoff_loss
            cs, peak = remember(-P.handoff_loss, cs, peak, P)
        else:
            # partial recovery: the resolution repairs a share of the complained failure's harm in memory
            # (less for every extra contact it took); the incident stays in the churn hazard
            harm = P.loss_aversion * D[complaint, COL.loss_weight] * D[complaint, COL.severity]
            repair = P.recovery_share * harm / attempts
            cs += P.loss_learning * repair
            if peak < 0.0:
                peak = min(0.0, peak + repair)
            last += repair
            events |= 1 << EVENT.resolved
            complaint = NO_DEPT
    if complaint != NO_DEPT and attempts >= P.max_attempts:
        events |= 1 << EVENT.gave_up
        incident += 1.0
        complaint = NO_DEPT
    return Mind(
        expectation=m.expectation,
        satisfaction=cs,
        peak=peak,
        last=last,
        incident=incident,
        blame=m.blame,
        blame_weight=m.blame_weight,
        complaint=complaint,
        attempts=attempts,
        complained=m.complained,
        events=events,
    )


@njit(cache=True, _nrt=False, inline="always")
def routine_contact(s, m, traits, P, D, G):
    """A routine question to service: the wait is part of the service experience."""
    m = with_events(m, 1 << EVENT.contact)
    u_abandon, u_fail = uniform2(s, S_SUPPORT_ABANDON)
    if u_abandon < G.abandon:
        cs, peak = remember(G.wait_value, m.satisfaction, m.peak, P)
        return experienced(m, m.expectation, cs, peak, G.wait_value, m.events | (1 << EVENT.abandoned))
    return touch(s, SERVICE, u_fail, G.wait_value, m, traits, P, D, G)


@njit(cache=True, _nrt=False, inline="always")
def customer_day(i, day, key, P, D, G, pop):
    """Move customer i through day `day`: acquisition or win-back, complaints, journey touchpoints, renewal, word of
    mouth.

    P: Params, D: the department table, G: Today, pop: the Population.
    """
    s = np.uint64(seat(key, i, day))  # typed uint64 in the plain-Python form too
    state = pop.state[i]
    heard_positive, heard_negative = pop.heard_positive[i], pop.heard_negative[i]
    pop.heard_positive[i] = 0  # cleared for today's messages
    pop.heard_negative[i] = 0
    bits = 0
    if state != ACTIVE:
        # reached by advertising or by word of mouth from yesterday (Bass in agent form: p + q per message); a
        # prospect picks the firm at today's logit choice, a former customer at its own (a win-back)
        stay = G.stay
        undeterred = G.undeterred
        for _ in range(heard_positive):
            stay *= 1.0 - P.wom_adoption
        for _ in range(heard_negative):
            undeterred *= 1.0 - P.wom_deterrence
        reach = (1.0 - stay) * undeterred
        u_aware, u_channel = uniform2(s, S_PURCHASE_AWARE)
        if u_aware < reach:
            remembered = 0.0  # how much of its memory of the firm a former customer keeps
            chance = G.choice
            if state == CHURNED:
                remembered = P.winback_memory_decay ** np.float64(pop.tenure[i])
                chance = choice_chance(winback_value(i, remembered, pop, P, G), P.choice_sensitivity, P.switching_cost)
            if u_aware < reach * chance:
                k = DIGITAL if u_channel < P.digital_purchase_share else SALES
                bits |= 1 << (EVENT.met + k)
                if uniform(s, S_PURCHASE_FAIL) < D[k, COL.failure]:
                    bits |= (1 << (EVENT.failed + k)) | (1 << EVENT.lost_sale)
                else:
                    bits |= (1 << EVENT.acquired) | ((1 << EVENT.won_back) if state == CHURNED else 0)
                    join(i, remembered, G, pop)
                    pop.wom[i] = 0
                    pop.events[i] = bits
                    return
        if state == PROSPECT:
            pop.wom[i] = 0
            pop.events[i] = bits
            return

    # float64 working values (numba's float() keeps float32, and Mind's field types are fixed)
    cs = np.float64(pop.satisfaction[i])
    peak = np.float64(pop.peak[i])
    last = np.float64(pop.last[i])
    tenure = pop.tenure[i] + 1
    talk = False
    u_talk = 1.0
    if state == ACTIVE:
        traits = Traits(tolerance=float(pop.tolerance[i]), voice=float(pop.complaint_propensity[i]) * P.voice_factor)
        m = Mind(
            expectation=np.float64(pop.expectation[i]) + G.expectation_shift,
            satisfaction=cs,
            peak=peak * P.memory_decay,
            last=last,
            incident=float(pop.incident[i]) * P.incident_decay,
            blame=np.int64(pop.blame[i]),
            blame_weight=float(pop.blame_weight[i]) * P.incident_decay,
            complaint=np.int64(pop.complaint[i]),
            attempts=np.int64(pop.attempts[i]),
            complained=np.int64(pop.complained[i]),
            events=bits,
        )
        u_support, u_usage = uniform2(s, S_SUPPORT)
        u_digital, u_order = uniform2(s, S_DIGITAL)
        u_marketing, u_talk = uniform2(s, S_MARKETING)

        if m.complaint != NO_DEPT:
            m = follow_up(s, m, P, D, G)
        elif u_support < P.support_rate:
            m = routine_contact(s, m, traits, P, D, G)

        # journey touchpoints of the day
        if u_usage < P.usage_rate:
            m = touch(s, PRODUCT, uniform(s, S_USAGE_FAIL), 0.0, m, traits, P, D, G)
        if u_digital < P.digital_rate:
            m = touch(s, DIGITAL, uniform(s, S_DIGITAL_FAIL), 0.0, m, traits, P, D, G)
        if u_order < P.order_rate:
            # an order may cross a handoff into fulfilment; lost context costs the customer effort
            u_fail, u_handoff = uniform2(s, S_ORDER_FAIL)
            lost = u_handoff < P.order_handoff_share * (1.0 - G.handoff)
            m = touch(s, FULFILMENT, u_fail, -P.handoff_loss if lost else 0.0, m, traits, P, D, G)
            if lost:
                m = with_events(m, 1 << EVENT.handoff_lost)
        if u_marketing < P.marketing_rate:
            m = touch(s, MARKETING, uniform(s, S_MARKETING_FAIL), -P.contact_fatigue, m, traits, P, D, G)
            # the campaign restates the promise
            e = m.expectation + P.promise_learning * (G.promise - m.expectation)
            m = experienced(m, e, m.satisfaction, m.peak, m.last, m.events)

        if tenure % int(P.billing_cycle) == 0:
            # the bill, then the renewal decision: a hazard in attitude and recent incidents
            u_fail, u_renew = uniform2(s, S_BILLING_FAIL)
            # the bill: its quality, and the price against the competitor's (perceived value, ACSI)
            m = with_events(touch(s, BILLING, u_fail, G.price_value, m, traits, P, D, G), 1 << EVENT.billed)
            a = attitude(m.satisfaction, m.peak, m.last, P)
            if u_renew < 1.0 - math.exp(-renewal_hazard(a, m.incident, P)):
                m = with_events(m, 1 << EVENT.churned)
                state = CHURNED
                tenure = 0
        cs, peak, last, bits = m.satisfaction, m.peak, m.last, m.events
        pop.expectation[i] = m.expectation
        pop.incident[i] = m.incident
        # a churner with no failure worth the name to blame is churn with no department to blame
        pop.blame[i] = NO_DEPT if state == CHURNED and m.blame_weight < 0.01 else m.blame
        pop.blame_weight[i] = m.blame_weight
        pop.complaint[i] = m.complaint
        pop.attempts[i] = m.attempts
        pop.complained[i] = m.complained
        pop.state[i] = state
        talk = True
    elif tenure <= P.wom_after_churn:
        talk = True
        u_talk = uniform(s, S_TALK)

    # word of mouth: more likely the further from neutral, with its own slope on each side
    a = attitude(cs, peak, last, P)
    wom = 0
    if talk:
        u_survey, u_broadcast = uniform2(s, S_SURVEY)
        slope = P.wom_positive_slope * a if a >= 0.0 else -P.wom_negative_slope * a
        if u_talk < float(pop.wom_propensity[i]) * (1.0 + slope):
            bits |= 1 << (EVENT.wom_positive if a >= 0.0 else EVENT.wom_negative)
            if u_broadcast < P.broadcast_share:
                bits |= 1 << EVENT.broadcast
            else:
                wom = 1 if a >= 0.0 else -1
        if state == ACTIVE and u_survey < P.survey_rate * min(
            1.0, P.survey_response * (1.0 + P.survey_self_selection * abs(a))
        ):
            bits |= 1 << EVENT.surveyed
    pop.satisfaction[i] = cs
    pop.peak[i] = peak
    pop.last[i] = last
    pop.tenure[i] = tenure
    pop.wom[i] = wom
    pop.events[i] = bits


# event bits that are counted straight into a tally column
COUNTED = (
    tuple(
        (getattr(EVENT, bit), getattr(TALLY, column))
        for bit, column in (
            ("acquired", "acquisitions"),
            ("won_back", "winbacks"),
            ("churned", "churn"),
            ("new_complaint", "complaints"),
            ("contact", "contacts"),
            ("repeat_contact", "repeat_contacts"),
            ("abandoned", "abandoned"),
            ("gave_up", "gave_up"),
            ("resolved", "resolved"),
            ("handoff_lost", "handoff_lost"),
            ("lost_sale", "lost_sales"),
            ("wom_positive", "wom_positive"),
            ("wom_negative", "wom_negative"),
        )
    )
    + tuple((EVENT.met + k, TALLY.encounters + k) for k in range(N_DEPT))
    + tuple((EVENT.failed + k, TALLY.failures + k) for k in range(N_DEPT))
)
COUNTED_MASK = sum(1 << bit for bit, _ in COUNTED)
BIT_COLUMN = np.array([dict(COUNTED).get(bit, 0) for bit in range(N_EVENTS)])  # the tally column of each counted bit
# events that need more than a count: who is blamed or complained about, the sign of a broadcast, the bill
RARE = (
    (1 << EVENT.new_complaint)
    | (1 << EVENT.churned)
    | (1 << EVENT.won_back)
    | (1 << EVENT.broadcast)
    | (1 << EVENT.billed)
)


@njit(cache=True, _nrt=False)
def blamed(pop, i):
    """The department customer i blames, N_DEPT for none: the offset in a per-department tally block."""
    return N_DEPT if pop.blame[i] == NO_DEPT else pop.blame[i]


@njit(cache=True, _nrt=False)
def tally_chunk(lo, hi, pop, P, row):
    """The tallies of customers lo..hi-1 (already stepped) into `row`, in customer order.

    Counts are kept in local integers and written once; a customer costs a visit to
    each of its (few) set event bits, and an attitude if it is active.
    """
    row[:] = 0.0
    prospects = churned = active = silent = broadcast_positive = broadcast_negative = 0
    satisfied = unhappy = unhappy_complained = promoters = detractors = retained = 0
    surveyed = survey_promoters = survey_detractors = survey_satisfied = 0
    billed = attitudes = expectations = 0.0
    for i in range(lo, hi):
        bits = pop.events[i]
        counted = bits & COUNTED_MASK
        while counted:
            row[BIT_COLUMN[trailing_zeros(counted)]] += 1.0
            counted &= counted - 1
        if bits & RARE:
            if bits & (1 << EVENT.new_complaint):
                row[TALLY.complaints_by + pop.complaint[i]] += 1.0
            if bits & (1 << EVENT.churned):
                row[TALLY.churn_by + blamed(pop, i)] += 1.0
                silent += pop.complained[i] == 0
            if bits & (1 << EVENT.won_back):
                row[TALLY.winbacks_by + blamed(pop, i)] += 1.0
            if bits & (1 << EVENT.broadcast):
                if bits & (1 << EVENT.wom_positive):
                    broadcast_positive += 1
                else:
                    broadcast_negative += 1
                    row[TALLY.posts_negative_by + blamed(pop, i)] += 1.0
            if bits & (1 << EVENT.billed):
                billed += float(pop.value[i])
        state = pop.state[i]
        if state == PROSPECT:
            prospects += 1
        elif state == CHURNED:
            churned += 1
        else:
            active += 1
            # from the float32 fields as stored (so peak + last is a float32 sum, as it has always been)
            a = attitude(pop.satisfaction[i], pop.peak[i], pop.last[i], P)
            r = rating(a, P)
            attitudes += a
            expectations += float(pop.expectation[i])
            if a >= 0.0:
                satisfied += 1
            else:
                unhappy += 1
                unhappy_complained += pop.complained[i] != 0
            promoters += r >= 9.0
            detractors += r <= 6.0
            retained += i < P.initial_customers
            if bits & (1 << EVENT.surveyed):
                surveyed += 1
                survey_promoters += r >= 9.0
                survey_satisfied += a >= 0.0
                if r <= 6.0:
                    survey_detractors += 1
                    row[TALLY.survey_detractors_by + blamed(pop, i)] += 1.0
    row[TALLY.prospects] = prospects
    row[TALLY.churned] = churned
    row[TALLY.active] = active
    row[TALLY.silent_churn] = silent
    row[TALLY.broadcast_positive] = broadcast_positive
    row[TALLY.broadcast_negative] = broadcast_negative
    row[TALLY.satisfied] = satisfied
    row[TALLY.unhappy] = unhappy
    row[TALLY.unhappy_complained] = unhappy_complained
    row[TALLY.promoters] = promoters
    row[TALLY.detractors] = detractors
    row[TALLY.retained] = retained
    row[TALLY.surveyed] = surveyed
    row[TALLY.survey_promoters] = survey_promoters
    row[TALLY.survey_detractors] = survey_detractors
    row[TALLY.survey_satisfied] = survey_satisfied
    row[TALLY.billed_value] = billed
    row[TALLY.attitude] = attitudes
    row[TALLY.expectation] = expectations


@njit(cache=True, _nrt=False)
def customer_equity(pop, P, margin_per_bill, discount_per_bill):
    """The active customers' discounted expected margin: the sum of m v_i r_i / (1 + d - r_i) (Gupta, Lehmann &
    Stuart 2004), r_i the chance customer i renews at a bill with its renewal hazard held at today's, v_i its
    value, m the margin of a bill at value 1 and d the discount rate per billing cycle."""
    total = 0.0
    for i in range(pop.state.shape[0]):
        if pop.state[i] == ACTIVE:
            a = attitude(np.float64(pop.satisfaction[i]), np.float64(pop.peak[i]), np.float64(pop.last[i]), P)
            r = math.exp(-renewal_hazard(a, np.float64(pop.incident[i]), P))
            total += margin_per_bill * np.float64(pop.value[i]) * r / (1.0 + discount_per_bill - r)
    return total


@njit(cache=True, _nrt=False)
def live_chunk(c, first_day, days, key, P, D, G, pop, partial, tallied):
    """Chunk c's customers through days first_day.. first_day + days - 1, then (if `tallied`) their tallies into
    partial[c]. The one place `customer_day` is compiled into."""
    lo, hi = c * CHUNK, min(pop.state.shape[0], (c + 1) * CHUNK)
    for day in range(first_day, first_day + days):
        for i in range(lo, hi):
            customer_day(i, day, key, P, D, G, pop)
    if tallied:
        tally_chunk(lo, hi, pop, P, partial[c])


@njit(cache=True)
def spread_stride(m):
    """An odd stride near m / golden ratio and coprime with m: p -> p * stride % m scatters consecutive p."""
    stride = int(m * 0.6180339887) | 1
    while math.gcd(stride, m) != 1:
        stride += 2
    return stride


@njit(parallel=True, cache=True)
def step_population(first_day, days, key, P, D, G, pop, partial, tallied):
    """The numba engine: every customer's days, and the tallies of the last, chunk by chunk in parallel.

    A day of the run is one day, tallied. The warm start is many days untallied: with no word of
    mouth delivered between them, each customer lives its days on its own.

    Small populations run on the calling thread. prange hands each thread a contiguous block
    of iterations, and the initial customers (the costly ones) are the first rows: iteration p
    takes a scattered chunk so the threads' loads balance. Chunk c's tallies go to partial[c]
    whichever thread runs it.
    """
    m = n_chunks(pop.state.shape[0])
    if m < PARALLEL_CHUNKS:  # waking the threads would cost more than it saves
        for c in range(m):
            live_chunk(c, first_day, days, key, P, D, G, pop, partial, tallied)
        return
    stride = spread_stride(m)
    for p in prange(m):
        live_chunk(p * stride % m, first_day, days, key, P, D, G, pop, partial, tallied)


@njit(parallel=True, cache=True)
def tally(pop, P, partial):
    """The same tallies for customers already stepped (the agents engine), chunk by chunk."""
    n = pop.state.shape[0]
    for c in prange(partial.shape[0]):
        tally_chunk(c * CHUNK, min(n, (c + 1) * CHUNK), pop, P, partial[c])


@njit(cache=True, _nrt=False)
def spread_wom(pop, followers_ptr, followers):
    """Deliver today's network messages to those who listen to their senders; prospects read them tomorrow."""
    for j in range(pop.wom.shape[0]):
        w = pop.wom[j]
        if w != 0:
            heard = pop.heard_positive if w > 0 else pop.heard_negative
            for k in range(followers_ptr[j], followers_ptr[j + 1]):
                heard[followers[k]] += 1


@njit(cache=True)
def n_chunks(n):
    return (n + CHUNK - 1) // CHUNK


@njit(cache=True)
def totals(partial):
    """Sum the chunks' tallies in a fixed order."""
    out = np.zeros(partial.shape[1])
    for c in range(partial.shape[0]):
        out += partial[c]
    return out


def _in_python(entry: str):
    """The kernel function `entry` as plain Python, calling the Python forms of the kernel functions it uses.

    The agents engine runs this form of `customer_day`. A compiled function called from Python unpacks its
    namedtuple arguments field by field (about 4 µs a call for `Params`), so none is called here but the
    random-number functions (scalars in, scalars out), which stay compiled.
    """
    namespace = dict(globals())
    for name, f in globals().items():
        if hasattr(f, "py_func") and f.py_func.__module__ == __name__:
            namespace[name] = types.FunctionType(f.py_func.__code__, namespace, name, f.py_func.__defaults__)
    return namespace[entry]


customer_day_in_python = _in_python("customer_day")
