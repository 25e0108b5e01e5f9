"""
What the Astro CLI (and then the user) does through Airflow's REST API once the stack is up.

``astro dev start`` waits for ``/api/v2/monitor/health``, takes a token from ``/auth/token`` (the
simple auth manager with every user admin hands one to anyone) and upserts ``airflow_settings.yaml``:
pools, variables, then connections, each ``POST`` and, on 409, ``PATCH`` with the same body. The user
then turns the DAG on and triggers it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from localdev.airflow_settings import connection_fields, read_settings

TERMINAL_DAG_RUN_STATES = frozenset({"success", "failed"})


class AirflowApiError(RuntimeError):
    """The Airflow API answered something the rehearsal cannot go on from."""


@dataclass
class AirflowApi:
    base_url: str  # http://localhost:<api-server port>

    def wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(1)
        raise AirflowApiError(f"the api-server was not healthy after {timeout:.0f} s (last: {last})")

    def client(self) -> httpx.Client:
        token = httpx.post(
            f"{self.base_url}/auth/token", json={"username": "admin", "password": "admin"}, timeout=10
        )
        if token.status_code not in (200, 201):
            raise AirflowApiError(f"/auth/token answered HTTP {token.status_code}: {token.text[:200]}")
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return httpx.Client(base_url=f"{self.base_url}/api/v2", headers=headers, timeout=30)


def upsert_settings(client: httpx.Client, settings_file: Path) -> list[str]:
    """Apply ``airflow_settings.yaml`` as the CLI does; return what was written."""
    settings = read_settings(settings_file)
    written = []
    for item in settings["pools"]:
        if item.get("pool_name") and int(item.get("pool_slot") or 0):
            body = {
                "name": str(item["pool_name"]),
                "slots": int(item["pool_slot"]),
                "description": str(item.get("pool_description") or ""),
                "include_deferred": False,
            }
            _upsert(client, "pools", body["name"], body)
            written.append(f"pool {body['name']}")
    for item in settings["variables"]:
        if item.get("variable_name") and item.get("variable_value") not in (None, ""):
            body = {"key": str(item["variable_name"]), "value": str(item["variable_value"])}
            _upsert(client, "variables", body["key"], body)
            written.append(f"variable {body['key']}")
    for item in settings["connections"]:
        fields = connection_fields(item)
        if fields is None:
            continue
        body = _connection_body(fields)
        _upsert(client, "connections", body["connection_id"], body)
        written.append(f"connection {body['connection_id']}")
    return written


def _connection_body(fields: dict[str, Any]) -> dict[str, Any]:
    if "uri" in fields:
        raise AirflowApiError(
            f"connection {fields['conn_id']!r}: the rehearsal does not parse conn_uri; "
            "write the conn_* fields in airflow_settings.yaml"
        )
    body = {"connection_id": fields.pop("conn_id")}
    body.update({key: value for key, value in fields.items() if key != "extra"})
    if "extra" in fields:
        body["extra"] = fields["extra"]
    return body


def _upsert(client: httpx.Client, resource: str, object_id: str, body: dict[str, Any]) -> None:
    response = client.post(f"/{resource}", json=body)
    if response.status_code == 409:
        response = client.patch(f"/{resource}/{object_id}", json=body)
    if not response.is_success:
        raise AirflowApiError(
            f"upserting {resource[:-1]} {object_id!r} answered HTTP {response.status_code}: "
            f"{response.text[:300]}"
        )


def trigger(client: httpx.Client, dag_id: str, *, wait_for_dag: float) -> str:
    """Wait until the DAG is parsed, turn it on and trigger a run; return its run id."""
    deadline = time.monotonic() + wait_for_dag
    while client.get(f"/dags/{dag_id}").status_code == 404:
        if time.monotonic() > deadline:
            raise AirflowApiError(f"DAG {dag_id} was not parsed after {wait_for_dag:.0f} s")
        time.sleep(2)
    _check(client.patch(f"/dags/{dag_id}", json={"is_paused": False}), f"unpausing {dag_id}")
    response = client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "note": "astro rehearsal"})
    _check(response, f"triggering {dag_id}")
    return response.json()["dag_run_id"]


def wait_for_run(client: httpx.Client, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = _check(client.get(f"/dags/{dag_id}/dagRuns/{run_id}"), "reading the DAG run").json()
        if run["state"] in TERMINAL_DAG_RUN_STATES:
            return run
        if time.monotonic() > deadline:
            raise AirflowApiError(f"DAG run {run_id} still {run['state']} after {timeout:.0f} s")
        time.sleep(3)


def task_states(client: httpx.Client, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
    response = _check(client.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"), "reading task states")
    return {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in response.json()["task_instances"]}


def xcom(client: httpx.Client, dag_id: str, run_id: str, task_id: str, key: str) -> Any:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
    value = _check(client.get(path, params={"deserialize": True}), f"reading XCom {key}").json()["value"]
    return json.loads(value) if isinstance(value, str) and value[:1] in '{["' else value


def _check(response: httpx.Response, what: str) -> httpx.Response:
    if not response.is_success:
        raise AirflowApiError(f"{what} answered HTTP {response.status_code}: {response.text[:300]}")
    return response
