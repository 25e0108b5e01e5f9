"""
Job-level environment variable overrides, dbt Cloud's ``type: job`` values that dbt-jobs-as-code
writes for a job's ``custom_environment_variables``: the v3 routes (with and without the trailing
slash, dbt Cloud's envelopes, 400s naming the field), real runs that see the override before the
environment's and the project's value, ``dbt-jobs-as-code sync`` then ``plan`` (no changes) and
``import-jobs`` as real subprocesses, and overrides declared in the jobs file seeded at start.

The server runs the packaged config (demo project, jobs from jobs.yml: 1 eltml build, 2 Hourly Run,
3 Daily Run, all in environment 1 "Production"), so the demo's ``DBT_FAIL_MODEL`` switch is there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from helpers import TOKEN, assert_error_envelope, trigger, validate_against_spec, wait_for_status
from test_jobs_as_code import CLI, JOBS_FILE, VARS_FILE, jobs_as_code
from test_jobs_file import JOB, config_with_file

from dbt_cloud_local.config.loader import load_config
from dbt_cloud_local.model.statuses import ERROR, SUCCESS
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.jobs import JobRepository
from dbt_cloud_local.testing import LocalDbtCloud, start_local_dbt_cloud

VARS = "/api/v3/accounts/1/projects/1/environment-variables"
SEED_COUNTRIES = ["dbt seed --select countries"]
FAIL_MESSAGE = "DBT_FAIL_MODEL asked jaffle_shop.countries to fail"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDbtCloud]:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `make venv` (it builds .venv-jobs-as-code from the lock)")
    data_dir = tmp_path_factory.mktemp("job-env-vars") / "data"
    env = {"JAFFLE_SHOP_WAREHOUSE": str(data_dir.parent / "warehouse.duckdb")}
    server = start_local_dbt_cloud(data_dir, token=TOKEN, env=env)
    try:
        yield server
    finally:
        server.stop()


def job_view(client: httpx.Client, job_id: int) -> dict[str, Any]:
    response = client.get(f"{VARS}/job/", params={"job_definition_id": job_id})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def override(job_id: int, name: str, value: str) -> dict[str, Any]:
    """The body dbt-jobs-as-code sends to create an override (its ``CustomEnvironmentVariablePayload``)."""
    return {
        "name": name,
        "type": "job",
        "display_value": None,
        "job_definition_id": job_id,
        "id": None,
        "account_id": 1,
        "project_id": 1,
        "raw_value": value,
    }


def test_override_routes_round_trip_with_and_without_the_slash(server: LocalDbtCloud) -> None:
    schema = {"$ref": "#/components/schemas/CustomEnvironmentVariableEnveloped"}
    with server.client() as client:
        created = client.post(VARS, json=override(2, "DBT_ROUTE_X", "first"))  # no slash
        assert created.status_code == 200, created.text
        validate_against_spec("v3", schema, created.json())
        data = created.json()["data"]
        assert (data["type"], data["job_definition_id"], data["display_value"]) == ("job", 2, "first")
        assert job_view(client, 2)["DBT_ROUTE_X"] == {"job": {"id": data["id"], "value": "first"}}
        assert "DBT_ROUTE_X" not in job_view(client, 3)  # another job does not see it

        again = client.post(f"{VARS}/", json=override(2, "DBT_ROUTE_X", "dup"))
        assert_error_envelope(again, 400, "DBT_ROUTE_X already has a job value", f"/{data['id']}/")

        for path, value in ((f"{VARS}/{data['id']}", "second"), (f"{VARS}/{data['id']}/", "third")):
            updated = client.post(path, json={**override(2, "DBT_ROUTE_X", value), "id": data["id"]})
            assert updated.status_code == 200, updated.text
            validate_against_spec("v3", schema, updated.json())
            assert updated.json()["data"]["display_value"] == value
            assert job_view(client, 2)["DBT_ROUTE_X"]["job"] == {"id": data["id"], "value": value}

        second = client.post(f"{VARS}/", json=override(3, "DBT_ROUTE_Y", "y")).json()["data"]
        assert client.delete(f"{VARS}/{data['id']}").status_code == 204
        assert client.delete(f"{VARS}/{second['id']}/").status_code == 204
        assert "DBT_ROUTE_X" not in job_view(client, 2)
        assert_error_envelope(client.delete(f"{VARS}/{data['id']}/"), 404, f"{data['id']} not found")
        assert_error_envelope(client.post(f"{VARS}/{data['id']}", json={"raw_value": "x"}), 404)


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({**override(2, "DBT_BAD", "v"), "raw_value": None}, ["raw_value is required"]),
        (override(99, "DBT_BAD", "v"), ["job_definition_id 99", "not an active job of project 1"]),
        ({**override(2, "DBT_BAD", "v"), "job_definition_id": "2"}, ["job_definition_id must be an integer"]),
        ({**override(2, "DBT_BAD", "v"), "type": "user"}, ["type 'user' is not supported"]),
        (override(2, "DBT_TARGET", "v"), ["DBT_TARGET is reserved"]),
        (override(2, "lower", "v"), ["name 'lower' is invalid"]),
        ({**override(2, "DBT_BAD", "v"), "account_id": 7}, ["account_id is 7", "URL names 1"]),
        ({**override(2, "DBT_BAD", "v"), "type": None}, ["type is required"]),
        ([1], ["send a JSON object"]),
    ],
)
def test_a_bad_override_is_refused_naming_the_field(
    server: LocalDbtCloud, body: Any, mentions: list[str]
) -> None:
    with server.client() as client:
        assert_error_envelope(client.post(f"{VARS}/", json=body), 400, *mentions)
        assert "DBT_BAD" not in job_view(client, 2)


def test_an_update_cannot_move_a_value_to_another_job(server: LocalDbtCloud) -> None:
    with server.client() as client:
        created = client.post(f"{VARS}/", json=override(2, "DBT_MOVE", "v")).json()["data"]
        moved = client.post(f"{VARS}/{created['id']}/", json=override(3, "DBT_MOVE", "w"))
        assert_error_envelope(moved, 400, "job_definition_id is 3", "delete this value and create another")
        assert job_view(client, 2)["DBT_MOVE"]["job"]["value"] == "v"
        assert client.delete(f"{VARS}/{created['id']}/").status_code == 204


def test_a_job_override_beats_the_environment_and_project_values_in_real_runs(server: LocalDbtCloud) -> None:
    """Project and environment values name no model; job 1's override fails its seed, job 3 succeeds."""
    with server.client() as client:
        bulk = {"env_var": [{"new_name": "DBT_FAIL_MODEL", "project": "no_model", "Production": "none"}]}
        client.post(f"{VARS}/bulk/", json=bulk).raise_for_status()
        created = client.post(f"{VARS}/", json=override(1, "DBT_FAIL_MODEL", "countries"))
        assert created.status_code == 200, created.text
        view = job_view(client, 1)["DBT_FAIL_MODEL"]
        assert {scope: item["value"] for scope, item in view.items()} == {
            "project": "no_model",
            "environment": "none",
            "job": "countries",
        }
    try:
        failing = wait_for_status(server, trigger(server, 1, steps_override=SEED_COUNTRIES)["id"])
        passing = wait_for_status(server, trigger(server, 3, steps_override=SEED_COUNTRIES)["id"])
        assert failing["status"] == ERROR, failing["status_message"]
        assert "failed: seed.jaffle_shop.countries" in failing["status_message"]
        assert FAIL_MESSAGE in "".join(step["logs"] or "" for step in failing["run_steps"])
        assert passing["status"] == SUCCESS, passing["status_message"]
    finally:
        with server.client() as client:
            client.delete(f"{VARS}/{created.json()['data']['id']}/").raise_for_status()


