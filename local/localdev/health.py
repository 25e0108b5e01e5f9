"""Decide when a freshly started stack is usable, or say precisely which part is not and why.

"Started" is not "ready": the api-server must answer, the scheduler, triggerer and dag-processor must
heartbeat (after this start: a heartbeat left in the database by an earlier run does not count), the
local dbt Cloud must answer an authenticated request over TLS with the generated CA, and each Celery
worker must have joined the broker. A component that exits while we wait fails the start at once, with
the end of its log, instead of running into the timeout.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from dbt_cloud_local.client import ClientAccess
from localdev.processes import ProcessRecord, is_running, log_since_start, log_tail
from localdev.stack_settings import StackError, StackSettings

#: api-server health sections that must be healthy, and the component whose log explains a failure.
HEARTBEATS = {"scheduler": "scheduler", "triggerer": "triggerer", "dag_processor": "dag-processor"}


def _get(
    url: str, *, headers: dict[str, str] | None = None, ca_file: Path | None = None
) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - http(s) URLs we build
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def airflow_health(settings: StackSettings) -> dict:
    """The api-server's ``/api/v2/monitor/health`` document (raises OSError when it does not answer)."""
    status, body = _get(f"{settings.api_url}/api/v2/monitor/health")
    if status != 200:
        raise OSError(f"HTTP {status}")
    return json.loads(body)


def airflow_problems(health: dict, started_at: datetime) -> dict[str, str]:
    """``{component: what is wrong}`` for the health document; empty when all is healthy."""
    problems = {}
    if (health.get("metadatabase") or {}).get("status") != "healthy":
        problems["api-server"] = "metadata database unhealthy"
    for section, component in HEARTBEATS.items():
        info = health.get(section) or {}
        beat = info.get(f"latest_{section}_heartbeat")
        if info.get("status") != "healthy" or not beat:
            problems[component] = f"{section} status {info.get('status')!r}"
        elif datetime.fromisoformat(beat) < started_at:
            problems[component] = f"no {section} heartbeat since this start"
    return problems


def dbt_cloud_problem(access: ClientAccess) -> str | None:
    try:
        status, _ = _get(
            f"{access.base_url}/", headers={"Authorization": f"Token {access.token}"}, ca_file=access.ca_cert
        )
    except (OSError, ssl.SSLError) as exc:
        return f"not answering ({exc.__class__.__name__})"
    if status == 401:
        return "rejects the API token (DBT_CLOUD_LOCAL_API_TOKEN differs between server and clients?)"
    return None if status == 200 else f"answers HTTP {status}"


def wait_until_ready(
    settings: StackSettings,
    records: list[ProcessRecord],
    *,
    dbt_cloud: ClientAccess,
    started_at: datetime,
    say: Callable[[str], None] = print,
) -> None:
    by_name = {record.name: record for record in records}
    deadline = time.monotonic() + settings.startup_timeout
    next_report = time.monotonic() + 15
    while True:
        dead = [record for record in records if not is_running(record)]
        if dead:
            record = dead[0]
            raise StackError(
                f"{record.name} exited during start-up. Last lines of {record.log}:\n{log_tail(record)}"
            )
        pending: dict[str, str] = {}
        try:
            pending.update(airflow_problems(airflow_health(settings), started_at))
        except (OSError, ValueError) as exc:
            pending["api-server"] = f"{settings.api_url}/api/v2/monitor/health not answering ({exc})"
        problem = dbt_cloud_problem(dbt_cloud)
        if problem:
            pending["dbt-cloud-local"] = problem
        for record in records:
            if record.name.startswith("celery-worker") and " ready." not in log_since_start(record):
                pending[record.name] = "not connected to the broker yet"
        if not pending:
            return
        now = time.monotonic()
        if now > deadline:
            details = "\n".join(
                f"- {name}: {reason}\n  last lines of {by_name[name].log}:\n    "
                + log_tail(by_name[name], 12).replace("\n", "\n    ")
                if name in by_name
                else f"- {name}: {reason}"
                for name, reason in pending.items()
            )
            raise StackError(
                f"The stack was not ready after {settings.startup_timeout:g}s (raise it with "
                f"LOCALDEV_STARTUP_TIMEOUT on a slow machine). Not ready:\n{details}"
            )
        if now > next_report:
            say("  still waiting for: " + "; ".join(f"{name} ({reason})" for name, reason in pending.items()))
            next_report = now + 15
        time.sleep(1)
