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

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.np.unsafe.ndarray import to_fixed_tuple

from cxsim.domain import (ACTIVE, BILLING, CHURNED, DIGITAL, FULFILMENT, MARKETING, N_DEPT, NO_DEPT, PRODUCT,
                          PROSPECT, SALES, SERVICE)
from cxsim.rng import seat, uniform, uniform2

CHUNK = 4096  # customers per chunk: partial sums per chunk make totals independent of the thread count
PARALLEL_CHUNKS = 4  # fewer chunks than this are stepped on one thread

# --- scalar parameters (P), filled by model.parameter_vector
(LOSS_AVERSION, EXPECTATION_LEARNING, PROMISE_LEARNING, GAIN_LEARNING, LOSS_LEARNING,
 MEMORY_WEIGHT, MEMORY_DECAY, INCIDENT_DECAY, VOICE_FACTOR, WOM_POS_SLOPE, WOM_NEG_SLOPE,
 BROADCAST_SHARE, SURVEY_RATE, SURVEY_RESPONSE, SURVEY_SELF_SELECTION, CHURN_BASE, CHURN_ATTITUDE,
 CHURN_INCIDENT, RECOVERY_SHARE, HANDOFF_LOSS, CONTACT_FATIGUE, RATING_ANCHOR, RATING_SLOPE,
 USAGE_RATE, DIGITAL_RATE, ORDER_RATE, MARKETING_RATE, SUPPORT_RATE, BILLING_CYCLE,
 DIGITAL_PURCHASE_SHARE, WOM_AFTER_CHURN, MAX_ATTEMPTS, WOM_ADOPTION, WOM_DETERRENCE,
 INITIAL_CUSTOMERS, PERFORMANCE_WEIGHT, COMPETITOR_QUALITY, ORDER_HANDOFF_SHARE, N_PARAMS) = range(39)

# --- department table (D[k, column]), refreshed daily by the departments
QUALITY, FAILURE, SEVERITY, GAIN_WEIGHT, LOSS_WEIGHT, N_DCOLS = range(6)

# --- today's organisation-wide state (G), set by the model before customers step
# STAY: chance a prospect is pulled neither by advertising nor by broadcasts, (1 - p_ad) exp(-q E+);
# UNDETERRED: chance broadcasts do not deter it, exp(-d E-)
PROMISE, WAIT_VALUE, ABANDON, HANDOFF, STAY, UNDETERRED, N_GLOBALS = range(7)

# --- what happened to a customer today: bits of Population.events
ENCOUNTER_BIT = 0  # + k: met department k
FAILURE_BIT = 7  # + k: department k failed this customer
(ACQUIRED, CHURNED_TODAY, NEW_COMPLAINT, CONTACT, REPEAT_CONTACT, ABANDONED, GAVE_UP, RESOLVED,
 HANDOFF_LOST, LOST_SALE, WOM_POSITIVE, WOM_NEGATIVE, BROADCAST, SURVEYED, BILLED) = range(14, 29)

# --- draw slots: slots 2w and 2w + 1 share one random word (rng.uniform2), so the draws every
# active customer makes each day come in pairs: (support, usage), (digital, order), (marketing, talk),
# (survey, broadcast); the rest are drawn only when needed
(S_SUPPORT, S_USAGE, S_DIGITAL, S_ORDER, S_MARKETING, S_TALK, S_SURVEY, S_BROADCAST,
 S_PURCHASE_AWARE, S_PURCHASE_CHANNEL, S_CONTACT_FAIL, S_CONTACT_HANDOFF, S_SUPPORT_ABANDON, S_SUPPORT_FAIL,
 S_ORDER_FAIL, S_ORDER_HANDOFF, S_BILLING_FAIL, S_RENEW, S_PURCHASE_FAIL, S_CONTACT_ABANDON, S_USAGE_FAIL,
 S_DIGITAL_FAIL, S_MARKETING_FAIL, S_VOICE) = range(24)
# the first slot of every pair drawn with uniform2 is even
assert all(slot % 2 == 0 for slot in (S_SUPPORT, S_DIGITAL, S_MARKETING, S_SURVEY, S_PURCHASE_AWARE, S_CONTACT_FAIL,
                                      S_SUPPORT_ABANDON, S_ORDER_FAIL, S_BILLING_FAIL))
