"""
Jobs through the API: create, update and delete them as dbt Cloud does, every refusal a 400 naming the
field, every change persisted across a real restart, visible at once to the provider and the run pages.

The servers are real (HTTPS subprocesses on the tiny project); the provider is the unmodified
``DbtCloudHook``. The declared-versus-API rules of ``store/jobs.py`` are checked on the repository itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook
from helpers import assert_error_envelope, validate_against_spec, wait_for_status, write_config

from dbt_cloud_local.config.loader import load_config
from dbt_cloud_local.model.job_definition import DELETED
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.jobs import JobRepository
from dbt_cloud_local.testing import CONN_ID, LocalDbtCloud

JOBS = "/api/v2/accounts/1/jobs/"
NEW_JOB = {
    "account_id": 1,
    "project_id": 1,
    "environment_id": 1,
    "name": "Nightly seed",
    "description": "created by test_jobs_api",
    "execute_steps": ["dbt seed --select raw_customers"],
    "generate_docs": False,
    "run_generate_sources": False,
    "settings": {"threads": 2, "target_name": "default"},
    "triggers": {"github_webhook": False, "schedule": False},
    "schedule": {"cron": "0 3 * * *", "date": {"type": "custom_cron", "cron": "0 3 * * *"}},
    "job_type": "scheduled",
}


@pytest.fixture(scope="module")
def jobs_server(make_server: Callable[..., LocalDbtCloud]) -> LocalDbtCloud:
    return make_server("jobs-api")


@pytest.fixture
def client(jobs_server: LocalDbtCloud) -> Iterator[httpx.Client]:
    with jobs_server.client() as client:
        yield client


def names(client: httpx.Client, **params: Any) -> dict[int, str]:
    response = client.get(JOBS, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return {job["id"]: job["name"] for job in response.json()["data"]}


def create(client: httpx.Client, **changes: Any) -> dict[str, Any]:
    response = client.post(JOBS, json={**NEW_JOB, **changes})
    assert response.status_code == 200, response.text
    validate_against_spec(
        "v2", {"$ref": "#/components/schemas/HumanReadableJobDefinitionEnveloped"}, response.json()
    )
    return response.json()["data"]


def test_create_read_update_delete(client: httpx.Client) -> None:
    job = create(client)
    assert (job["name"], job["execute_steps"], job["settings"]) == (
        NEW_JOB["name"],
        NEW_JOB["execute_steps"],
        {"threads": 2, "target_name": "default"},
    )
    assert (job["state"], job["job_type"], job["schedule"]["cron"], job["dbt_version"]) == (
        1,
        "scheduled",
        "0 3 * * *",
        None,
    )
    assert client.get(f"{JOBS}{job['id']}").json()["data"]["name"] == "Nightly seed"  # no slash either
    assert names(client)[job["id"]] == "Nightly seed"

    changed = client.post(f"{JOBS}{job['id']}/", json={"name": "Nightly seeds", "settings": {"threads": 3}})
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["name"], data["settings"], data["description"]) == (
        "Nightly seeds",
        {"threads": 3, "target_name": "default"},  # nested objects change key by key
        NEW_JOB["description"],
    )
    assert data["updated_at"] > job["updated_at"]

    deleted = client.delete(f"{JOBS}{job['id']}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["data"]["state"] == 2  # dbt Cloud's soft delete
    assert job["id"] not in names(client)
    assert names(client, state=2)[job["id"]] == "Nightly seeds"
    for refused in (
        client.get(f"{JOBS}{job['id']}/"),
        client.post(f"{JOBS}{job['id']}/run/", json={"cause": "deleted"}),
        client.post(f"{JOBS}{job['id']}/", json={"name": "back"}),
        client.delete(f"{JOBS}{job['id']}/"),
    ):
        assert_error_envelope(refused, 404, f"Job {job['id']} not found")


#: What dagster-dbt sends to create its ad hoc job (``DbtCloudWorkspaceClient.create_job``): no
#: commands, settings, triggers, schedule or execution; it runs the job with ``steps_override``.
MINIMAL_JOB = {
    "account_id": 1,
    "project_id": 1,
    "environment_id": 1,
    "name": "DAGSTER_ADHOC_JOB__1__1",
    "description": "A job that runs dbt models, sources, and tests.",
    "job_type": "other",
}


def test_a_minimal_job_gets_dbt_clouds_defaults_and_runs_with_steps_override(
    client: httpx.Client, jobs_server: LocalDbtCloud
) -> None:
    response = client.post(JOBS, json=MINIMAL_JOB)
    assert response.status_code == 200, response.text
    body = response.json()
    validate_against_spec("v2", {"$ref": "#/components/schemas/HumanReadableJobDefinitionEnveloped"}, body)
    job = body["data"]
    assert (job["name"], job["description"], job["job_type"], job["state"]) == (
        MINIMAL_JOB["name"],
        MINIMAL_JOB["description"],
        "other",
        1,
    )
    assert job["execute_steps"] == []
    assert job["settings"] == {"threads": 4, "target_name": "default"}
    assert job["execution"] == {"timeout_seconds": 0}
    assert job["triggers"] == {
        "github_webhook": False,
        "schedule": False,
        "git_provider_webhook": False,
        "on_merge": False,
        "custom_branch_only": False,
    }
    assert (job["schedule"]["cron"], job["schedule"]["date"]["type"], job["schedule"]["time"]["type"]) == (
        "0 * * * *",
        "every_day",
        "every_hour",
    )
    assert (job["generate_docs"], job["run_generate_sources"], job["dbt_version"]) == (False, False, None)
    assert (job["lifecycle_webhooks"], job["run_compare_changes"], job["run_lint"]) == (False, False, False)
    assert (job["errors_on_lint_failure"], job["compare_changes_flags"]) == (True, "--select state:modified")
    try:
        run = client.post(
            f"{JOBS}{job['id']}/run/",
            json={"cause": "Triggered by dagster.", "steps_override": ["dbt seed --select raw_customers"]},
        )
        assert run.status_code == 200, run.text
        finished = wait_for_status(jobs_server, run.json()["data"]["id"])
        assert finished["status"] == 10, finished["status_message"]
        assert [(step["index"], step["name"]) for step in finished["run_steps"]] == [
            (1, "Clone git repository"),
            (2, "Create profile from connection DuckDB"),
            (3, "Invoke dbt with `dbt deps`"),
            (4, "Invoke dbt with `dbt seed --select raw_customers`"),
        ]
    finally:
        client.delete(f"{JOBS}{job['id']}/")


def test_update_with_state_2_deletes_like_dbt_cloud(client: httpx.Client) -> None:
    job = create(client, name="Deleted by state")
    response = client.post(f"{JOBS}{job['id']}/", json={"state": 2})
    assert response.json()["data"]["state"] == 2
    assert job["id"] not in names(client)


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"name": None}, ["name", "is required"]),
        ({"name": ""}, ["name", "non-empty"]),
        ({"environment_id": 99}, ["environment_id", "unknown environment 99", "[1, 2]"]),
        ({"project_id": 7}, ["project_id", "belongs to project 1"]),
        ({"account_id": 2}, ["account_id", "URL names account 1"]),
        ({"execute_steps": "dbt build"}, ["execute_steps", "must be a list"]),
        ({"execute_steps": ["rm -rf /"]}, ["execute_steps[0]", "dbt"]),
        ({"execute_steps": ["dbt build", 7]}, ["execute_steps[1]", "string"]),
        ({"settings": {"threads": "four"}}, ["settings.threads", "integer"]),
        ({"settings": {"target_name": "prod; rm"}}, ["settings.target_name"]),
        ({"schedule": {"cron": "every night"}}, ["schedule.cron", "cron"]),
        ({"triggers": {"schedule": "yes"}}, ["triggers.schedule", "true or false"]),
        ({"job_type": "nightly"}, ["job_type", "scheduled"]),
        ({"generate_docs": 1}, ["generate_docs", "true or false"]),
        ({"execution": {"timeout_seconds": -1}}, ["execution.timeout_seconds"]),
        ({"cost_optimization_features": ["faster"]}, ["cost_optimization_features[0]"]),
        ({"state": 3}, ["state", "1 (active) or 2 (deleted)"]),
        ({"environment_id": None}, ["environment_id", "is required"]),
    ],
)
def test_invalid_jobs_are_refused_naming_the_field(
    client: httpx.Client, change: dict[str, Any], mentions: list[str]
) -> None:
    before = names(client)
    response = client.post(JOBS, json={**NEW_JOB, **change})
    assert_error_envelope(response, 400, "Invalid job field", *mentions)
    assert names(client) == before, "a refused create stored nothing"


def test_invalid_update_changes_nothing(client: httpx.Client) -> None:
    job = create(client, name="Kept as is")
    for body, mention in (
        ({"execute_steps": ["python -c 1"]}, "execute_steps[0]"),
        ({"id": job["id"] + 1000}, "is not the job"),
        ([1, 2], "JSON object"),
    ):
        assert_error_envelope(client.post(f"{JOBS}{job['id']}/", json=body), 400, mention)
    assert client.get(f"{JOBS}{job['id']}/").json()["data"]["execute_steps"] == NEW_JOB["execute_steps"]


def test_provider_finds_a_created_job_by_name_and_its_run_runs(
    jobs_server: LocalDbtCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job created through the API is what the provider's name look-up finds at once; triggering it
    by id runs real dbt, and the run page names the job."""
    for key, value in jobs_server.client_env().items():
        monkeypatch.setenv(key, value)
    with jobs_server.client() as client:
        job = create(client, name="Created then run")
    hook = DbtCloudHook(CONN_ID)
    found = hook.get_job_by_name(
        project_name="jaffle_shop", environment_name="Production", job_name="Created then run"
    )
    assert found["id"] == job["id"]
    run = hook.trigger_job_run(job_id=found["id"], cause="test_jobs_api").json()["data"]
    finished = wait_for_status(jobs_server, run["id"])
    assert finished["status"] == 10, finished["status_message"]
    assert finished["job_definition_id"] == job["id"]
    assert [step["name"] for step in finished["run_steps"]][
        -1
    ] == "Invoke dbt with `dbt seed --select raw_customers`"
    with jobs_server.client() as client:
        page = client.get(f"/deploy/1/projects/1/runs/{run['id']}/", headers={"Authorization": ""})
        assert f"Created then run (#{job['id']})" in page.text
        client.delete(f"{JOBS}{job['id']}/")
    assert hook.get_job_run(run_id=run["id"]).json()["data"]["id"] == run["id"], "runs outlive their job"


