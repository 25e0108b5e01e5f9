"""Helpers shared by the local dbt Cloud tests: the test config, and waiting for runs."""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from tiny_project import write_tiny_project

from dbt_cloud_local.testing import REPO_ROOT, LocalDbtCloud

TOKEN = "test-token-0123456789"
DBT_EXECUTABLE = REPO_ROOT / ".venv-dbt" / "bin" / "dbt"
TERMINAL = (10, 20, 30)


def write_config(root: Path, *, page_size: int = 2, slow_seconds: int = 60, **sections: Any) -> Path:
    """
    A config with the tiny project, two environments on separate DuckDB files, and five jobs.
    ``sections`` replace top-level sections (e.g. ``accounts=[...]``, ``api_tokens=[...]``).
    """
    project_dir = write_tiny_project(root / "project")
    config = {
        "server": {"run_slots": 2, "page_size": page_size, "cancel_grace_seconds": 5},
        "api_tokens": [TOKEN],
        "accounts": [{"id": 1, "name": "Local dbt Cloud"}],
        "projects": [{"id": 1, "account": 1, "name": "jaffle_shop", "dbt_project_dir": str(project_dir)}],
        "environments": [
            {
                "id": 1,
                "project": 1,
                "name": "Production",
                "dbt_executable": str(DBT_EXECUTABLE),
                "env": {"DBT_DUCKDB_PATH": str(root / "warehouse" / "prod.duckdb")},
            },
            {
                "id": 2,
                "project": 1,
                "name": "Staging",
                "deployment_type": "staging",
                "dbt_executable": str(DBT_EXECUTABLE),
                "env": {
                    "DBT_DUCKDB_PATH": str(root / "warehouse" / "staging.duckdb"),
                    "DBT_SLOW_SECONDS": str(slow_seconds),
                },
            },
        ],
        "jobs": [
            {
                "id": 1,
                "name": "eltml build",
                "environment": 1,
                "execute_steps": ["dbt seed", "dbt build --exclude tag:slow"],
                "generate_docs": True,
            },
            {
                "id": 2,
                "name": "Hourly Run",
                "environment": 1,
                "execute_steps": ["dbt build --select tag:hourly"],
            },
            {
                "id": 3,
                "name": "Daily Run",
                "environment": 1,
                "execute_steps": ["dbt build --select tag:daily"],
            },
            {"id": 4, "name": "Slow Run", "environment": 2, "execute_steps": ["dbt run --select tag:slow"]},
            {"id": 5, "name": "Staging Seed", "environment": 2, "execute_steps": ["dbt seed"]},
        ],
    }
    config.update(sections)
    path = root / "config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m dbt_cloud_local`` from the repository root, as a person would."""
    return subprocess.run(
        [sys.executable, "-m", "dbt_cloud_local", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_count(server: LocalDbtCloud) -> int:
    """How many runs the server holds (to prove a refused request queued nothing)."""
    with server.client() as client:
        response = client.get("/api/v2/accounts/1/runs/", params={"limit": 1})
    response.raise_for_status()
    return response.json()["extra"]["pagination"]["total_count"]


def project_variables(server: LocalDbtCloud) -> dict[str, Any]:
    """The project's environment variables as the v3 API lists them."""
    with server.client() as client:
        response = client.get("/api/v3/accounts/1/projects/1/environment-variables/environment/")
    response.raise_for_status()
    return response.json()["data"]["variables"]


def assert_error_envelope(response: httpx.Response, status: int, *mentions: str) -> dict[str, Any]:
    """A refusal in dbt Cloud's status envelope whose messages mention every string in ``mentions``."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json"), response.text[:200]
    body = response.json()
    assert body["data"] is None
    assert set(body["status"]) == {"code", "is_success", "user_message", "developer_message"}
    assert body["status"]["code"] == status
    assert body["status"]["is_success"] is False
    text = f"{body['status']['user_message']} {body['status']['developer_message']}"
    for mention in mentions:
        assert mention in text, (mention, text)
    return body


def wait_for_status(
    server: LocalDbtCloud, run_id: int, statuses: tuple[int, ...] = TERMINAL, timeout: float = 120
) -> dict[str, Any]:
    """Poll the API until the run reaches one of ``statuses``; return the run with its steps."""
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while True:
            response = client.get(
                f"/api/v2/accounts/1/runs/{run_id}/", params={"include_related": "run_steps,trigger"}
            )
            response.raise_for_status()
            run = response.json()["data"]
            if run["status"] in statuses:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"run {run_id} stuck in status {run['status']}: {run.get('status_message')}"
                )
            time.sleep(0.3)


def trigger(server: LocalDbtCloud, job_id: int, **body: Any) -> dict[str, Any]:
    with server.client() as client:
        response = client.post(f"/api/v2/accounts/1/jobs/{job_id}/run/", json={"cause": "pytest", **body})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def run_async_probe(server: LocalDbtCloud, run_id: int, retry_limit: int = 1) -> dict[str, Any]:
    """Run ``async_probe.py`` against ``server`` in a fresh process with the client environment."""
    env = {**os.environ, **server.client_env(), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(key, None)
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("async_probe.py")), str(run_id), str(retry_limit)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# The official OpenAPI specs, as data ---------------------------------------------------------------

#: The prose-free copy of dbt Cloud's official specs (specs/SOURCE.md; ``make specs`` regenerates it).
SPEC_DIR = Path(__file__).resolve().parent / "specs"
SPEC_VERSIONS = ("v2", "v3")


@functools.cache
def spec(version: str) -> dict[str, Any]:
    return json.loads((SPEC_DIR / f"openapi-{version}.json").read_text())


def _nullable(node: Any) -> Any:
    """
    The spec with every schema ``nullable``. The specs declare no field nullable, yet dbt Cloud sends
    ``null`` for a field without a value (``finished_at`` of a running run, ``git_sha`` when none was
    given; the API reference's example responses show them): the local server follows dbt Cloud, so
    responses are validated as if each field allowed null. Types, formats and enums still apply.
    """
    if isinstance(node, dict):
        relaxed = {key: _nullable(value) for key, value in node.items()}
        if "$ref" not in relaxed and any(k in relaxed for k in ("type", "allOf", "oneOf", "anyOf", "enum")):
            relaxed["nullable"] = True
            if "enum" in relaxed and None not in relaxed["enum"]:
                relaxed["enum"] = [*relaxed["enum"], None]
        return relaxed
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    return node


def _inlined(version: str, node: Any) -> Any:
    """``node`` with every ``$ref`` replaced by its schema (for moving a schema between the specs)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inlined(version, resolve(version, node))
        return {key: _inlined(version, value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inlined(version, item) for item in node]
    return node


@functools.cache
def nullable_components(version: str) -> dict[str, Any]:
    components = copy.deepcopy(spec(version)["components"])
    # dbt Cloud sends every job's ``schedule`` with ``date``/``time`` objects (``HumanReadableSchedule``),
    # also where the specs say ``JobDefinitionSchedule`` (strings): a run's ``job``, a project's
    # ``docs_job``. The server follows dbt Cloud (``serializers.schedule``), so the test does too.
    components["schemas"]["JobDefinitionSchedule"] = _inlined(
        "v2", {"$ref": "#/components/schemas/HumanReadableSchedule"}
    )
    if "ConnectionTypeEnum" in components["schemas"]:
        # The local dbt Cloud's warehouse is DuckDB, which dbt Cloud has no connection type for: its
        # project reports "duckdb", what OpenLineage's dbt Cloud processor reads (serializers.project_v3).
        types = components["schemas"]["ConnectionTypeEnum"]
        types["enum"] = [*types["enum"], "duckdb"]
    return _nullable(components)


def resolve(version: str, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec(version)["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def validate_against_spec(version: str, schema: dict[str, Any], body: Any) -> None:
    """Validate ``body`` with the OpenAPI 3.0 read validator (required read-only fields and formats
    count), fields being nullable as dbt Cloud sends them (see ``_nullable``)."""
    from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

    document = {**_nullable(schema), "components": nullable_components(version)}
    errors = sorted(
        OAS30ReadValidator(document, format_checker=oas30_format_checker).iter_errors(body),
        key=lambda e: list(map(str, e.path)),
    )
    messages = [f"{'/'.join(map(str, error.path))}: {error.message[:300]}" for error in errors[:10]]
    assert not errors, "\n".join(messages)


#: Names that steer dbt's own paths or behaviour (dbt's global configs and env-var docs, dbt Cloud's
#: reserved prefixes): the API, the CLI and the config must refuse every one of them.
RESERVED_NAME_EXAMPLES = [
    "DBT_PROJECT_DIR",
    "DBT_PROFILES_DIR",
    "DBT_TARGET_PATH",
    "DBT_LOG_PATH",
    "DBT_PACKAGES_INSTALL_PATH",
    "DBT_STATE",
    "DBT_DEFER_STATE",
    "DBT_FAVOR_STATE",
    "DBT_ARTIFACT_STATE_PATH",
    "DBT_PROFILE",
    "DBT_TARGET",
    "DBT_SEND_ANONYMOUS_USAGE_STATS",
    "DBT_LOG_FORMAT",
    "DBT_QUIET",
    "DBT_PRINTER_WIDTH",
    "DBT_USE_COLORS",
    "DBT_WRITE_JSON",
    "DBT_PARTIAL_PARSE",
    "DBT_FAIL_FAST",
    "DBT_WARN_ERROR",
    "DBT_ENGINE_PROFILES_DIR",
    "DBT_CLOUD_RUN_ID",
    "DBT_ENGINE_TARGET_PATH",
    "DBT_RECORDER_MODE",
    "DBT_CLOUD_JOB_ID",
]