def plan_changes(server: LocalDbtCloud, jobs_file: Path) -> dict[str, Any]:
    result = jobs_as_code(server, "plan", str(jobs_file), "--vars-yml", str(VARS_FILE), "--json")
    return json.loads(result.stdout.strip().splitlines()[-1])


def env_changes(planned: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (change["action"].lower(), change["identifier"]) for change in planned["env_var_overwrite_changes"]
    }


def test_jobs_as_code_syncs_custom_environment_variables_then_plans_no_changes(
    server: LocalDbtCloud, tmp_path: Path
) -> None:
    """An existing job's override (its variable exists at project level, as the tool requires), a new
    job's override, then a changed value (update) and a removed one (delete), each followed by a
    ``plan`` that reports nothing left to do."""
    with server.client() as client:
        bulk = {"env_var": [{"new_name": "DBT_JAC_HOURLY", "project": "project-default"}]}
        client.post(f"{VARS}/bulk/", json=bulk).raise_for_status()
    text = JOBS_FILE.read_text()
    declared = yaml.safe_load(text.replace("{{ ", "").replace(" }}", ""))["jobs"]
    edited = tmp_path / "jobs.yml"

    def write(hourly_vars: list[dict[str, str]], new_vars: list[dict[str, str]]) -> None:
        jobs_ = {
            **declared,
            "hourly_run": {**declared["hourly_run"], "custom_environment_variables": hourly_vars},
            "env_job": {**declared["daily_run"], "name": "Env Job", "custom_environment_variables": new_vars},
        }
        for item in jobs_.values():
            item.update(account_id="{{ account_id }}", project_id="{{ project_id }}")
            item["environment_id"] = "{{ environment_id }}"
        dumped = yaml.safe_dump({"jobs": jobs_}, sort_keys=False)
        edited.write_text(dumped.replace("'{{", "{{").replace("}}'", "}}"))

    write([{"DBT_JAC_HOURLY": "from-file"}], [{"DBT_JAC_NEW": "new-job"}])
    first = plan_changes(server, edited)
    assert ("create", "hourly_run:DBT_JAC_HOURLY") in env_changes(first)
    assert ("create", "env_job:DBT_JAC_NEW") in env_changes(first)
    jobs_as_code(server, "sync", str(edited), "--vars-yml", str(VARS_FILE))
    assert plan_changes(server, edited) == {"job_changes": [], "env_var_overwrite_changes": []}
    with server.client() as client:
        new_id = next(
            job["id"]
            for job in client.get("/api/v2/accounts/1/jobs/").json()["data"]
            if job["name"] == "Env Job [[env_job]]"
        )
        assert job_view(client, 2)["DBT_JAC_HOURLY"]["job"]["value"] == "from-file"
        assert job_view(client, new_id)["DBT_JAC_NEW"]["job"]["value"] == "new-job"
    exported = yaml.safe_load(jobs_as_code(server, "import-jobs", "--account-id", "1").stdout)["jobs"]
    assert exported["env_job"]["custom_environment_variables"] == [{"DBT_JAC_NEW": "new-job"}]
    assert exported["hourly_run"]["custom_environment_variables"] == [{"DBT_JAC_HOURLY": "from-file"}]

    write([{"DBT_JAC_HOURLY": "changed"}], [])
    second = plan_changes(server, edited)
    assert env_changes(second) == {("update", "hourly_run:DBT_JAC_HOURLY"), ("delete", "env_job:DBT_JAC_NEW")}
    jobs_as_code(server, "sync", str(edited), "--vars-yml", str(VARS_FILE))
    assert plan_changes(server, edited) == {"job_changes": [], "env_var_overwrite_changes": []}
    with server.client() as client:
        assert job_view(client, 2)["DBT_JAC_HOURLY"]["job"]["value"] == "changed"
        assert "DBT_JAC_NEW" not in job_view(client, new_id)


