"""The domain's vocabulary: the departments and a customer's states.

This module imports nothing of the simulator (no numba, no mesa), so the schema,
the scenario loader and `cxsim check` can speak the domain's words cheaply.
"""

DEPARTMENTS = ("marketing", "sales", "digital", "product", "fulfilment", "billing", "service")
N_DEPT = len(DEPARTMENTS)
MARKETING, SALES, DIGITAL, PRODUCT, FULFILMENT, BILLING, SERVICE = range(N_DEPT)
NO_DEPT = -1  # no department (no complaint open, nobody to blame)

# a person of the market: not yet a customer, a customer, a former customer
PROSPECT, ACTIVE, CHURNED = 0, 1, 2
