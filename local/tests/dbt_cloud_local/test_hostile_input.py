"""
Hostile input: every malformed or out-of-range request gets a 4xx in dbt Cloud's status envelope that
names the field, and nothing is written: no run is queued, no variable is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from helpers import (
    RESERVED_NAME_EXAMPLES,
    TOKEN,
    assert_error_envelope,
    cli,
    project_variables,
    run_count,
    wait_for_status,
    write_config,
)

from dbt_cloud_local.model.env_vars import PROJECT_SCOPE
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.testing import LocalDbtCloud

BEYOND_64_BITS = "99999999999999999999999"
RUN_URL = "/api/v2/accounts/1/jobs/5/run/"
BULK_URL = "/api/v3/accounts/1/projects/1/environment-variables/bulk/"


def _refused_without_a_run(
    server: LocalDbtCloud, send: Callable[[httpx.Client], httpx.Response], status: int, *mentions: str
) -> None:
    before = run_count(server)
    with server.client(timeout=60) as client:
        response = send(client)
    assert_error_envelope(response, status, *mentions)
    assert run_count(server) == before, "a refused request must not create a run"


# Ids and integers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        ("GET", f"/api/v2/accounts/{BEYOND_64_BITS}/", "account_id"),
        ("GET", f"/api/v2/accounts/1/runs/{BEYOND_64_BITS}/", "run_id"),
        ("GET", f"/api/v2/accounts/1/steps/{BEYOND_64_BITS}/", "step_id"),
        ("GET", f"/api/v3/accounts/1/projects/{BEYOND_64_BITS}/", "project_id"),
        ("POST", f"/api/v2/accounts/1/runs/{BEYOND_64_BITS}/cancel/", "run_id"),
        ("POST", f"/api/v2/accounts/1/jobs/{BEYOND_64_BITS}/run/", "job_id"),
        ("GET", "/api/v2/accounts/1/runs/-1/", "run_id"),
        ("GET", "/api/v2/accounts/1/runs/?limit=1e400", "limit"),
        ("GET", "/api/v2/accounts/1/runs/?offset=9999999999999999999999", "offset"),
        ("GET", f"/api/v2/accounts/1/runs/?job_definition_id={BEYOND_64_BITS}", "job_definition_id"),
        ("GET", f"/api/v2/accounts/1/runs/?status__in=[{BEYOND_64_BITS}]", "status__in"),
        ("GET", f"/api/v2/accounts/1/jobs/?project_id={BEYOND_64_BITS}", "project_id"),
        ("GET", f"/deploy/1/projects/1/runs/{BEYOND_64_BITS}/", BEYOND_64_BITS),
    ],
)
def test_ids_and_query_integers_beyond_64_bits_are_400(
    server: LocalDbtCloud, method: str, url: str, field: str
) -> None:
    body = {"cause": "hostile"} if method == "POST" else None
    _refused_without_a_run(server, lambda client: client.request(method, url, json=body), 400, field)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("threads_override", str(10**20)),
        ("timeout_seconds_override", str(10**30)),
        ("github_pull_request_id", str(10**19)),
        ("threads_override", "1e400"),
        ("threads_override", "NaN"),
        ("timeout_seconds_override", "-Infinity"),
    ],
)
def test_body_numbers_beyond_64_bits_or_not_finite_are_400(
    server: LocalDbtCloud, field: str, value: str
) -> None:
    content = f'{{"cause": "hostile", "{field}": {value}}}'
    _refused_without_a_run(server, lambda client: client.post(RUN_URL, content=content), 400, field)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v2/accounts/2/",
        "/api/v2/accounts/1/jobs/9223372036854775807/",
        "/api/v2/accounts/1/runs/9223372036854775807/",
        "/api/v2/accounts/1/steps/9223372036854775807/",
    ],
)
def test_unknown_but_well_formed_ids_are_404(server: LocalDbtCloud, url: str) -> None:
    _refused_without_a_run(server, lambda client: client.get(url), 404, "not found")


# Nesting ----------------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("url", "content"),
    [
        (RUN_URL, _nested(10_000)),
        (RUN_URL, '{"cause": "hostile", "steps_override": ' + _nested(10_000) + "}"),
        (RUN_URL, '{"cause": "hostile", "note": ' + _nested(40) + "}"),
        (BULK_URL, '{"env_var": [{"new_name": "DBT_NESTED", "project": ' + _nested(40) + "}]}"),
        ("/_local/faults", '{"rules": ' + _nested(10_000) + "}"),
    ],
)
def test_deeply_nested_json_is_400(server: LocalDbtCloud, url: str, content: str) -> None:
    method = "PUT" if url == "/_local/faults" else "POST"
    _refused_without_a_run(
        server, lambda client: client.request(method, url, content=content), 400, "nests deeper"
    )
    assert "DBT_NESTED" not in project_variables(server)


# NUL bytes and other unencodable text -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps_override": ["dbt seed\u0000"]}, "steps_override[0]"),
        ({"steps_override": ["dbt seed", "dbt run --select \u0000x"]}, "steps_override[1]"),
        ({"cause": "hostile\u0000"}, "cause"),
        ({"git_branch": "main\u0000"}, "git_branch"),
        ({"schema_override": "main\u0000"}, "schema_override"),
        ({"target_name_override": "dev\u0000"}, "target_name_override"),
        ({"dbt_version_override": "1.11\u0000"}, "dbt_version_override"),
        ({"unknown_field": "x\u0000"}, "unknown_field"),
        ({"key\u0000": "x"}, "a key of the body"),
    ],
)
def test_nul_bytes_in_any_string_field_are_400(
    server: LocalDbtCloud, body: dict[str, Any], field: str
) -> None:
    payload = {"cause": "hostile", **body}
    _refused_without_a_run(server, lambda client: client.post(RUN_URL, json=payload), 400, field, "NUL")


def test_unpaired_surrogates_are_400(server: LocalDbtCloud) -> None:
    content = b'{"cause": "hostile \\ud800"}'
    _refused_without_a_run(
        server, lambda client: client.post(RUN_URL, content=content), 400, "cause", "surrogate"
    )


@pytest.mark.parametrize(
    "url",
    [
        "/api/v2/accounts/1/runs/?order_by=id%00",
        "/api/v2/accounts/1/runs/1%00/",
        "/api/v2/accounts/1/jobs/%00",
    ],
)
def test_nul_bytes_in_the_url_are_400(server: LocalDbtCloud, url: str) -> None:
    _refused_without_a_run(server, lambda client: client.get(url), 400, "NUL")


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"new_name": "DBT_NUL_VALUE", "project": "x\u0000y"}, "env_var[0].project"),
        ({"new_name": "DBT_NUL\u0000NAME", "project": "x"}, "env_var[0].new_name"),
    ],
)
def test_nul_bytes_in_environment_variables_are_400(
    server: LocalDbtCloud, entry: dict[str, str], field: str
) -> None:
    with server.client() as client:
        response = client.post(BULK_URL, json={"env_var": [entry]})
    assert_error_envelope(response, 400, field, "NUL")
    assert not {name for name in project_variables(server) if name.startswith("DBT_NUL")}


# Oversized values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cause": "x" * 256}, "cause"),
        ({"steps_override": ["dbt run --select " + "x" * 4096]}, "steps_override[0]"),
        ({"steps_override": ["dbt seed"] * 21}, "steps_override"),
        ({"git_branch": "b" * 256}, "git_branch"),
        ({"dbt_version_override": "1" * 65}, "dbt_version_override"),
    ],
)
def test_oversized_fields_are_400(server: LocalDbtCloud, body: dict[str, Any], field: str) -> None:
    payload = {"cause": "hostile", **body}
    _refused_without_a_run(server, lambda client: client.post(RUN_URL, json=payload), 400, field)


def test_a_body_over_one_mebibyte_is_413(server: LocalDbtCloud) -> None:
    payload = {"cause": "hostile", "padding": "x" * (1024 * 1024)}
    _refused_without_a_run(server, lambda client: client.post(RUN_URL, json=payload), 413, "larger than")


def test_a_streamed_body_over_one_mebibyte_is_413(server: LocalDbtCloud) -> None:
    """Without Content-Length (chunked), the server counts while reading and stops at the limit."""
    chunks = [b'{"cause": "hostile", "padding": "', *([b"x" * 65536] * 20), b'"}']
    _refused_without_a_run(
        server, lambda client: client.post(RUN_URL, content=iter(chunks)), 413, "larger than"
    )


def test_an_oversized_variable_value_is_400_and_stores_nothing(server: LocalDbtCloud) -> None:
    with server.client() as client:
        response = client.post(
            BULK_URL, json={"env_var": [{"new_name": "DBT_TOO_LONG", "project": "x" * 4097}]}
        )
    assert_error_envelope(response, 400, "env_var[0]", "DBT_TOO_LONG", "4096")
    assert "DBT_TOO_LONG" not in project_variables(server)


# Reserved environment variables -----------------------------------------------------------------


@pytest.mark.parametrize("name", RESERVED_NAME_EXAMPLES)
def test_reserved_variables_are_refused_by_the_api(server: LocalDbtCloud, name: str) -> None:
    with server.client() as client:
        created = client.post(BULK_URL, json={"env_var": [{"new_name": name, "project": "/tmp/elsewhere"}]})
        updated = client.put(BULK_URL, json={"env_vars": {"name": name, "Production": "/tmp/elsewhere"}})
    assert_error_envelope(created, 400, "env_var[0]", name, "reserved")
    assert_error_envelope(updated, 400, "env_vars", name, "reserved")
    assert name not in project_variables(server)


def test_custom_project_variables_are_still_accepted(server: LocalDbtCloud) -> None:
    """Only dbt's own names are reserved: custom ones, secrets and custom-env metadata still work."""
    names = ["DBT_HOSTILE_CUSTOM", "DBT_ENV_SECRET_HOSTILE", "DBT_ENV_CUSTOM_ENV_HOSTILE"]
    with server.client() as client:
        response = client.post(
            BULK_URL, json={"env_var": [{"new_name": name, "project": "1"} for name in names]}
        )
        assert response.status_code == 200, response.text
        assert set(names) <= set(project_variables(server))
        assert client.request("DELETE", BULK_URL, json={"env_var_names": names}).status_code == 204


