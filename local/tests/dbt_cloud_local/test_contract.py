"""
The contract with dbt Cloud clients, derived from dbt Cloud's official specs (``specs/``), so that a
route the local dbt Cloud does not serve is checked as well as one it does.

Every (method, path) of both specs must answer one of two ways, with and without its trailing slash:

* **served**: a 2xx whose body validates against the spec's schema of that answer (fields nullable,
  as dbt Cloud sends them: ``helpers._nullable``) and lacks no field the schema lists (``required``
  and ``properties``, recursively); a list carries the pagination envelope;
* **refused on purpose**: 400 in dbt Cloud's status envelope whose ``developer_message`` starts with
  ``not_supported_locally`` (``dbt_cloud_local/api/unsupported.py`` holds the table and the reasons).

Anything else (a 404 because nobody serves the path, a 5xx, an invalid body) fails, and the checker
itself is shown to fail on a route no one serves. The app's own route table is checked the other way:
every route it serves is in a spec, or in ``LOCAL_ONLY`` with the reason.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from helpers import SPEC_VERSIONS, resolve, spec, trigger, validate_against_spec, wait_for_status

from dbt_cloud_local.api.unsupported import MARKER, REFUSED
from dbt_cloud_local.app import create_app
from dbt_cloud_local.testing import LocalDbtCloud

_V2, _V3 = "/api/v2/accounts/{account_id}", "/api/v3/accounts/{account_id}"
_P3 = f"{_V3}/projects/{{project_id}}"

#: Served routes the specs do not describe: the local server's own routes, its HTML run pages, and
#: dbt Cloud routes that clients call although the published specs leave them out.
LOCAL_ONLY = {
    "/": "the provider's test_connection (GET /): the account list",
    "/api/v3/accounts/{account_id}/environments/": "dbt-jobs-as-code `validate --online` calls it; not in "
    "the v3 spec (test_jobs_api.py validates its items as EnvironmentV3Response)",
    "/_local/health": "health check of the local server",
    "/_local/faults": "fault injection of the local server",
    "/deploy/": "HTML run index (dbt Cloud's web UI, not its API)",
    "/deploy/{account_id}/runs/": "HTML run index (web UI)",
    "/deploy/{account_id}/projects/{project_id}/runs/{run_id}/": "HTML run page (web UI)",
}
#: A webhook subscription to a closed loopback port (its test event is refused at once).
WEBHOOK = {"name": "contract", "client_url": "http://127.0.0.1:9/", "event_types": ["job.run.completed"],
           "active": True, "job_ids": [999]}  # fmt: skip
#: The bodies of the served routes that take one (keyed by the spec's method and path).
BODIES: dict[tuple[str, str], Any] = {
    ("POST", f"{_V2}/jobs/"): {"name": "Contract job", "environment_id": 1, "execute_steps": ["dbt seed"]},
    ("POST", f"{_V2}/jobs/{{id}}/"): {"description": "changed by the contract test"},
    ("POST", f"{_V2}/jobs/{{job_id}}/run/"): {"cause": "contract"},
    ("POST", f"{_P3}/environment-variables/bulk/"): {"env_var": [{"new_name": "DBT_CONTRACT",
                                                                  "project": "a"}]},
    ("PUT", f"{_P3}/environment-variables/bulk/"): {"env_vars": {"name": "DBT_CONTRACT", "project": "b"}},
    ("DELETE", f"{_P3}/environment-variables/bulk/"): {"env_var_names": ["DBT_CONTRACT"]},
    ("POST", f"{_P3}/environment-variables/"): {"account_id": 1, "project_id": 1, "name": "DBT_CONTRACT_JOB",
                                                 "type": "job", "job_definition_id": 5, "raw_value": "a"},
    ("POST", f"{_P3}/environment-variables/{{id}}/"): {"raw_value": "changed by the contract test"},
    ("POST", f"{_V3}/webhooks/subscriptions"): WEBHOOK,
    ("PUT", f"{_V3}/webhooks/subscription/{{subscription_id}}"): WEBHOOK,
}  # fmt: skip
#: Query parameters of the served routes that need some.
PARAMS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", f"{_P3}/environment-variables/job/"): {"job_definition_id": 5},
    ("GET", f"{_V2}/runs/"): {"include_related": "run_steps,job,trigger,environment", "limit": 5},
    ("GET", f"{_V2}/runs/{{id}}/"): {"include_related": "run_steps,job,trigger,environment,debug_logs"},
}
#: Answers dbt Cloud gives where the spec documents another. DELETE of a job: the spec says a bare 204,
#: dbt Cloud answers 200 with the deleted job (state 2), as the local server does. Two v3 lists declare
#: ``data`` a single object (a spec slip, their names say list): dbt Cloud and the local server send a list.
RESPONSE_SCHEMAS: dict[tuple[str, str, int], dict[str, Any]] = {
    ("DELETE", f"{_V2}/jobs/{{id}}/", 200): {
        "$ref": "#/components/schemas/HumanReadableJobDefinitionEnveloped"
    },
    **{
        ("GET", path, 200): {
            "type": "object",
            "required": ["data"],
            "properties": {
                "status": {"$ref": "#/components/schemas/Status"},
                "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
                "extra": {"type": "object"},
                "error_code": {"type": "integer"},
            },
        }
        for path, item in (
            (f"{_P3}/profiles/", "ProfileList"),
            (f"{_V3}/connections/", "AccountConnectionList"),
        )
    },
}
#: Keys whose values move between two calls (a queued run advancing, the clock).
VOLATILE = re.compile(
    r"_at$|_at_humanized$|duration|^id$|_id$|logs$|^status|^in_progress$|^is_|^href$|_path$|^can_retry$"
    r"|^retry_not_supported_reason$|^notifications_sent$|^artifacts_saved$|^has_|^run_failure_count$|^cause$"
    r"|^hmac_secret$|^name$|^event_id$|^verification"
)


@dataclass(frozen=True)
class SpecRoute:
    """One operation of a spec: what the contract walks."""

    version: str
    method: str
    path: str
    operation: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    def __str__(self) -> str:
        return f"{self.version} {self.method} {self.path}"


def spec_routes(specs: dict[str, dict[str, Any]]) -> list[SpecRoute]:
    """Every (method, path) of the specs, in their order."""
    return [
        SpecRoute(version, method.upper(), path, operation)
        for version, document in specs.items()
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


SPECS = {version: spec(version) for version in SPEC_VERSIONS}
ROUTES = spec_routes(SPECS)


# Concrete requests ---------------------------------------------------------------------------------

#: ``{id}`` in the specs names whatever resource the segment before it lists.
_ID_OF = {"projects": "project_id", "environments": "environment_id", "jobs": "job_id", "runs": "run_id",
          "steps": "step_id", "users": "user_id", "environment-variables": "env_var_id"}  # fmt: skip


def concrete(path: str, ids: dict[str, Any]) -> str:
    """``path`` with each parameter filled from ``ids`` (``{id}`` by its segment; others: 1)."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        match = re.fullmatch(r"\{([^}]+)\}", part)
        if match:
            name = match.group(1)
            if name == "id":
                name = _ID_OF.get(parts[index - 1], "id")
            parts[index] = str(ids.get(name, 1))
    return "/".join(parts)


