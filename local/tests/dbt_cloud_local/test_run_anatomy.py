"""
A run as dbt Cloud shapes it, with real dbt: the steps dbt Cloud adds (1 ``Clone git repository``,
2 ``Create profile from connection DuckDB``, 3 ``Invoke dbt with `dbt deps` ``), the job's commands from
step 4, the checkbox steps (source freshness first, docs last) whose failure does not fail the run, and
``?step=`` on the artifact routes following the same numbers; the default is the last step that ran.
A failure in a built-in step fails the run, and a rerun of it starts over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import trigger, wait_for_status, write_config

from dbt_cloud_local.testing import LocalDbtCloud

SUCCESS, ERROR = 10, 20
JOBS = "/api/v2/accounts/1/jobs/"
VALUES = "/api/v3/accounts/1/projects/1/environment-variables/"
#: A job with both checkboxes: the tiny project's freshness check always fails, and its job-level
#: DBT_FAIL_MODEL override makes `dbt docs generate` fail (it compiles stg_orders), while its commands
#: never touch stg_orders.
CHECKBOX_JOB = {
    "name": "Checkboxes",
    "environment_id": 1,
    "execute_steps": ["dbt seed", "dbt run --select stg_customers"],
    "run_generate_sources": True,
    "generate_docs": True,
}


@pytest.fixture(scope="module")
def checkbox_run(server: LocalDbtCloud) -> Iterator[dict[str, Any]]:
    """A finished run of the checkbox job, with its steps."""
    with server.client() as client:
        job = client.post(JOBS, json=CHECKBOX_JOB).json()["data"]
        override = {"account_id": 1, "project_id": 1, "name": "DBT_FAIL_MODEL", "type": "job",
                    "job_definition_id": job["id"], "raw_value": "stg_orders"}  # fmt: skip
        assert client.post(VALUES, json=override).status_code == 200
        try:
            yield wait_for_status(server, trigger(server, job["id"])["id"])
        finally:
            client.delete(f"{JOBS}{job['id']}/")


def test_a_run_has_dbt_clouds_steps_and_the_checkboxes_do_not_fail_it(checkbox_run: dict[str, Any]) -> None:
    assert checkbox_run["status"] == SUCCESS, checkbox_run["status_message"]
    steps = checkbox_run["run_steps"]
    assert [(step["index"], step["name"], step["status"]) for step in steps] == [
        (1, "Clone git repository", SUCCESS),
        (2, "Create profile from connection DuckDB", SUCCESS),
        (3, "Invoke dbt with `dbt deps`", SUCCESS),
        (4, "Invoke dbt with `dbt source freshness`", ERROR),  # checkbox: first, fails, the run goes on
        (5, "Invoke dbt with `dbt seed`", SUCCESS),
        (6, "Invoke dbt with `dbt run --select stg_customers`", SUCCESS),
        (7, "Invoke dbt with `dbt docs generate`", ERROR),  # checkbox: last, fails, the run succeeds
    ]
    clone, profile, deps = steps[:3]
    assert "Copied" in clone["logs"], clone["logs"]
    assert "profile jaffle_shop: outputs dev (duckdb)" in profile["logs"], profile["logs"]
    assert "Running with dbt=" in deps["logs"]
    assert "DBT_FAIL_MODEL asked model stg_orders to fail" in steps[6]["logs"]
    for step in steps:
        assert step["finished_at"] >= step["started_at"], step
        assert step["duration"] is not None, step
        assert step["status_color"].startswith("#"), step["status_color"]
    assert [step["run_step_command"]["dbt_command"] for step in steps[:4]] == [
        None,
        None,
        "dbt deps",
        "dbt source freshness",
    ]


def test_artifacts_follow_the_step_numbers(server: LocalDbtCloud, checkbox_run: dict[str, Any]) -> None:
    run_id = checkbox_run["id"]
    artifacts = f"/api/v2/accounts/1/runs/{run_id}/artifacts/"
    with server.client() as client:

        def listed(**params: Any) -> list[str]:
            response = client.get(artifacts, params=params)
            assert response.status_code == 200, response.text
            return response.json()["data"]

        def nodes(step: int) -> set[str]:
            results = client.get(f"{artifacts}run_results.json", params={"step": step})
            assert results.status_code == 200, results.text
            return {result["unique_id"] for result in results.json()["results"]}

        assert listed() == listed(step=7), "without ?step= the artifacts are the last step's"
        assert listed(step=1) == listed(step=2) == [], "the clone and profile steps write no artifacts"
        assert "sources.json" in listed(step=4)
        assert nodes(5) == {"seed.jaffle_shop.raw_customers", "seed.jaffle_shop.raw_orders",
                            "seed.jaffle_shop.raw_payments"}  # fmt: skip
        assert nodes(6) == {"model.jaffle_shop.stg_customers"}
        assert client.get(f"{artifacts}run_results.json", params={"step": 2}).status_code == 404
        for missing in (0, 8):
            response = client.get(artifacts, params={"step": missing})
            assert response.status_code == 404, response.text
            assert "has steps 1 to 7" in response.json()["status"]["user_message"]
        step = client.get(f"/api/v2/accounts/1/steps/{checkbox_run['run_steps'][5]['id']}/").json()["data"]
        assert (step["index"], step["name"]) == (6, "Invoke dbt with `dbt run --select stg_customers`")


@pytest.fixture(scope="module")
def broken_packages_server(
    make_server: Callable[..., LocalDbtCloud], tmp_path_factory: pytest.TempPathFactory
):
    """A server whose project declares a package that does not exist: `dbt deps` (step 3) fails."""
    root = tmp_path_factory.mktemp("broken-packages")
    config = write_config(root)
    (Path(root / "project") / "packages.yml").write_text("packages:\n  - local: ../no_such_package\n")
    return make_server("broken-packages", config=config)


def test_a_failing_built_in_step_fails_the_run_and_a_rerun_starts_over(
    broken_packages_server: LocalDbtCloud,
) -> None:
    server = broken_packages_server
    failed = wait_for_status(server, trigger(server, 5)["id"])
    assert failed["status"] == ERROR
    assert [(step["index"], step["status"]) for step in failed["run_steps"]] == [(1, 10), (2, 10), (3, 20)]
    assert failed["status_message"].startswith("Step 3 (`dbt deps`) failed with exit code 2")
    assert "no_such_package" in failed["run_steps"][2]["logs"]
    with server.client() as client:
        details = client.get(f"/api/v2/accounts/1/runs/{failed['id']}/retry/").json()["data"]
        assert details == {
            "failed_step": "Invoke dbt with `dbt deps`",
            "skipped_steps": ["Invoke dbt with `dbt seed`"],
        }
        assert client.get(f"/api/v2/accounts/1/runs/{failed['id']}/").json()["data"][
            "retry_not_supported_reason"
        ] == ("RETRY_NO_RUN_RESULTS")
        rerun = client.post(f"{JOBS}5/rerun/").json()["data"]
    again = wait_for_status(server, rerun["id"])
    assert again["retrying_run_id"] == failed["id"]
    assert [step["name"] for step in again["run_steps"]] == [
        "Clone git repository",
        "Create profile from connection DuckDB",
        "Invoke dbt with `dbt deps`",
    ], "a run that failed in a built-in step is run again from the start"