# voice draws use S_VOICE + department index, so S_VOICE must stay last

# --- per-day tallies (columns of the partial sums)
(T_PROSPECTS, T_ACTIVE, T_CHURNED, T_ACQUISITIONS, T_CHURN, T_SILENT_CHURN, T_COMPLAINTS, T_CONTACTS,
 T_REPEAT_CONTACTS, T_ABANDONED, T_GAVE_UP, T_RESOLVED, T_HANDOFF_LOST, T_LOST_SALES, T_WOM_POSITIVE,
 T_WOM_NEGATIVE, T_BROADCAST_POSITIVE, T_BROADCAST_NEGATIVE, T_SURVEYED, T_SURVEY_PROMOTERS,
 T_SURVEY_DETRACTORS, T_SURVEY_SATISFIED, T_SATISFIED, T_PROMOTERS, T_DETRACTORS, T_BILLED_VALUE,
 T_ATTITUDE, T_EXPECTATION, T_RETAINED, T_UNHAPPY, T_UNHAPPY_COMPLAINED) = range(31)
T_ENCOUNTERS = 31  # + k
T_FAILURES = T_ENCOUNTERS + N_DEPT  # + k
T_CHURN_BY = T_FAILURES + N_DEPT  # + k, and + N_DEPT for churn with no failure to blame
T_COMPLAINTS_BY = T_CHURN_BY + N_DEPT + 1  # + k
N_TALLIES = T_COMPLAINTS_BY + N_DEPT


@njit(cache=True, _nrt=False)
def encounter_value(x, e, tolerance, gain_weight, loss_weight, P):
    """Experienced value of quality x: performance against the alternative plus disconfirmation.

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
    u = P[PERFORMANCE_WEIGHT] * (x - P[COMPETITOR_QUALITY]) + d
    return gain_weight * u if u >= 0.0 else loss_weight * P[LOSS_AVERSION] * u


@njit(cache=True, _nrt=False)
def remember(v, cs, peak, P):
    """Fold an encounter's value into cumulative satisfaction (losses learned faster) and the peak."""
    eta = P[LOSS_LEARNING] if v < cs else P[GAIN_LEARNING]
    cs += eta * (v - cs)
    if abs(v) >= abs(peak):
        peak = v
    return cs, peak


@njit(cache=True, _nrt=False)
def attitude(cs, peak, last, P):
    """What a customer thinks of the firm: cumulative satisfaction blended with peak-end memory."""
    w = P[MEMORY_WEIGHT]
    return (1.0 - w) * cs + w * 0.5 * (peak + last)


@njit(cache=True, _nrt=False)
def rating(a, P):
    """Likelihood to recommend on the 0..10 survey scale."""
    r = math.floor(P[RATING_ANCHOR] + P[RATING_SLOPE] * a + 0.5)
    return min(10.0, max(0.0, r))


@njit(cache=True, _nrt=False, inline="always")
def touch(s, k, u_fail, x_extra, st, traits, P, D):
    """A customer (seat `s`) meets department k: a failure if `u_fail < D[k, FAILURE]`, else its quality.

    `st` is the customer's working state (e, cs, peak, last, incident, blame, blame_weight,
    complaint, attempts, complained, bits); returns it updated. `traits` is (tolerance,
    voice propensity). A failure may open a complaint (voice), which lands in service's
    queue from tomorrow on.
    """
    e, cs, peak, last, incident, blame, blame_weight, complaint, attempts, complained, bits = st
    failed = u_fail < D[k, FAILURE]
    x = D[k, QUALITY] - (D[k, SEVERITY] if failed else 0.0)
    v = encounter_value(x, e, traits[0], D[k, GAIN_WEIGHT], D[k, LOSS_WEIGHT], P) + x_extra
    e += P[EXPECTATION_LEARNING] * (x - e)
    cs, peak = remember(v, cs, peak, P)
    last = v
    bits |= 1 << (ENCOUNTER_BIT + k)
    if failed:
        bits |= 1 << (FAILURE_BIT + k)
        incident += 1.0
        if -v >= blame_weight:
            blame, blame_weight = k, -v
        if complaint == NO_DEPT and uniform(s, S_VOICE + k) < traits[1] * 2.0 * D[k, SEVERITY]:
            complaint, attempts, complained = k, 0, 1
            bits |= 1 << NEW_COMPLAINT
    return e, cs, peak, last, incident, blame, blame_weight, complaint, attempts, complained, bits