def test_one_bad_entry_writes_nothing(server: LocalDbtCloud) -> None:
    """A bulk request is checked whole before any value is stored or deleted (nothing half-written)."""
    entries = [
        {"new_name": "DBT_HALF_WRITTEN", "project": "1"},
        {"new_name": "DBT_TARGET", "project": "prod"},
    ]
    with server.client() as client:
        kept = client.post(BULK_URL, json={"env_var": [{"new_name": "DBT_HALF_KEPT", "project": "1"}]})
        assert kept.status_code == 200, kept.text
        created = client.post(BULK_URL, json={"env_var": entries})
        updated = client.put(
            BULK_URL, json={"env_vars": {"name": "DBT_HALF_WRITTEN", "project": "1", "Nope": "2"}}
        )
        deleted = client.request("DELETE", BULK_URL, json={"env_var_names": ["DBT_HALF_KEPT", "PATH"]})
        assert_error_envelope(created, 400, "env_var[1]", "DBT_TARGET")
        assert_error_envelope(updated, 400, "env_vars", "Nope")
        assert_error_envelope(deleted, 400, "env_var_names[1]", "PATH")
        variables = project_variables(server)
        client.request("DELETE", BULK_URL, json={"env_var_names": ["DBT_HALF_KEPT"]})
    assert "DBT_HALF_WRITTEN" not in variables
    assert "DBT_HALF_KEPT" in variables


