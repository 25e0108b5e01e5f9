"""Conventions every DAG here shares: owner, retries, failure alerts, start date.

One place to change them, and the DAG-integrity tests check that every DAG follows them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

from include.notifications import FailureEmailNotifier

#: A fixed date in the past: with catchup=False it only anchors the schedule.
START_DATE = pendulum.datetime(2025, 1, 1, tz="UTC")


def default_args(**overrides: Any) -> dict[str, Any]:
    """Task defaults: a team owner, two retries, and the email alert (off until configured)."""
    return {
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": FailureEmailNotifier(),
        **overrides,
    }
