"""
Security: authentication, what a steps_override may run, artifact paths, and where files are written.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from helpers import TOKEN, trigger, wait_for_status

from dbt_cloud_local.testing import LocalDbtCloud


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Token wrong-token-000000"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Token"},
        {"Authorization": f"Token {TOKEN}x"},
    ],
)
@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/api/v2/accounts/1/",
        "/api/v2/accounts/1/runs/",
        "/api/v3/accounts/1/projects/",
        "/_local/faults",
    ],
)
def test_missing_or_wrong_token_is_refused(server: LocalDbtCloud, url: str, headers: dict[str, str]) -> None:
    response = httpx.get(f"{server.base_url}{url}", headers=headers, verify=server.trust)
    assert response.status_code == 401
    assert response.json()["status"]["is_success"] is False
    assert TOKEN not in response.text


def test_token_and_bearer_schemes_are_accepted(server: LocalDbtCloud) -> None:
    for scheme in ("Token", "Bearer", "token"):
        response = httpx.get(
            f"{server.base_url}/api/v2/accounts/1/",
            headers={"Authorization": f"{scheme} {TOKEN}"},
            verify=server.trust,
        )
        assert response.status_code == 200, scheme


def test_token_never_reaches_the_logs(server: LocalDbtCloud) -> None:
    assert TOKEN not in server.log_path.read_text()
    assert all(TOKEN not in path.read_text(errors="ignore") for path in server.data_dir.rglob("*.log"))


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (["dbt run; rm -rf /"], "shell metacharacters"),
        (["dbt run && ls"], "shell metacharacters"),
        (["dbt run | tee x"], "shell metacharacters"),
        (["dbt run $(whoami)"], "shell metacharacters"),
        (["dbt run `whoami`"], "shell metacharacters"),
        (["dbt run > /tmp/out"], "shell metacharacters"),
        (["dbt run\nrm -rf /"], "shell metacharacters"),
        (["rm -rf /"], "must start with 'dbt'"),
        (["python -c 'print(1)'"], "must start with 'dbt'"),
        (["dbt init"], "not allowed"),
        (["dbt debug"], "not allowed"),
        (["dbt docs serve"], "not allowed"),
        (["dbt run --project-dir /etc"], "--project-dir is set by the local dbt Cloud server"),
        (["dbt run --profiles-dir=/root"], "--profiles-dir is set by"),
        (["dbt run --target-path ../../elsewhere"], "--target-path is set by"),
        (["dbt run --log-path /tmp"], "--log-path is set by"),
        (["dbt run --state /tmp/state"], "must be a relative path"),
        (["dbt run --state=../../other-run"], "must not contain '..'"),
        (["dbt source freshness --output ~/sources.json"], "must be a relative path"),
        (["dbt build", "dbt run-operation x --defer-state ../x"], "steps_override[1]"),
        ("dbt build", "non-empty list"),
        ([], "non-empty list"),
        ([42], "non-empty string"),
    ],
)
def test_steps_override_must_be_a_safe_dbt_command(
    server: LocalDbtCloud, steps: object, message: str
) -> None:
    with server.client() as client:
        before = client.get("/api/v2/accounts/1/runs/", params={"limit": 1}).json()["extra"]["pagination"]
        response = client.post(
            "/api/v2/accounts/1/jobs/5/run/", json={"cause": "attack", "steps_override": steps}
        )
        after = client.get("/api/v2/accounts/1/runs/", params={"limit": 1}).json()["extra"]["pagination"]
    assert response.status_code == 400, response.text
    assert message in response.json()["status"]["user_message"]
    assert after["total_count"] == before["total_count"], "a refused request must not create a run"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"cause": "x", "schema_override": "main; drop table x"},
            "schema_override must be a plain identifier",
        ),
        (
            {"cause": "x", "target_name_override": "../prod"},
            "target_name_override must be a plain identifier",
        ),
        ({"cause": "x", "threads_override": 0}, "threads_override"),
        ({"cause": "x", "git_sha": "HEAD; ls"}, "git_sha"),
        ({"cause": ""}, "cause is required"),
        ({"cause": "x" * 256}, "at most 255"),
    ],
)
def test_run_request_fields_are_validated(
    server: LocalDbtCloud, body: dict[str, object], message: str
) -> None:
    with server.client() as client:
        response = client.post("/api/v2/accounts/1/jobs/5/run/", json=body)
    assert response.status_code == 400
    assert message in response.json()["status"]["user_message"]


@pytest.fixture(scope="module")
def finished_run(server: LocalDbtCloud) -> int:
    run = trigger(server, 5, steps_override=["dbt seed --select raw_payments"], schema_override="main")
    assert wait_for_status(server, run["id"])["status"] == 10
    return run["id"]


@pytest.mark.parametrize(
    "path",
    [
        "../../../../../../etc/passwd",
        "..%2F..%2F..%2Fstate.sqlite3",
        "%2E%2E/%2E%2E/%2E%2E/state.sqlite3",
        "compiled/../../../project/profiles.yml",
        "..\\..\\state.sqlite3",
        "partial_parse.msgpack",
        "~/secrets",
    ],
)
def test_artifact_paths_cannot_leave_the_step_target(
    server: LocalDbtCloud, finished_run: int, path: str
) -> None:
    with server.client() as client:
        response = client.get(f"/api/v2/accounts/1/runs/{finished_run}/artifacts/{path}")
    assert response.status_code in (400, 404), response.text
    assert "root:" not in response.text
    assert "SQLite" not in response.text


def test_runs_write_nothing_outside_the_data_dir(server: LocalDbtCloud, finished_run: int) -> None:
    """The project source stays pristine; dbt's HOME, target and logs live under the data dir."""
    root = server.data_dir.parent
    source = root / "project"
    assert not (source / "target").exists()
    assert not (source / "logs").exists()
    assert sorted(path.name for path in root.iterdir()) == ["config.yml", "data", "project", "warehouse"]
    assert sorted(path.name for path in (root / "warehouse").iterdir() if path.suffix == ".duckdb") in (
        ["prod.duckdb", "staging.duckdb"],
        ["staging.duckdb"],
        ["prod.duckdb"],
    )
    run_dir = server.data_dir / "runs" / str(finished_run)
    assert (run_dir / "steps" / "4" / "target" / "run_results.json").exists()  # the job's first command
    assert (run_dir / "steps" / "4" / "logs" / "dbt.log").exists()
    assert (run_dir / "profile" / "profiles.yml").exists(), "the run's own profile"
    assert not Path(server.data_dir / "home").exists() or all(
        path.is_relative_to(server.data_dir) for path in (server.data_dir / "home").rglob("*")
    )