@pytest.mark.parametrize("name", ["DBT_PROFILES_DIR", "DBT_TARGET", "DBT_ENGINE_STATE"])
def test_reserved_variables_are_refused_by_the_cli(server: LocalDbtCloud, name: str) -> None:
    common = ("--data-dir", str(server.data_dir), "--config", str(server.config_path))
    result = cli("env-var", "set", name, "/tmp/elsewhere", "--environment", "Production", *common)
    assert result.returncode == 2
    assert name in result.stderr
    assert "reserved" in result.stderr
    assert "Traceback" not in result.stderr
    assert name not in project_variables(server)


def test_reserved_variables_left_in_the_state_never_reach_dbt(make_server, tmp_path_factory) -> None:
    """
    A state written before the names were reserved (or edited by hand) holds DBT_PROJECT_DIR and
    DBT_TARGET: dbt would fail on either (no project there, no such target). Runs ignore them, the
    start-up log says how to remove them, and deleting them stays possible.
    """
    data_dir = tmp_path_factory.mktemp("stale-state") / "data"
    data_dir.mkdir()
    store = Store(data_dir / "state.sqlite3")
    store.set_env_var(1, "DBT_PROJECT_DIR", PROJECT_SCOPE, "/nonexistent/project")
    store.set_env_var(1, "DBT_TARGET", 2, "no_such_target")
    store.close()
    server = make_server("stale-reserved", data_dir=data_dir)
    with server.client() as client:
        response = client.post("/api/v2/accounts/1/jobs/5/run/", json={"cause": "stale reserved variables"})
    assert response.status_code == 200, response.text
    run = wait_for_status(server, response.json()["data"]["id"])
    assert run["status"] == 10, run.get("status_message")
    assert "env-var unset DBT_PROJECT_DIR" in server.log_path.read_text()
    assert {"DBT_PROJECT_DIR", "DBT_TARGET"} <= set(project_variables(server))
    with server.client() as client:
        deleted = client.request(
            "DELETE", BULK_URL, json={"env_var_names": ["DBT_PROJECT_DIR", "DBT_TARGET"]}
        )
    assert deleted.status_code == 204, deleted.text
    assert not {"DBT_PROJECT_DIR", "DBT_TARGET"} & set(project_variables(server))


