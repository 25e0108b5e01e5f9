"""Conventions every DAG here shares: owner, retries, failure alerts, start date, dbt Cloud wiring.

One place to change them, and the DAG-integrity tests check that every DAG follows them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

from include.dbt_cloud.hook import dbt_cloud_args
from include.notifications import FailureEmailNotifier

#: A fixed date in the past: with catchup=False it only anchors the schedule.
START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")


def default_args(*, account_id: int | None = None, **overrides: Any) -> dict[str, Any]:
    """Task defaults: a team owner, two retries, the email alert (off until configured), and the dbt
    Cloud connection, account and hook settings that every dbt Cloud operator and sensor picks up."""
    return {
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": FailureEmailNotifier(),
        **dbt_cloud_args(account_id),
        **overrides,
    }