def test_v3_routes_jobs_as_code_reads(client: httpx.Client) -> None:
    """The account's environments (not in the v3 spec; its items are ``EnvironmentV3Response``) and a
    job's variables per scope, without the ``job`` scope the local server does not hold."""
    environments = client.get("/api/v3/accounts/1/environments", params={"project_id": 1}).json()
    assert [env["id"] for env in environments["data"]] == [1, 2]
    for env in environments["data"]:
        validate_against_spec("v3", {"$ref": "#/components/schemas/EnvironmentV3Response"}, env)
    bulk = "/api/v3/accounts/1/projects/1/environment-variables/bulk/"
    client.post(bulk, json={"env_var": [{"new_name": "DBT_JOBS_API", "project": "p", "Staging": "s"}]})
    try:
        view = client.get(
            "/api/v3/accounts/1/projects/1/environment-variables/job", params={"job_definition_id": 5}
        ).json()
    finally:
        client.request("DELETE", bulk, json={"env_var_names": ["DBT_JOBS_API"]})
    assert {scope: value["value"] for scope, value in view["data"]["DBT_JOBS_API"].items()} == {
        "project": "p",
        "environment": "s",  # job 5 runs in Staging
    }
    missing = client.get("/api/v3/accounts/1/projects/1/environment-variables/job/")
    assert_error_envelope(missing, 400, "job_definition_id")