# Tokens and accounts ----------------------------------------------------------------------------

SCOPED_TOKEN = "account-two-token-0123"


@pytest.fixture(scope="module")
def two_accounts(make_server, tmp_path_factory) -> LocalDbtCloud:
    """Accounts 1 and 2; TOKEN may use both, SCOPED_TOKEN only account 2."""
    root = tmp_path_factory.mktemp("two-accounts")
    config = write_config(
        root,
        accounts=[{"id": 1, "name": "Local dbt Cloud"}, {"id": 2, "name": "Other team"}],
        api_tokens=[TOKEN, {"token": SCOPED_TOKEN, "accounts": [2]}],
    )
    return make_server("two-accounts", config=config, token=None)


def _as(server: LocalDbtCloud, token: str) -> httpx.Client:
    return server.client(headers={"Authorization": f"Token {token}"})


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/v2/accounts/1/"),
        ("GET", "/api/v2/accounts/1/runs/"),
        ("GET", "/api/v3/accounts/1/projects/1/environment-variables/environment/"),
        ("POST", "/api/v2/accounts/1/jobs/1/run/"),
        ("POST", BULK_URL),
    ],
)
def test_a_token_cannot_use_another_accounts_routes(
    two_accounts: LocalDbtCloud, method: str, url: str
) -> None:
    body = {"cause": "other account"} if url.endswith("/run/") else None
    if url == BULK_URL:
        body = {"env_var": [{"new_name": "DBT_OTHER_ACCOUNT", "project": "x"}]}
    before = run_count(two_accounts)
    with _as(two_accounts, SCOPED_TOKEN) as client:
        response = client.request(method, url, json=body)
    assert_error_envelope(response, 403, "account 1")
    assert SCOPED_TOKEN not in response.text
    assert run_count(two_accounts) == before
    assert "DBT_OTHER_ACCOUNT" not in project_variables(two_accounts)


def test_a_scoped_token_sees_and_uses_only_its_accounts(two_accounts: LocalDbtCloud) -> None:
    with _as(two_accounts, SCOPED_TOKEN) as client:
        listed = client.get("/api/v2/accounts/")
        root = client.get("/")
        own = client.get("/api/v2/accounts/2/")
        faults = client.put("/_local/faults", json={"latency_ms": 1})
    assert [account["id"] for account in listed.json()["data"]] == [2]
    assert [account["id"] for account in root.json()["data"]] == [2]
    assert own.status_code == 200, own.text
    assert_error_envelope(faults, 403, "every account")
    with two_accounts.client() as client:  # TOKEN is a plain string: every account
        assert [account["id"] for account in client.get("/api/v2/accounts/").json()["data"]] == [1, 2]
        assert client.get("/api/v2/accounts/2/").status_code == 200
        assert client.get("/_local/faults").status_code == 200