@njit(cache=True, _nrt=False)
def with_bits(st, bits):
    """The working state with more event bits set."""
    return st[:10] + (st[10] | bits,)


@njit(cache=True, _nrt=False, inline="always")
def follow_up(s, st, P, D, G):
    """One contact a day on an open complaint: it waits, then is abandoned, fails, loses context or is resolved."""
    e, cs, peak, last, incident, blame, blame_weight, complaint, attempts, complained, bits = st
    bits |= (1 << CONTACT) | ((1 << REPEAT_CONTACT) if attempts > 0 else 0)
    attempts += 1
    cs, peak = remember(G[WAIT_VALUE], cs, peak, P)
    last = G[WAIT_VALUE]
    if uniform(s, S_CONTACT_ABANDON) < G[ABANDON]:
        bits |= 1 << ABANDONED
    else:
        bits |= 1 << (ENCOUNTER_BIT + SERVICE)
        u_fail, u_handoff = uniform2(s, S_CONTACT_FAIL)
        if u_fail < D[SERVICE, FAILURE]:
            bits |= 1 << (FAILURE_BIT + SERVICE)
            incident += 1.0
            loss = -P[LOSS_AVERSION] * D[SERVICE, SEVERITY]
            last += loss
            cs, peak = remember(loss, cs, peak, P)
        elif u_handoff >= G[HANDOFF]:
            bits |= 1 << HANDOFF_LOST
            last -= P[HANDOFF_LOSS]
            cs, peak = remember(-P[HANDOFF_LOSS], cs, peak, P)
        else:
            # partial recovery: the resolution repairs a share of the complained failure's harm in memory
            # (less for every extra contact it took); the incident stays in the churn hazard
            harm = P[LOSS_AVERSION] * D[complaint, LOSS_WEIGHT] * D[complaint, SEVERITY]
            repair = P[RECOVERY_SHARE] * harm / attempts
            cs += P[LOSS_LEARNING] * repair
            if peak < 0.0:
                peak = min(0.0, peak + repair)
            last += repair
            bits |= 1 << RESOLVED
            complaint = NO_DEPT
    if complaint != NO_DEPT and attempts >= P[MAX_ATTEMPTS]:
        bits |= 1 << GAVE_UP
        incident += 1.0
        complaint = NO_DEPT
    return e, cs, peak, last, incident, blame, blame_weight, complaint, attempts, complained, bits


@njit(cache=True, _nrt=False, inline="always")
def routine_contact(s, st, traits, P, D, G):
    """A routine question to service: the wait is part of the service experience."""
    st = with_bits(st, 1 << CONTACT)
    u_abandon, u_fail = uniform2(s, S_SUPPORT_ABANDON)
    if u_abandon < G[ABANDON]:
        cs, peak = remember(G[WAIT_VALUE], st[1], st[2], P)
        return with_bits((st[0], cs, peak, G[WAIT_VALUE]) + st[4:], 1 << ABANDONED)
    return touch(s, SERVICE, u_fail, G[WAIT_VALUE], st, traits, P, D)