def other_form(url: str) -> str:
    """The URL with its trailing slash toggled."""
    return url[:-1] if url.endswith("/") else url + "/"


# Checking one answer -------------------------------------------------------------------------------


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


def refused_on_purpose(response: httpx.Response) -> bool:
    """400 in dbt Cloud's status envelope, marked as a deliberate local refusal."""
    if response.status_code != 400 or not response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        return False
    body = response.json()
    status = body.get("status") or {}
    return (
        body.get("data") is None
        and set(status) == {"code", "is_success", "user_message", "developer_message"}
        and (status["code"], status["is_success"]) == (400, False)
        and bool(status["user_message"])
        and str(status["developer_message"]).startswith(f"{MARKER}: ")
    )


def _schema(route: SpecRoute, status: int) -> dict[str, Any] | None:
    override = RESPONSE_SCHEMAS.get((route.method, route.path, status))
    if override is not None:
        return override
    content = route.operation["responses"].get(str(status), {}).get("content", {})
    return content.get("application/json", {}).get("schema")


def served_problems(route: SpecRoute, response: httpx.Response) -> list[str]:
    """What is wrong with a served answer (none: a 2xx the spec's schema accepts)."""
    if not 200 <= response.status_code < 300:
        return [f"{route}: answered {response.status_code}: {response.text[:300]}"]
    documented = str(response.status_code) in route.operation["responses"]
    schema = _schema(route, response.status_code)
    if not documented and (route.method, route.path, response.status_code) not in RESPONSE_SCHEMAS:
        documents = list(route.operation["responses"])
        return [f"{route}: answered {response.status_code}, the spec documents {documents}"]
    if schema is None:  # raw artifact files and 204s have no schema
        return []
    body = response.json()
    try:
        validate_against_spec(route.version, schema, body)
    except AssertionError as error:
        return [f"{route}: the answer does not validate against the spec:\n{error}"]
    missing = sorted(set(missing_fields(route.version, schema, body)))
    if missing:
        return [f"{route}: the answer omits fields its schema lists: {missing}"]
    if route.method == "GET" and isinstance(body.get("data"), list):
        extra = body.get("extra") or {}
        if not {"limit", "offset"} <= set(extra.get("filters") or {}) or (extra.get("pagination") or {}).get(
            "count"
        ) != len(body["data"]):
            return [f"{route}: a list without the pagination envelope: {extra}"]
    return []