def test_jobs_file_overrides_are_seeded_at_start_and_follow_the_file(tmp_path: Path) -> None:
    """The override declared in the jobs file is what a run of that job resolves, before the project
    value; an edited file applies at the next start, and a value changed through the API is kept."""
    store = Store(tmp_path / "state.sqlite3")

    def start(value: str) -> JobRepository:
        item = {**JOB, "custom_environment_variables": [{"DBT_SEEDED": value}]}
        config = load_config(config_with_file(tmp_path, {"jobs": {"nightly": item, "other": JOB}}))
        repository = JobRepository(config, store)
        repository.seed(config.jobs)
        return repository

    try:
        repository = start("v1")
        nightly = next(job for job in repository.values() if job.seed_key == "jobs_as_code:nightly")
        other = next(job for job in repository.values() if job.seed_key == "jobs_as_code:other")
        store.set_env_var(nightly.project_id, "DBT_SEEDED", 0, "project")
        resolve = store.resolved_env_vars
        assert resolve(nightly.project_id, nightly.environment_id, nightly.id)["DBT_SEEDED"] == "v1"
        assert resolve(other.project_id, other.environment_id, other.id)["DBT_SEEDED"] == "project"

        start("v2")  # the file changed, nobody touched the job: the file wins
        assert resolve(nightly.project_id, nightly.environment_id, nightly.id)["DBT_SEEDED"] == "v2"

        store.set_env_var(nightly.project_id, "DBT_SEEDED", -nightly.id, "api")  # changed via the API
        start("v3")
        assert resolve(nightly.project_id, nightly.environment_id, nightly.id)["DBT_SEEDED"] == "api"
    finally:
        store.close()


def test_state_from_before_value_timestamps_gets_them(tmp_path: Path) -> None:
    """An env_vars table written by an older server (no created_at/updated_at) is migrated at open,
    so its values answer with the timestamps dbt Cloud's schema requires."""
    import sqlite3

    path = tmp_path / "state.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(
            """CREATE TABLE env_vars (id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL,
               name TEXT NOT NULL, environment_id INTEGER NOT NULL, value TEXT NOT NULL,
               UNIQUE (project_id, name, environment_id))"""
        )
        conn.execute(
            "INSERT INTO env_vars (project_id, name, environment_id, value) VALUES (1, 'DBT_OLD', 0, 'v')"
        )
    conn.close()
    store = Store(path)
    try:
        (row,) = store.env_vars(1)
        assert row["created_at"]
        assert row["updated_at"]
        assert store.resolved_env_vars(1, 1, 7) == {"DBT_OLD": "v"}
    finally:
        store.close()