@njit(cache=True, _nrt=False, inline="always")
def customer_day(i, day, key, P, D, G, pop):
    """Move customer i through day `day`: acquisition, complaints, journey touchpoints, renewal, word of mouth."""
    s = np.uint64(seat(key, i, day))  # typed uint64 in the plain-Python form too
    state = pop.state[i]
    heard_positive, heard_negative = pop.heard_positive[i], pop.heard_negative[i]
    pop.heard_positive[i] = 0  # cleared for today's messages
    pop.heard_negative[i] = 0
    bits = 0
    if state == PROSPECT:
        # advertising reach and word of mouth from yesterday (Bass in agent form: p + q per message)
        stay = G[STAY]
        undeterred = G[UNDETERRED]
        for _ in range(heard_positive):
            stay *= 1.0 - P[WOM_ADOPTION]
        for _ in range(heard_negative):
            undeterred *= 1.0 - P[WOM_DETERRENCE]
        u_aware, u_channel = uniform2(s, S_PURCHASE_AWARE)
        if u_aware < (1.0 - stay) * undeterred:
            k = DIGITAL if u_channel < P[DIGITAL_PURCHASE_SHARE] else SALES
            bits |= 1 << (ENCOUNTER_BIT + k)
            if uniform(s, S_PURCHASE_FAIL) < D[k, FAILURE]:
                bits |= (1 << (FAILURE_BIT + k)) | (1 << LOST_SALE)
            else:
                bits |= 1 << ACQUIRED
                pop.state[i] = ACTIVE
                pop.expectation[i] = G[PROMISE]
                pop.satisfaction[i] = 0.0
                pop.peak[i] = 0.0
                pop.last[i] = 0.0
                pop.incident[i] = 0.0
                pop.blame[i] = NO_DEPT
                pop.blame_weight[i] = 0.0
                pop.complaint[i] = NO_DEPT
                pop.attempts[i] = 0
                pop.complained[i] = 0
                pop.tenure[i] = 0
        pop.wom[i] = 0
        pop.events[i] = bits
        return

    cs = float(pop.satisfaction[i])
    peak = float(pop.peak[i])
    last = float(pop.last[i])
    tenure = pop.tenure[i] + 1
    talk = False
    u_talk = 1.0
    if state == ACTIVE:
        e = float(pop.expectation[i])
        incident = float(pop.incident[i]) * P[INCIDENT_DECAY]
        blame_weight = float(pop.blame_weight[i]) * P[INCIDENT_DECAY]
        peak *= P[MEMORY_DECAY]
        traits = (float(pop.tolerance[i]), float(pop.complaint_propensity[i]) * P[VOICE_FACTOR])
        st = (e, cs, peak, last, incident, int(pop.blame[i]), blame_weight, int(pop.complaint[i]),
              int(pop.attempts[i]), int(pop.complained[i]), bits)
        u_support, u_usage = uniform2(s, S_SUPPORT)
        u_digital, u_order = uniform2(s, S_DIGITAL)
        u_marketing, u_talk = uniform2(s, S_MARKETING)

        if st[7] != NO_DEPT:
            st = follow_up(s, st, P, D, G)
        elif u_support < P[SUPPORT_RATE]:
            st = routine_contact(s, st, traits, P, D, G)

        # journey touchpoints of the day
        if u_usage < P[USAGE_RATE]:
            st = touch(s, PRODUCT, uniform(s, S_USAGE_FAIL), 0.0, st, traits, P, D)
        if u_digital < P[DIGITAL_RATE]:
            st = touch(s, DIGITAL, uniform(s, S_DIGITAL_FAIL), 0.0, st, traits, P, D)
        if u_order < P[ORDER_RATE]:
            # an order may cross a handoff into fulfilment; lost context costs the customer effort
            u_fail, u_handoff = uniform2(s, S_ORDER_FAIL)
            lost = u_handoff < P[ORDER_HANDOFF_SHARE] * (1.0 - G[HANDOFF])
            st = touch(s, FULFILMENT, u_fail, -P[HANDOFF_LOSS] if lost else 0.0, st, traits, P, D)
            if lost:
                st = with_bits(st, 1 << HANDOFF_LOST)
        if u_marketing < P[MARKETING_RATE]:
            st = touch(s, MARKETING, uniform(s, S_MARKETING_FAIL), -P[CONTACT_FATIGUE], st, traits, P, D)
            # the campaign restates the promise
            st = (st[0] + P[PROMISE_LEARNING] * (G[PROMISE] - st[0]),) + st[1:]

        e, cs, peak, last, incident, blame, blame_weight, complaint, attempts, complained, bits = st
        if tenure % int(P[BILLING_CYCLE]) == 0:
            # the bill, then the renewal decision: a hazard in attitude and recent incidents
            u_fail, u_renew = uniform2(s, S_BILLING_FAIL)
            e, cs, peak, last, incident, blame, blame_weight, complaint, attempts, complained, bits = touch(
                s, BILLING, u_fail, 0.0, st, traits, P, D)
            bits |= 1 << BILLED
            a = attitude(cs, peak, last, P)
            hazard = P[CHURN_BASE] * math.exp(-P[CHURN_ATTITUDE] * a + P[CHURN_INCIDENT] * incident)
            if u_renew < 1.0 - math.exp(-hazard):
                bits |= 1 << CHURNED_TODAY
                state = CHURNED
                tenure = 0
                if blame_weight < 0.01:
                    blame = NO_DEPT
        pop.expectation[i] = e
        pop.incident[i] = incident
        pop.blame[i] = blame
        pop.blame_weight[i] = blame_weight
        pop.complaint[i] = complaint
        pop.attempts[i] = attempts
        pop.complained[i] = complained
        pop.state[i] = state
        talk = True
    elif tenure <= P[WOM_AFTER_CHURN]:
        talk = True
        u_talk = uniform(s, S_TALK)

    # word of mouth: more likely the further from neutral, with its own slope on each side
    a = attitude(cs, peak, last, P)
    wom = 0
    if talk:
        u_survey, u_broadcast = uniform2(s, S_SURVEY)
        slope = P[WOM_POS_SLOPE] * a if a >= 0.0 else -P[WOM_NEG_SLOPE] * a
        if u_talk < float(pop.wom_propensity[i]) * (1.0 + slope):
            bits |= 1 << (WOM_POSITIVE if a >= 0.0 else WOM_NEGATIVE)
            if u_broadcast < P[BROADCAST_SHARE]:
                bits |= 1 << BROADCAST
            else:
                wom = 1 if a >= 0.0 else -1
        if state == ACTIVE and u_survey < P[SURVEY_RATE] * min(
                1.0, P[SURVEY_RESPONSE] * (1.0 + P[SURVEY_SELF_SELECTION] * abs(a))):
            bits |= 1 << SURVEYED
    pop.satisfaction[i] = cs
    pop.peak[i] = peak
    pop.last[i] = last
    pop.tenure[i] = tenure
    pop.wom[i] = wom
    pop.events[i] = bits