def check(route: SpecRoute, first: httpx.Response, second: httpx.Response) -> list[str]:
    """The contract for one route, given its answers with and without the trailing slash (in either
    order): refused on purpose both times, or served both times, validly and alike."""
    if refused_on_purpose(first) and refused_on_purpose(second):
        return []
    if refused_on_purpose(first) or refused_on_purpose(second):
        return [f"{route}: refused in one form only ({first.status_code} and {second.status_code})"]
    problems = served_problems(route, first)
    if problems:
        return [*problems, f"  (neither served with a valid answer nor refused with {MARKER!r})"]
    content_type = first.headers.get("content-type", "")
    if (second.status_code, second.headers.get("content-type", "")) != (first.status_code, content_type):
        return [f"{route}: the other slash form answered {second.status_code}: {second.text[:300]}"]
    if "location" in second.headers:
        return [f"{route}: redirected instead of answering"]
    if content_type.startswith("application/json") and shape(second.json()) != shape(first.json()):
        return [f"{route}: the two slash forms answered differently"]
    return []


# Fixtures: the values of path parameters, and scratch objects for writes ------------------------------


@pytest.fixture(scope="module")
def ids(server: LocalDbtCloud) -> dict[str, Any]:
    """Values for the path parameters: a finished run of job 5 with steps and artifacts."""
    done = trigger(server, 5, steps_override=["dbt seed --select raw_customers"])
    finished = wait_for_status(server, done["id"])
    assert finished["status"] == 10, finished
    return {
        "account_id": 1,
        "project_id": 1,
        "environment_id": 1,
        "job_id": 5,
        "run_id": done["id"],
        "step_id": finished["run_steps"][-1]["id"],
        "user_id": 1,
        "remainder": "manifest.json",
        "subscription_id": scratch_subscription(server),
        "env_var_id": scratch_env_var(server, "DBT_CONTRACT_UPDATE"),
    }


