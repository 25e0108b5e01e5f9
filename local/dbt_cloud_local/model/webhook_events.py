"""
The job run events dbt Cloud's webhooks send, which a subscription (API or config) listens to.
"""

from __future__ import annotations

JOB_RUN_STARTED = "job.run.started"
JOB_RUN_COMPLETED = "job.run.completed"
JOB_RUN_ERRORED = "job.run.errored"
EVENT_TYPES = (JOB_RUN_STARTED, JOB_RUN_COMPLETED, JOB_RUN_ERRORED)
