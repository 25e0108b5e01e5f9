"""
The contract with dbt Cloud clients, derived from the app's own route table so no route escapes it.

For every (method, route) the app serves:

* the path answers the same with and without its trailing slash (no redirect);
* an API response validates against the official spec of that route (fields nullable, as dbt Cloud
  sends them: see ``helpers._nullable``) and lacks no field its schema lists (``required`` and
  ``properties``, recursively through nested objects and lists): a field without a value is ``null``;
* every list carries the pagination envelope and every error the status envelope.

Routes outside the specs are listed in ``LOCAL_ONLY`` with the reason; anything else must be in a spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers import resolve, spec, trigger, validate_against_spec, wait_for_status

from dbt_cloud_local.app import create_app
from dbt_cloud_local.testing import LocalDbtCloud

#: Served routes the specs do not describe: the local server's own routes, its HTML run pages, and
#: dbt Cloud routes that clients call although the published specs leave them out.
LOCAL_ONLY = {
    "/api/v3/accounts/{account_id}/environments/": "dbt-jobs-as-code `validate --online` calls it; not in "
    "the v3 spec (test_jobs_api.py validates its items as EnvironmentV3Response)",
    "/_local/health": "health check of the local server",
    "/_local/faults": "fault injection of the local server",
    "/deploy/": "HTML run index (dbt Cloud's web UI, not its API)",
    "/deploy/{account_id}/runs/": "HTML run index (web UI)",
    "/deploy/{account_id}/projects/{project_id}/runs/{run_id}/": "HTML run page (web UI)",
}
#: ``GET /`` is the provider's ``test_connection``: it answers the account list.
ALIASES = {"/": "/api/v2/accounts/"}
#: A webhook subscription to a closed loopback port (its test event is refused at once).
WEBHOOK = {"name": "contract", "client_url": "http://127.0.0.1:9/", "event_types": ["job.run.completed"],
           "active": True, "job_ids": [999]}  # fmt: skip
#: Request bodies of the routes that need one.
BODIES = {
    ("POST", "/api/v2/accounts/{account_id}/jobs/{job_id}/run/"): {"cause": "contract"},
    ("POST", "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/bulk/"): {
        "env_var": [{"new_name": "DBT_CONTRACT", "project": "a"}]
    },
    ("PUT", "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/bulk/"): {
        "env_vars": {"name": "DBT_CONTRACT", "project": "b"}
    },
    ("DELETE", "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/bulk/"): {
        "env_var_names": ["DBT_CONTRACT"]
    },
    ("PUT", "/_local/faults"): {},
    ("POST", "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/"): {
        "account_id": 1,
        "project_id": 1,
        "name": "DBT_CONTRACT_JOB",
        "type": "job",
        "job_definition_id": 5,
        "raw_value": "a",
    },
    ("POST", "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/{env_var_id}/"): {
        "raw_value": "changed by the contract test"
    },
    ("POST", "/api/v2/accounts/{account_id}/jobs/"): {
        "name": "Contract job",
        "environment_id": 1,
        "execute_steps": ["dbt seed"],
    },
    ("POST", "/api/v2/accounts/{account_id}/jobs/{job_id}/"): {"description": "changed by the contract test"},
    ("POST", "/api/v3/accounts/{account_id}/webhooks/subscriptions"): WEBHOOK,
    ("PUT", "/api/v3/accounts/{account_id}/webhooks/subscription/{subscription_id}"): WEBHOOK,
}
#: Query parameters of the routes that need some.
PARAMS = {
    ("GET", "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/job/"): {
        "job_definition_id": 5
    },
}
#: Routes that change or delete the job in their path: each call gets a job of its own (deleted after).
JOB_WRITES = {
    ("POST", "/api/v2/accounts/{account_id}/jobs/{job_id}/"),
    ("DELETE", "/api/v2/accounts/{account_id}/jobs/{job_id}/"),
}
SUBSCRIPTION_DELETE = ("DELETE", "/api/v3/accounts/{account_id}/webhooks/subscription/{subscription_id}")
#: One env var value: a create is undone before the next call, a delete gets a value of its own.
ENV_VAR_CREATE = ("POST", "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/")
ENV_VAR_DELETE = (
    "DELETE",
    "/api/v3/accounts/{account_id}/projects/{project_id}/environment-variables/{env_var_id}/",
)
#: Responses dbt Cloud gives where the spec documents another one. DELETE of a job: the spec says a
#: bare 204, dbt Cloud answers 200 with the deleted job (state 2), as the local server does.
RESPONSE_SCHEMAS = {
    ("DELETE", "/api/v2/accounts/{account_id}/jobs/{job_id}/", 200): {
        "$ref": "#/components/schemas/HumanReadableJobDefinitionEnveloped"
    },
}
#: Keys whose values move between two calls (a queued run advancing, the clock).
VOLATILE = re.compile(
    r"_at$|_at_humanized$|duration|^id$|_id$|logs$|^status|^in_progress$|^is_|^href$|_path$|^can_retry$"
    r"|^retry_not_supported_reason$|^notifications_sent$|^artifacts_saved$|^has_|^run_failure_count$|^cause$"
    r"|^hmac_secret$"
)


def served_routes() -> list[tuple[str, str]]:
    """Every (method, path template) of the app, read from its route table."""
    app = create_app(None, None)  # type: ignore[arg-type]  # only the route table is read
    routes = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                routes.append((method, route.path))  # type: ignore[attr-defined]
    return routes


@pytest.fixture(scope="module")
def ids(server: LocalDbtCloud) -> dict[str, Any]:
    """Values for every path parameter: a finished run with steps and artifacts."""
    done = trigger(server, 5, steps_override=["dbt seed --select raw_customers"])
    finished = wait_for_status(server, done["id"])
    assert finished["status"] == 10, finished
    return {
        "account_id": 1,
        "project_id": 1,
        "environment_id": 1,
        "job_id": 5,
        "run_id": done["id"],
        "step_id": finished["run_steps"][0]["id"],
        "path": "manifest.json",
        "subscription_id": scratch_subscription(server),
        "env_var_id": scratch_env_var(server, "DBT_CONTRACT_UPDATE"),
    }


def scratch_env_var(server: LocalDbtCloud, name: str = "DBT_CONTRACT_SCRATCH") -> int:
    """A job override of its own (job 5) for the routes that change or delete one value."""
    body = {**BODIES[ENV_VAR_CREATE], "name": name, "raw_value": "x"}
    with server.client() as client:
        response = client.post("/api/v3/accounts/1/projects/1/environment-variables/", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def delete_env_var(client: httpx.Client, response: httpx.Response) -> None:
    if response.status_code < 300:
        client.delete(f"/api/v3/accounts/1/projects/1/environment-variables/{response.json()['data']['id']}/")


def scratch_subscription(server: LocalDbtCloud) -> str:
    """A webhook subscription of its own (the DELETE route gets a fresh one per call)."""
    with server.client() as client:
        response = client.post("/api/v3/accounts/1/webhooks/subscriptions", json=WEBHOOK)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def failed_latest_run(server: LocalDbtCloud) -> int:
    """A failed run with run results that is its job's latest: what ``POST .../runs/{id}/retry/`` needs."""
    bulk = "/api/v3/accounts/1/projects/1/environment-variables/bulk/"
    with server.client() as client:
        set_var = {"env_var": [{"new_name": "DBT_FAIL_MODEL", "Production": "stg_orders"}]}
        assert client.post(bulk, json=set_var).status_code == 200
        try:
            run = trigger(server, 2, steps_override=["dbt seed", "dbt build --select tag:hourly"])
            failed = wait_for_status(server, run["id"])
        finally:
            client.put(bulk, json={"env_vars": {"name": "DBT_FAIL_MODEL", "Production": None}})
    assert failed["status"] == 20, failed["status_message"]
    return failed["id"]


