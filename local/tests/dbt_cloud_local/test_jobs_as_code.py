"""
Jobs as code: dbt Labs' ``dbt-jobs-as-code`` (1.22.0, its own venv) against the running local dbt
Cloud, as real subprocesses with the environment the README gives (``DBT_API_KEY``, ``DBT_BASE_URL``,
``REQUESTS_CA_BUNDLE``): ``plan`` of the shipped jobs.yml on a fresh server, ``import-jobs``, then
``plan``/``sync``/``plan`` of an edited copy, and the result across a restart. The server runs the
packaged config, so the jobs are the shipped file's and the DAGs' job names are checked against them.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook
from helpers import TOKEN

from dbt_cloud_local.testing import CONN_ID, REPO_ROOT, LocalDbtCloud, start_local_dbt_cloud

CLI = REPO_ROOT / ".venv-jobs-as-code" / "bin" / "dbt-jobs-as-code"
JOBS_FILE = REPO_ROOT / "dbt_cloud_jobs" / "jobs.yml"
VARS_FILE = REPO_ROOT / "dbt_cloud_jobs" / "local.vars.yml"
#: The DAG files that look jobs up by name.
NAMED_JOB_DAGS = ("dbt_cloud_scheduled_jobs.py", "dbt_cloud_after_ingestion.py")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jobs-as-code") / "data"


def start(data_dir: Path) -> LocalDbtCloud:
    """The packaged config (jobs from jobs.yml), its warehouse kept out of the checkout's .state/."""
    env = {"JAFFLE_SHOP_WAREHOUSE": str(data_dir.parent / "warehouse.duckdb")}
    return start_local_dbt_cloud(data_dir, token=TOKEN, env=env)


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[LocalDbtCloud]:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: run `make venv` (it builds .venv-jobs-as-code from the lock)")
    server = start(data_dir)
    try:
        yield server
    finally:
        server.stop()


def jobs_as_code(server: LocalDbtCloud, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a person would, with only what its docs ask for in the environment."""
    env = {
        **{key: value for key, value in os.environ.items() if "PROXY" not in key.upper()},
        "DBT_API_KEY": server.token,
        "DBT_BASE_URL": server.base_url,
        "REQUESTS_CA_BUNDLE": str(server.ca_path),
        "NO_PROXY": "localhost,127.0.0.1",
    }
    result = subprocess.run(
        [str(CLI), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def plan(server: LocalDbtCloud, jobs_file: Path) -> dict[str, Any]:
    result = jobs_as_code(server, "plan", str(jobs_file), "--vars-yml", str(VARS_FILE), "--json")
    return json.loads(result.stdout.strip().splitlines()[-1])


def changes(planned: dict[str, Any]) -> set[tuple[str, str]]:
    return {(change["action"], change["identifier"]) for change in planned["job_changes"]}


def dag_job_names() -> set[str]:
    """Every ``job_name=`` literal and ``JOBS_BY_SCHEDULE`` value of the DAGs that look jobs up by name."""
    found = set()
    for name in NAMED_JOB_DAGS:
        tree = ast.parse((REPO_ROOT / "dags" / name).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "job_name"
                and isinstance(node.value, ast.Constant)
            ):
                found.add(node.value.value)
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", "") == "JOBS_BY_SCHEDULE" for t in node.targets
            ):
                found.update(ast.literal_eval(node.value).values())
    return found


def test_the_shipped_jobs_file_is_what_the_server_holds(server: LocalDbtCloud) -> None:
    """A fresh local dbt Cloud already holds jobs.yml, as ``sync`` would have made it: no changes."""
    planned = plan(server, JOBS_FILE)
    assert planned == {"job_changes": [], "env_var_overwrite_changes": []}


def test_the_dags_find_their_jobs_by_name(server: LocalDbtCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The names the scheduled-jobs DAGs look up (with the ``[[identifier]]`` sync adds) resolve."""
    for key, value in server.client_env().items():
        monkeypatch.setenv(key, value)
    names = dag_job_names()
    assert names == {"Hourly Run [[hourly_run]]", "Daily Run [[daily_run]]"}
    hook = DbtCloudHook(CONN_ID)
    for name in names:
        job = hook.get_job_by_name(project_name="jaffle_shop", environment_name="Production", job_name=name)
        assert job["name"] == name


def test_import_jobs_exports_the_file_back(server: LocalDbtCloud) -> None:
    result = jobs_as_code(server, "import-jobs", "--account-id", "1")
    exported = yaml.safe_load(result.stdout)["jobs"]
    shipped = yaml.safe_load(VARS_FILE.read_text())
    assert set(exported) == {"eltml_build", "hourly_run", "daily_run"}
    assert exported["hourly_run"]["name"] == "Hourly Run"
    assert exported["eltml_build"]["execute_steps"] == ["dbt seed", "dbt build"]
    assert {job["account_id"] for job in exported.values()} == {shipped["account_id"]}


def test_plan_sync_plan_round_trip(server: LocalDbtCloud, tmp_path: Path, data_dir: Path) -> None:
    """An edited file: plan shows the change, sync applies it through the API, plan shows nothing; the
    result survives a restart, because API changes win over the file the server seeded."""
    raw = JOBS_FILE.read_text()
    edited = raw.replace("dbt build --select tag:hourly", "dbt build --select tag:hourly --exclude tag:slow")
    edited = edited.replace("  daily_run:", "  nightly_seed:", 1).replace(
        "name: Daily Run", "name: Nightly Seed"
    )
    assert edited != raw
    jobs_file = tmp_path / "jobs.yml"
    jobs_file.write_text(edited)

    assert changes(plan(server, jobs_file)) == {
        ("UPDATE", "hourly_run"),
        ("CREATE", "nightly_seed"),
        ("DELETE", "daily_run"),
    }
    jobs_as_code(server, "sync", str(jobs_file), "--vars-yml", str(VARS_FILE))
    assert plan(server, jobs_file) == {"job_changes": [], "env_var_overwrite_changes": []}

    with server.client() as client:
        listed = {job["name"]: job for job in client.get("/api/v2/accounts/1/jobs/").json()["data"]}
    assert set(listed) == {
        "eltml build [[eltml_build]]",
        "Hourly Run [[hourly_run]]",
        "Nightly Seed [[nightly_seed]]",
    }
    assert listed["Hourly Run [[hourly_run]]"]["execute_steps"] == [
        "dbt build --select tag:hourly --exclude tag:slow"
    ]

    server.stop()
    restarted = start(data_dir)
    try:
        assert plan(restarted, jobs_file) == {"job_changes": [], "env_var_overwrite_changes": []}
        assert changes(plan(restarted, JOBS_FILE)) == {
            ("UPDATE", "hourly_run"),
            ("CREATE", "daily_run"),
            ("DELETE", "nightly_seed"),
        }
    finally:
        restarted.stop()
