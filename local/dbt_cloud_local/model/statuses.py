"""
Run and step statuses, with dbt Cloud's numbers (``RunStatus``: 1 queued ... 30 cancelled).
"""

from __future__ import annotations

QUEUED, STARTING, RUNNING, SUCCESS, ERROR, CANCELLED = 1, 2, 3, 10, 20, 30
IN_FLIGHT = (QUEUED, STARTING, RUNNING)
TERMINAL = (SUCCESS, ERROR, CANCELLED)
STATUS_HUMANIZED = {
    QUEUED: "Queued",
    STARTING: "Starting",
    RUNNING: "Running",
    SUCCESS: "Success",
    ERROR: "Error",
    CANCELLED: "Cancelled",
}
