"""Deterministic jaffle-shop-like source data: customers, orders and payments.

The demo has no upstream system to extract from, so this module plays one. Rows are generated from a
fixed seed, so every run of the pipeline (and every test) sees the same few thousand rows, and each
customer gets a hidden ordering rate, so that the ML step has a real signal to learn.
"""

from __future__ import annotations

import datetime as dt
import random

RAW_SCHEMA = "raw"
#: Column names and DuckDB types of each raw table, in file order.
RAW_TABLES: dict[str, dict[str, str]] = {
    "customers": {
        "id": "INTEGER",
        "first_name": "VARCHAR",
        "last_name": "VARCHAR",
        "email": "VARCHAR",
        "country": "VARCHAR",
        "signup_date": "DATE",
    },
    "orders": {
        "id": "INTEGER",
        "customer_id": "INTEGER",
        "order_date": "DATE",
        "status": "VARCHAR",
    },
    "payments": {
        "id": "INTEGER",
        "order_id": "INTEGER",
        "payment_method": "VARCHAR",
        "amount_cents": "INTEGER",
    },
}

FIRST_NAMES = ["Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lena"]
LAST_NAMES = ["Adams", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hansen", "Ito", "Jones"]
COUNTRIES = {"US": 0.45, "GB": 0.15, "DE": 0.15, "FR": 0.1, "NL": 0.08, "JP": 0.07}
PAYMENT_METHODS = {"credit_card": 0.55, "bank_transfer": 0.2, "coupon": 0.15, "gift_card": 0.1}
#: The last day of data: orders never fall after it; "recent" statuses are relative to it.
AS_OF = dt.date(2025, 6, 30)
FIRST_SIGNUP = dt.date(2024, 1, 1)


def generate_raw_data(n_customers: int = 1000, seed: int = 42) -> dict[str, list[tuple]]:
    """Return the rows of each raw table as tuples in ``RAW_TABLES`` column order.

    The same arguments always give the same rows.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    customers: list[tuple] = []
    orders: list[tuple] = []
    payments: list[tuple] = []
    signup_span = (AS_OF - FIRST_SIGNUP).days - 60
    for customer_id in range(1, n_customers + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        signup = FIRST_SIGNUP + dt.timedelta(days=rng.randrange(signup_span))
        country = _weighted(rng, COUNTRIES)
        email = f"{first}.{last}.{customer_id}@example.com".lower()
        customers.append((customer_id, first, last, email, country, signup))
        # Hidden behaviour: orders per 30 days, and a day after which the customer stops buying.
        rate = rng.gammavariate(1.2, 0.6)
        active_days = (AS_OF - signup).days
        churn_after = rng.randrange(active_days) if rng.random() < 0.4 else active_days
        day = 0
        while rate > 0:
            day += max(1, int(rng.expovariate(rate / 30)))
            if day > churn_after:
                break
            order_id = len(orders) + 1
            order_date = signup + dt.timedelta(days=day)
            orders.append((order_id, customer_id, order_date, _order_status(rng, order_date)))
            basket = rng.randint(8, 60) * 100 + rng.choice([0, 50, 99])
            for _ in range(1 if rng.random() < 0.85 else 2):
                payment_id = len(payments) + 1
                payments.append((payment_id, order_id, _weighted(rng, PAYMENT_METHODS), basket))
    return {"customers": customers, "orders": orders, "payments": payments}


def _order_status(rng: random.Random, order_date: dt.date) -> str:
    age = (AS_OF - order_date).days
    if age < 3:
        return "placed"
    if age < 10:
        return rng.choice(["shipped", "completed"])
    return "returned" if rng.random() < 0.04 else "completed"


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]
