"""
Every API route the server serves, called for real and validated against the official OpenAPI specs.

The response schemas are taken from ``openapi-v2.yaml``/``openapi-v3.yaml`` (used as data) and checked
with the OpenAPI 3.0 response ("read") validator, so required read-only fields count,
formats included (``date-time`` must be RFC 3339); fields may be ``null`` as dbt Cloud sends them
(the specs declare none nullable, see ``helpers._nullable``). Every route of both specs, served or
refused, is walked by ``test_contract.py``; these cases add the calls the provider makes, with their
query parameters and bodies.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import spec, trigger, validate_against_spec, wait_for_status

from dbt_cloud_local.testing import LocalDbtCloud


def response_schema(version: str, path: str, method: str, status: int) -> dict[str, Any]:
    operation = spec(version)["paths"][path][method]
    return operation["responses"][str(status)]["content"]["application/json"]["schema"]


def validate(version: str, schema: dict[str, Any], body: Any) -> None:
    """Fields may be null where the spec forgets ``nullable`` (see ``helpers._nullable``)."""
    validate_against_spec(version, schema, body)


def status_schema(version: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"$ref": "#/components/schemas/ResponseStatus"}},
    }


@pytest.fixture(scope="module")
def runs(server: LocalDbtCloud) -> dict[str, int]:
    """A finished run with steps and artifacts, and a cancelled one."""
    done = trigger(server, 5, steps_override=["dbt seed --select raw_customers"])
    queued = trigger(server, 5)
    with server.client() as client:
        client.post(f"/api/v2/accounts/1/runs/{queued['id']}/cancel/").raise_for_status()
    wait_for_status(server, done["id"])
    return {"done": done["id"], "cancelled": queued["id"]}


def cases(runs: dict[str, int]) -> list[tuple[str, str, str, str, int, dict[str, Any], Any]]:
    """(spec version, spec path, method, URL, expected status, query params, JSON body)."""
    v2, v3 = "/api/v2/accounts/{account_id}", "/api/v3/accounts/{account_id}"
    run_id = runs["done"]
    return [
        ("v2", "/api/v2/accounts/", "get", "/", 200, {}, None),
        ("v2", "/api/v2/accounts/", "get", "/api/v2/accounts/", 200, {}, None),
        ("v2", f"{v2}/", "get", "/api/v2/accounts/1/", 200, {}, None),
        (
            "v2",
            f"{v2}/jobs/",
            "get",
            "/api/v2/accounts/1/jobs/",
            200,
            {"project_id": 1, "order_by": "-id"},
            None,
        ),
        ("v2", f"{v2}/jobs/{{id}}/", "get", "/api/v2/accounts/1/jobs/1", 200, {}, None),
        ("v2", f"{v2}/jobs/{{id}}/", "get", "/api/v2/accounts/1/jobs/1/", 200, {}, None),
        (
            "v2",
            f"{v2}/jobs/{{job_id}}/run/",
            "post",
            "/api/v2/accounts/1/jobs/5/run/",
            200,
            {},
            {"cause": "spec", "steps_override": ["dbt parse"], "schema_override": None, "git_branch": None},
        ),
        ("v2", f"{v2}/jobs/{{job_id}}/rerun/", "post", "/api/v2/accounts/1/jobs/5/rerun/", 200, {}, None),
        (
            "v2",
            f"{v2}/runs/",
            "get",
            "/api/v2/accounts/1/runs/",
            200,
            {"include_related": "run_steps,job,trigger,environment", "order_by": "-created_at", "limit": 5},
            None,
        ),
        (
            "v2",
            f"{v2}/runs/{{id}}/",
            "get",
            f"/api/v2/accounts/1/runs/{run_id}/",
            200,
            {"include_related": "run_steps,job,trigger,environment,debug_logs"},
            None,
        ),
        (
            "v2",
            f"{v2}/runs/{{run_id}}/cancel/",
            "post",
            f"/api/v2/accounts/1/runs/{runs['cancelled']}/cancel/",
            200,
            {},
            None,
        ),
        (
            "v2",
            f"{v2}/runs/{{run_id}}/artifacts/",
            "get",
            f"/api/v2/accounts/1/runs/{run_id}/artifacts/",
            200,
            {},
            None,
        ),
        (
            "v2",
            f"{v2}/runs/{{run_id}}/retry/",
            "get",
            f"/api/v2/accounts/1/runs/{run_id}/retry/",
            200,
            {},
            None,
        ),
        ("v2", f"{v2}/steps/{{id}}/", "get", "/api/v2/accounts/1/steps/1/", 200, {}, None),
        (
            "v3",
            f"{v3}/projects/",
            "get",
            "/api/v3/accounts/1/projects/",
            200,
            {"name__icontains": "jaffle"},
            None,
        ),
        ("v3", f"{v3}/projects/{{id}}/", "get", "/api/v3/accounts/1/projects/1/", 200, {}, None),
        (
            "v3",
            f"{v3}/projects/{{project_id}}/environments/",
            "get",
            "/api/v3/accounts/1/projects/1/environments/",
            200,
            {"name__icontains": "prod"},
            None,
        ),
        (
            "v3",
            f"{v3}/projects/{{project_id}}/environments/{{id}}/",
            "get",
            "/api/v3/accounts/1/projects/1/environments/1/",
            200,
            {},
            None,
        ),
        (
            "v3",
            f"{v3}/projects/{{project_id}}/environment-variables/bulk/",
            "post",
            "/api/v3/accounts/1/projects/1/environment-variables/bulk/",
            200,
            {},
            {"env_var": [{"new_name": "DBT_SPEC_CHECK", "project": "a", "Staging": "b"}]},
        ),
        (
            "v3",
            f"{v3}/projects/{{project_id}}/environment-variables/bulk/",
            "put",
            "/api/v3/accounts/1/projects/1/environment-variables/bulk/",
            200,
            {},
            {"env_vars": {"name": "DBT_SPEC_CHECK", "Staging": None}},
        ),
        (
            "v3",
            f"{v3}/projects/{{project_id}}/environment-variables/environment/",
            "get",
            "/api/v3/accounts/1/projects/1/environment-variables/environment/",
            200,
            {},
            None,
        ),
    ]


def test_responses_validate_against_official_specs(server: LocalDbtCloud, runs: dict[str, int]) -> None:
    with server.client() as client:
        for version, spec_path, method, url, expected, params, body in cases(runs):
            response = client.request(method.upper(), url, params=params, json=body)
            assert response.status_code == expected, (url, response.text)
            assert response.headers["content-type"].startswith("application/json")
            validate(version, response_schema(version, spec_path, method, expected), response.json())


def test_artifacts_and_delete_match_the_spec(server: LocalDbtCloud, runs: dict[str, int]) -> None:
    """Artifact files are raw (the spec gives them no schema); the bulk delete answers 204."""
    with server.client() as client:
        manifest = client.get(
            f"/api/v2/accounts/1/runs/{runs['done']}/artifacts/manifest.json", params={"step": 4}
        )
        assert manifest.status_code == 200
        assert manifest.headers["content-type"] == "application/json"
        assert manifest.json()["metadata"]["dbt_schema_version"].startswith("https://schemas.getdbt.com/")
        compiled = client.get(f"/api/v2/accounts/1/runs/{runs['done']}/artifacts/")
        assert "run_results.json" in compiled.json()["data"]
        deleted = client.request(
            "DELETE",
            "/api/v3/accounts/1/projects/1/environment-variables/bulk/",
            json={"env_var_names": ["DBT_SPEC_CHECK"]},
        )
        assert deleted.status_code == 204
        assert (
            "DBT_SPEC_CHECK"
            not in client.get("/api/v3/accounts/1/projects/1/environment-variables/environment/").json()[
                "data"
            ]["variables"]
        )


def test_env_var_value_routes_match_the_spec(server: LocalDbtCloud) -> None:
    """Create, update and delete one value (a job override, as dbt-jobs-as-code writes them)."""
    base = "/api/v3/accounts/1/projects/1/environment-variables/"
    spec_path = "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/"
    body = {"account_id": 1, "project_id": 1, "name": "DBT_SPEC_VALUE", "type": "job", "job_definition_id": 5}
    with server.client() as client:
        created = client.post(base, json={**body, "raw_value": "a"})
        assert created.status_code == 200, created.text
        validate("v3", response_schema("v3", spec_path, "post", 200), created.json())
        value_id = created.json()["data"]["id"]
        updated = client.post(f"{base}{value_id}/", json={**body, "raw_value": "b"})
        assert updated.status_code == 200, updated.text
        validate("v3", response_schema("v3", f"{spec_path}{{id}}/", "post", 200), updated.json())
        assert client.delete(f"{base}{value_id}/").status_code == 204


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", "/api/v2/accounts/99/", 404),
        ("GET", "/api/v2/accounts/1/jobs/999/", 404),
        ("GET", "/api/v2/accounts/1/runs/999999/", 404),
        ("GET", "/api/v2/accounts/1/runs/not-a-number/", 400),
        ("GET", "/api/v2/accounts/1/runs/", 400),  # limit=1000 below
        ("GET", "/api/v2/nothing/here/", 404),
        ("DELETE", "/api/v2/accounts/1/", 405),
        ("POST", "/api/v2/accounts/1/jobs/1/run/", 400),  # no cause
    ],
)
def test_errors_use_the_status_envelope(server: LocalDbtCloud, method: str, url: str, expected: int) -> None:
    with server.client() as client:
        params = {"limit": 1000} if url.endswith("/runs/") else {}
        response = client.request(method, url, params=params, json={} if method == "POST" else None)
    assert response.status_code == expected, response.text
    body = response.json()
    validate("v2", status_schema("v2"), body)
    assert body["status"]["code"] == expected
    assert body["status"]["is_success"] is False
    assert body["status"]["user_message"]