def concrete(template: str, ids: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in ids, f"no value for path parameter {name!r} of {template}: add one to `ids`"
        return str(ids[name])

    return re.sub(r"\{([^}]+)\}", value, template)


def spec_operation(method: str, template: str) -> tuple[str, str, dict[str, Any]] | None:
    """(version, spec path, operation) for a served route; None for ``LOCAL_ONLY`` routes."""
    if template in LOCAL_ONLY:
        return None
    template = ALIASES.get(template, template)
    shape = re.sub(r"\{[^}]+\}", "{}", template.replace("{path:path}", "{remainder}"))
    for version in ("v2", "v3"):
        for path, operations in spec(version)["paths"].items():
            if re.sub(r"\{[^}]+\}", "{}", path) == shape and method.lower() in operations:
                return version, path, operations[method.lower()]
    raise AssertionError(f"{method} {template} is in no spec; add it to LOCAL_ONLY with the reason")


def json_schema(operation: dict[str, Any], status: int) -> dict[str, Any] | None:
    content = operation["responses"].get(str(status), {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def _merged(version: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Properties and required keys of a schema, through ``allOf``."""
    schema = resolve(version, schema)
    properties = dict(schema.get("properties", {}))
    required = list(schema.get("required", []))
    for part in schema.get("allOf", []):
        merged = _merged(version, part)
        properties.update(merged["properties"])
        required.extend(merged["required"])
    return {"properties": properties, "required": required, "items": schema.get("items")}


def missing_fields(version: str, schema: dict[str, Any], value: Any, where: str = "") -> Iterator[str]:
    """Fields the schema lists (required or not) that ``value`` omits, recursively."""
    merged = _merged(version, schema)
    if isinstance(value, list) and merged["items"]:
        for index, item in enumerate(value):
            yield from missing_fields(version, merged["items"], item, f"{where}[{index}]")
        return
    if not isinstance(value, dict):
        return
    for name in dict.fromkeys([*merged["properties"], *merged["required"]]):
        if name not in value:
            yield f"{where}.{name}"
        elif name in merged["properties"]:
            yield from missing_fields(version, merged["properties"][name], value[name], f"{where}.{name}")


def shape(value: Any, key: str = "") -> Any:
    """``value`` with volatile values blanked: what must be equal between two calls."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__ if VOLATILE.search(key) else value


def call(client: httpx.Client, method: str, template: str, url: str) -> httpx.Response:
    body = BODIES.get((method, template))
    params = {"step": 1} if template.endswith("{path:path}") else PARAMS.get((method, template), {})
    return client.request(method, url, json=body, params=params)


def scratch_job(client: httpx.Client) -> int:
    """A job of its own for a route that changes or deletes one (the shared server keeps its jobs)."""
    body = {"name": "Contract scratch", "environment_id": 2, "execute_steps": ["dbt seed"]}
    response = client.post("/api/v2/accounts/1/jobs/", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def delete_jobs(client: httpx.Client, *responses: httpx.Response) -> None:
    """Delete the jobs that create/update calls answered with, so the shared server lists its five jobs."""
    for response in responses:
        if response.status_code < 300:
            client.delete(f"/api/v2/accounts/1/jobs/{response.json()['data']['id']}/")


ROUTES = served_routes()


def test_the_route_table_is_read() -> None:
    """The derivation itself: the provider's routes are among those walked."""
    assert ("GET", "/api/v2/accounts/{account_id}/runs/{run_id}/") in ROUTES
    assert ("POST", "/api/v2/accounts/{account_id}/jobs/{job_id}/run/") in ROUTES
    assert len(ROUTES) >= 20


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
def test_route_keeps_the_contract(
    server: LocalDbtCloud, ids: dict[str, Any], method: str, template: str
) -> None:
    retry = method == "POST" and template.endswith("/runs/{run_id}/retry/")  # one failed run per call
    job_write = (method, template) in JOB_WRITES
    with server.client() as client:
        own = {"job_id": scratch_job(client)} if job_write else {}
        if (method, template) == SUBSCRIPTION_DELETE:
            own = {"subscription_id": scratch_subscription(server)}
        if (method, template) == ENV_VAR_DELETE:
            own = {"env_var_id": scratch_env_var(server)}
        url = concrete(template, ids | own | ({"run_id": failed_latest_run(server)} if retry else {}))
        other = url[:-1] if url.endswith("/") else url + "/"
        if url == "/":
            other = "/api/v2/accounts"  # the root has no slash-less form; its alias stands in
        first = call(client, method, template, url)
        if (method, template) == ENV_VAR_CREATE:
            delete_env_var(client, first)
        if (method, template) == ENV_VAR_DELETE:
            other = concrete(template, ids | {"env_var_id": scratch_env_var(server)}).rstrip("/")
        if job_write:
            other = concrete(template, ids | {"job_id": scratch_job(client)}).rstrip("/")
        if (method, template) == SUBSCRIPTION_DELETE:
            other = concrete(template, ids | {"subscription_id": scratch_subscription(server)}) + "/"
        if retry and first.status_code < 300:
            client.post(f"/api/v2/accounts/1/runs/{first.json()['data']['id']}/cancel/")
            other = concrete(template, ids | {"run_id": failed_latest_run(server)}).rstrip("/")
        second = call(client, method, template, other)
        if (method, template) == ENV_VAR_CREATE:
            delete_env_var(client, second)
        if method == "POST" and template.endswith(("/run/", "/rerun/", "/retry/")):
            for response in (first, second):  # leave the shared server idle
                if response.status_code < 300:
                    client.post(f"/api/v2/accounts/1/runs/{response.json()['data']['id']}/cancel/")
        if (template == "/api/v2/accounts/{account_id}/jobs/" and method == "POST") or job_write:
            delete_jobs(client, first, second)
    assert first.status_code < 300, (url, first.text[:500])
    content_type = first.headers.get("content-type", "")
    assert (second.status_code, second.headers.get("content-type", "")) == (
        first.status_code,
        content_type,
    ), (
        other,
        second.text[:500],
    )
    assert "location" not in second.headers
    if content_type.startswith("application/json"):
        assert shape(second.json()) == shape(first.json()), other
    elif content_type.startswith("text/html"):
        assert second.text.count("<tr>") == first.text.count("<tr>"), other

    operation = spec_operation(method, template)
    if operation is None:
        return
    version, _, definition = operation
    schema = RESPONSE_SCHEMAS.get((method, template, first.status_code)) or json_schema(
        definition, first.status_code
    )
    if schema is None:  # raw artifact files and 204s have no schema
        assert template.endswith("{path:path}") or first.status_code == 204, (method, template)
        return
    body = first.json()
    validate_against_spec(version, schema, body)
    missing = sorted(set(missing_fields(version, schema, body)))
    assert not missing, f"{method} {template} omits fields its schema lists: {missing}"
    if method == "GET" and isinstance(body.get("data"), list):
        assert set(body["extra"]["filters"]) >= {"limit", "offset"}, body["extra"]
        assert body["extra"]["pagination"] == {
            "count": len(body["data"]),
            "total_count": body["extra"]["pagination"]["total_count"],
        }


API_ROUTES = [(method, template) for method, template in ROUTES if template.startswith("/api/")]


@pytest.mark.parametrize(("method", "template"), API_ROUTES, ids=[f"{m} {t}" for m, t in API_ROUTES])
def test_route_errors_use_the_envelope(server: LocalDbtCloud, method: str, template: str) -> None:
    """Without a token every API route answers 401 in the status envelope, with or without the slash;
    with one, an unknown account answers 404."""
    url = concrete(template, {"account_id": 987654, "project_id": 1, "environment_id": 1, "job_id": 1,
                              "run_id": 1, "step_id": 1, "path": "manifest.json",
                              "subscription_id": "wsu_unknown", "env_var_id": 1})  # fmt: skip
    with httpx.Client(base_url=server.base_url, verify=server.trust) as anonymous:
        for form in (url, url.rstrip("/")):
            refused = anonymous.request(method, form)
            assert refused.status_code == 401, (form, refused.text[:300])
            validate_against_spec(
                "v2", {"$ref": "#/components/schemas/ResponseStatus"}, refused.json()["status"]
            )
            assert refused.json()["data"] is None
    if "{account_id}" not in template:
        return
    with server.client() as client:
        for form in (url, url.rstrip("/")):
            missing = call(client, method, template, form)
            assert missing.status_code == 404, (form, missing.text[:300])
            status = missing.json()["status"]
            assert (status["code"], status["is_success"]) == (404, False)
            assert missing.json()["data"] is None


def test_missing_fields_detects_an_omission() -> None:
    """The checker itself can fail: a job without ``schedule`` or a nested ``settings.threads``."""
    schema = {"$ref": "#/components/schemas/HumanReadableJobDefinitionResponse"}
    fields = _merged("v2", schema)["properties"]
    complete = {name: None for name in fields}
    assert list(missing_fields("v2", schema, complete)) == []
    without = {name: None for name in fields if name != "schedule"}
    assert list(missing_fields("v2", schema, without)) == [".schedule"]
    nested = complete | {"settings": {"target_name": "default"}}
    assert list(missing_fields("v2", schema, nested)) == [".settings.threads"]


def test_validation_still_checks_types_and_enums() -> None:
    """Fields may be null, but a wrong type or an unknown enumeration value still fails."""
    schema = {"$ref": "#/components/schemas/HumanReadableJobDefinitionResponse"}
    valid = dict.fromkeys(_merged("v2", schema)["properties"])
    validate_against_spec("v2", schema, valid)
    with pytest.raises(AssertionError, match="job_type"):
        validate_against_spec("v2", schema, valid | {"job_type": "nightly"})
    with pytest.raises(AssertionError, match="settings/threads"):
        validate_against_spec("v2", schema, valid | {"settings": {"threads": "four", "target_name": "x"}})
    with pytest.raises(AssertionError, match="created_at"):
        validate_against_spec("v2", schema, valid | {"created_at": "yesterday"})