def test_jobs_survive_a_real_restart(make_server: Callable[..., LocalDbtCloud]) -> None:
    """API-created jobs, changes to declared jobs and deletions are all still there after a restart;
    ids are never reused."""
    first = make_server("jobs-restart")
    with first.client() as client:
        created = create(client, name="Survivor")
        client.post(f"{JOBS}2/", json={"name": "Hourly Run (renamed)", "execute_steps": ["dbt seed"]})
        client.delete(f"{JOBS}3/")
        client.delete(f"{JOBS}{create(client, name='Short-lived')['id']}/")
    first.stop()
    second = make_server("jobs-restart-again", config=first.config_path, data_dir=first.data_dir)
    with second.client() as client:
        listed = names(client)
        assert listed[created["id"]] == "Survivor"
        assert listed[2] == "Hourly Run (renamed)"
        assert 3 not in listed
        assert client.get(f"{JOBS}2/").json()["data"]["execute_steps"] == ["dbt seed"]
        assert client.get(f"{JOBS}{created['id']}/").json()["data"]["schedule"]["cron"] == "0 3 * * *"
        assert create(client, name="After restart")["id"] == created["id"] + 2


def test_declarations_apply_at_start_unless_the_api_changed_the_job(tmp_path: Path) -> None:
    """The rules of store/jobs.py on the repository: a declaration nobody changed through the API follows
    the config; one changed through the API keeps that change; a removed declaration deletes its job."""
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    store = Store(tmp_path / "state.sqlite3")
    try:
        repository = JobRepository(config, store)
        repository.seed(config.jobs)
        assert [job.name for job in repository.active(1)][:3] == ["eltml build", "Hourly Run", "Daily Run"]
        repository.update(repository[2], {"name": "Hourly (API)"})

        edited = dict(config.jobs)
        edited[1] = edited[1].__class__(**{**edited[1].__dict__, "execute_steps": ("dbt seed",)})
        edited[2] = edited[2].__class__(**{**edited[2].__dict__, "execute_steps": ("dbt seed",)})
        del edited[5]
        repository.seed(edited)
        assert repository[1].execute_steps == ("dbt seed",), (
            "an untouched declared job follows its declaration"
        )
        assert (repository[2].name, repository[2].execute_steps) == (
            "Hourly (API)",
            ("dbt build --select tag:hourly",),
        ), "an API change wins over the declaration"
        assert repository[5].state == DELETED
        assert repository.find(1, 5) is None
        repository.seed(edited)  # idempotent
        assert [job.id for job in repository.active(1)] == [1, 2, 3, 4]
    finally:
        store.close()