def scratch_env_var(server: LocalDbtCloud, name: str = "DBT_CONTRACT_SCRATCH") -> int:
    """A job override of its own (job 5) for the routes that change or delete one value."""
    body = {**BODIES[("POST", f"{_P3}/environment-variables/")], "name": name, "raw_value": "x"}
    with server.client() as client:
        response = client.post("/api/v3/accounts/1/projects/1/environment-variables/", json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def scratch_subscription(server: LocalDbtCloud) -> str:
    """A webhook subscription of its own (the DELETE route gets a fresh one per call)."""
    with server.client() as client:
        response = client.post("/api/v3/accounts/1/webhooks/subscriptions", json=WEBHOOK)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def scratch_job(client: httpx.Client) -> int:
    """A job of its own for a route that changes or deletes one (the shared server keeps its jobs)."""
    response = client.post("/api/v2/accounts/1/jobs/", json={"name": "Contract scratch", "environment_id": 2})
    assert response.status_code == 200, response.text
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


def own_ids(server: LocalDbtCloud, client: httpx.Client, route: SpecRoute) -> dict[str, Any]:
    """Objects a write route consumes get made for each call: a job, a value, a subscription, a run."""
    if route.key in (("POST", f"{_V2}/jobs/{{id}}/"), ("DELETE", f"{_V2}/jobs/{{id}}/")):
        return {"job_id": scratch_job(client)}
    if route.key == ("DELETE", f"{_P3}/environment-variables/{{id}}/"):
        return {"env_var_id": scratch_env_var(server)}
    if route.key == ("DELETE", f"{_V3}/webhooks/subscription/{{subscription_id}}"):
        return {"subscription_id": scratch_subscription(server)}
    if route.key == ("POST", f"{_V2}/runs/{{run_id}}/retry/"):
        return {"run_id": failed_latest_run(server)}
    return {}


def call(client: httpx.Client, route: SpecRoute, url: str) -> httpx.Response:
    body = BODIES.get(route.key)
    return client.request(route.method, url, json=body, params=PARAMS.get(route.key, {}))


def clean_up(client: httpx.Client, route: SpecRoute, response: httpx.Response) -> None:
    """Undo what a served write made, so that the shared server stays as the other tests expect it."""
    if response.status_code >= 300 or route.method == "GET" or refused_on_purpose(response):
        return
    data = response.json()["data"] if response.status_code != 204 else None
    if starts_a_run(route):
        client.post(f"/api/v2/accounts/1/runs/{data['id']}/cancel/")  # leave the shared server idle
    elif route.key in (("POST", f"{_V2}/jobs/"), ("POST", f"{_V2}/jobs/{{id}}/")):
        client.delete(f"/api/v2/accounts/1/jobs/{data['id']}/")
    elif route.key == ("POST", f"{_P3}/environment-variables/"):
        client.delete(f"/api/v3/accounts/1/projects/1/environment-variables/{data['id']}/")
    elif route.key == ("POST", f"{_V3}/webhooks/subscriptions"):
        client.delete(f"/api/v3/accounts/1/webhooks/subscription/{data['id']}")


def starts_a_run(route: SpecRoute) -> bool:
    return route.method == "POST" and route.path.endswith(("/run/", "/rerun/", "/retry/"))


def answers(server: LocalDbtCloud, ids: dict[str, Any], route: SpecRoute) -> tuple[httpx.Response, ...]:
    """The route's answers as the spec writes its path and in the other slash form. A run it starts is
    held before its first step (fault injection) and cancelled: no dbt runs for the contract's sake."""
    responses = []
    with server.client() as client:
        for form in (0, 1):
            url = concrete(route.path, ids | own_ids(server, client, route))
            if starts_a_run(route):
                client.put("/_local/faults", json={"step_delay_ms": 600_000}).raise_for_status()
            try:
                response = call(client, route, other_form(url) if form else url)
                clean_up(client, route, response)
            finally:
                if starts_a_run(route):
                    client.delete("/_local/faults").raise_for_status()
            responses.append(response)
    return tuple(responses)


# The contract -------------------------------------------------------------------------------------


def test_the_specs_are_walked_whole() -> None:
    """Both specs, every operation: the route table comes from them, not from the app."""
    assert len([route for route in ROUTES if route.version == "v2"]) == len(
        [
            m
            for ops in SPECS["v2"]["paths"].values()
            for m in ops
            if m in ("get", "post", "put", "patch", "delete")
        ]
    )
    assert ("GET", "/api/v3/accounts/{account_id}/scim/v2/Users") in {route.key for route in ROUTES}
    assert len(ROUTES) >= 200


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_spec_route_is_served_or_refused(
    server: LocalDbtCloud, ids: dict[str, Any], route: SpecRoute
) -> None:
    problems = check(route, *answers(server, ids, route))
    assert not problems, "\n".join(problems)


def test_a_route_nobody_serves_breaks_the_contract(server: LocalDbtCloud, ids: dict[str, Any]) -> None:
    """The checker can fail: a copy of the specs with one more path, which the app neither serves nor
    refuses (it answers the framework's 404), is reported; so is a served route whose answer is wrong."""
    specs = copy.deepcopy(SPECS)
    specs["v2"]["paths"]["/api/v2/accounts/{account_id}/contract-canary/{id}/"] = {
        "get": {"operationId": "Retrieve Canary", "responses": {"200": {}}}
    }
    canary = next(route for route in spec_routes(specs) if "contract-canary" in route.path)
    problems = check(canary, *answers(server, ids, canary))
    assert problems, "a route nobody serves passed the contract"
    assert "answered 404" in problems[0], problems
    assert "neither served with a valid answer nor refused" in problems[-1]

    account = next(route for route in ROUTES if route.key == ("GET", f"{_V2}/"))
    with server.client() as client:
        good = client.get("/api/v2/accounts/1/")
        wrong = httpx.Response(200, json={**good.json(), "data": {**good.json()["data"], "state": "on"}})
    assert not check(account, good, good)
    assert "does not validate" in check(account, wrong, wrong)[0]


def test_the_refusal_table_names_only_spec_routes_and_each_once() -> None:
    """One place for refusals: each entry is a route of a spec (with its operation name), once."""
    by_key = {route.key: route for route in ROUTES}
    keys = [(refused.method, refused.path) for refused in REFUSED]
    assert len(keys) == len(set(keys))
    for refused in REFUSED:
        route = by_key.get((refused.method, refused.path))
        assert route is not None, f"{refused.method} {refused.path} is in no spec"
        assert route.operation["operationId"] == refused.operation, refused


def test_served_and_refused_counts() -> None:
    """What the README states: per spec, how many operations are served and how many refused."""
    refused = {(refused.method, refused.path) for refused in REFUSED}
    counts = {
        version: (
            sum(1 for route in ROUTES if route.version == version and route.key not in refused),
            sum(1 for route in ROUTES if route.version == version and route.key in refused),
        )
        for version in SPEC_VERSIONS
    }
    assert counts == {"v2": (26, 26), "v3": (32, 123)}, counts


# The app's routes, the other way round ----------------------------------------------------------------


def app_routes() -> list[tuple[str, str]]:
    """Every (method, path template) the app serves, from its route table (refusals left out)."""
    app = create_app(None, None)  # type: ignore[arg-type]  # only the route table is read
    refused = {(refused.method, refused.path) for refused in REFUSED}
    routes = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD" and (method, route.path) not in refused:  # type: ignore[attr-defined]
                routes.append((method, route.path))  # type: ignore[attr-defined]
    return routes


def _shape(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", template.replace("{path:path}", "{remainder}"))


def test_every_app_route_is_in_a_spec_or_local_only() -> None:
    spec_shapes = {(route.method, _shape(route.path)) for route in ROUTES}
    for method, template in app_routes():
        assert template in LOCAL_ONLY or (method, _shape(template)) in spec_shapes, (
            f"{method} {template} is in no spec; add it to LOCAL_ONLY with the reason"
        )


API_ROUTES = [(method, template) for method, template in app_routes() if template.startswith("/api/")]
API_ROUTES += [(refused.method, refused.path) for refused in REFUSED[:: max(1, len(REFUSED) // 12)]]


@pytest.mark.parametrize(("method", "template"), API_ROUTES, ids=[f"{m} {t}" for m, t in API_ROUTES])
def test_route_errors_use_the_envelope(server: LocalDbtCloud, method: str, template: str) -> None:
    """Without a token every API route answers 401 in the status envelope, with or without the slash;
    with one, an unknown account answers 404 (a refused route too: the account is checked first)."""
    url = re.sub(r"\{[^}]+\}", "1", template.replace("{account_id}", "987654"))
    with httpx.Client(base_url=server.base_url, verify=server.trust) as anonymous:
        for form in (url, other_form(url)):
            refused = anonymous.request(method, form)
            assert refused.status_code == 401, (form, refused.text[:300])
            validate_against_spec(
                "v2", {"$ref": "#/components/schemas/ResponseStatus"}, refused.json()["status"]
            )
            assert refused.json()["data"] is None
    if "{account_id}" not in template:
        return
    with server.client() as client:
        for form in (url, other_form(url)):
            missing = client.request(method, form, json={})
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