# event bits that are counted straight into a tally column
COUNTED = ((ACQUIRED, T_ACQUISITIONS), (CHURNED_TODAY, T_CHURN), (NEW_COMPLAINT, T_COMPLAINTS),
           (CONTACT, T_CONTACTS), (REPEAT_CONTACT, T_REPEAT_CONTACTS), (ABANDONED, T_ABANDONED),
           (GAVE_UP, T_GAVE_UP), (RESOLVED, T_RESOLVED), (HANDOFF_LOST, T_HANDOFF_LOST), (LOST_SALE, T_LOST_SALES),
           (WOM_POSITIVE, T_WOM_POSITIVE), (WOM_NEGATIVE, T_WOM_NEGATIVE)) + tuple(
    (ENCOUNTER_BIT + k, T_ENCOUNTERS + k) for k in range(N_DEPT)) + tuple(
    (FAILURE_BIT + k, T_FAILURES + k) for k in range(N_DEPT))
COUNTED_MASK = sum(1 << bit for bit, _ in COUNTED)
BIT_COLUMN = np.array([dict(COUNTED).get(bit, 0) for bit in range(32)])  # the tally column of each counted bit
# events that need more than a count: who is blamed or complained about, the sign of a broadcast, the bill
RARE = (1 << NEW_COMPLAINT) | (1 << CHURNED_TODAY) | (1 << BROADCAST) | (1 << BILLED)


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
            if bits & (1 << NEW_COMPLAINT):
                row[T_COMPLAINTS_BY + pop.complaint[i]] += 1.0
            if bits & (1 << CHURNED_TODAY):
                blamed = pop.blame[i]
                row[T_CHURN_BY + (N_DEPT if blamed == NO_DEPT else blamed)] += 1.0
                silent += pop.complained[i] == 0
            if bits & (1 << BROADCAST):
                if bits & (1 << WOM_POSITIVE):
                    broadcast_positive += 1
                else:
                    broadcast_negative += 1
            if bits & (1 << BILLED):
                billed += float(pop.value[i])
        state = pop.state[i]
        if state == PROSPECT:
            prospects += 1
        elif state == CHURNED:
            churned += 1
        else:
            active += 1
            a = attitude(float(pop.satisfaction[i]), float(pop.peak[i]), float(pop.last[i]), P)
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
            retained += i < P[INITIAL_CUSTOMERS]
            if bits & (1 << SURVEYED):
                surveyed += 1
                survey_promoters += r >= 9.0
                survey_detractors += r <= 6.0
                survey_satisfied += a >= 0.0
    row[T_PROSPECTS] = prospects
    row[T_CHURNED] = churned
    row[T_ACTIVE] = active
    row[T_SILENT_CHURN] = silent
    row[T_BROADCAST_POSITIVE] = broadcast_positive
    row[T_BROADCAST_NEGATIVE] = broadcast_negative
    row[T_SATISFIED] = satisfied
    row[T_UNHAPPY] = unhappy
    row[T_UNHAPPY_COMPLAINED] = unhappy_complained
    row[T_PROMOTERS] = promoters
    row[T_DETRACTORS] = detractors
    row[T_RETAINED] = retained
    row[T_SURVEYED] = surveyed
    row[T_SURVEY_PROMOTERS] = survey_promoters
    row[T_SURVEY_DETRACTORS] = survey_detractors
    row[T_SURVEY_SATISFIED] = survey_satisfied
    row[T_BILLED_VALUE] = billed
    row[T_ATTITUDE] = attitudes
    row[T_EXPECTATION] = expectations


@njit(cache=True, _nrt=False)
def step_chunk(lo, hi, day, key, P, D, G, pop, row):
    """Customers lo..hi-1 through one day, then their tallies into `row`.

    P and G are read as tuples: values the compiler keeps at hand, where array reads
    would be repeated after every store to the population (the arrays might overlap).
    """
    params, today = to_fixed_tuple(P, N_PARAMS), to_fixed_tuple(G, N_GLOBALS)
    for i in range(lo, hi):
        customer_day(i, day, key, params, D, today, pop)
    tally_chunk(lo, hi, pop, P, row)


@njit(cache=True, _nrt=False)
def warm_customer(i, days, key, P, D, G, pop):
    """Customer i through days 0..days-1 of the warm start, with the organisation as it is today."""
    params, today = to_fixed_tuple(P, N_PARAMS), to_fixed_tuple(G, N_GLOBALS)
    for day in range(days):
        customer_day(i, day, key, params, D, today, pop)


@njit(parallel=True, cache=True)
def warm_up_population(days, key, P, D, G, pop):
    """The warm start of every customer in `pop`: no tallies, no word of mouth, so each lives its days on its own."""
    for i in prange(pop.state.shape[0]):
        warm_customer(i, days, key, P, D, G, pop)


@njit(cache=True)
def spread_stride(m):
    """An odd stride near m / golden ratio and coprime with m: p -> p * stride % m scatters consecutive p."""
    stride = int(m * 0.6180339887) | 1
    while math.gcd(stride, m) != 1:
        stride += 2
    return stride


@njit(parallel=True, cache=True)
def step_population(day, key, P, D, G, pop, partial):
    """The numba engine: every customer's day and the tallies, chunk by chunk in parallel.

    Small populations run on the calling thread. prange hands each thread a contiguous block
    of iterations, and the initial customers (the costly ones) are the first rows: iteration p
    takes a scattered chunk so the threads' loads balance. Chunk c's tallies go to partial[c]
    whichever thread runs it.
    """
    n = pop.state.shape[0]
    m = partial.shape[0]
    if m < PARALLEL_CHUNKS:  # waking the threads would cost more than it saves
        for c in range(m):
            step_chunk(c * CHUNK, min(n, (c + 1) * CHUNK), day, key, P, D, G, pop, partial[c])
        return
    stride = spread_stride(m)
    for p in prange(m):
        c = p * stride % m
        step_chunk(c * CHUNK, min(n, (c + 1) * CHUNK), day, key, P, D, G, pop, partial[c])


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


def n_chunks(n):
    return (n + CHUNK - 1) // CHUNK


@njit(cache=True)
def totals(partial):
    """Sum the chunks' tallies in a fixed order."""
    out = np.zeros(partial.shape[1])
    for c in range(partial.shape[0]):
        out += partial[c]
    return out
