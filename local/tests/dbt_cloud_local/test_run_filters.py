"""
The runs list filters as dbt Cloud's ``List Runs`` documents them, and the jobs list's: each filter
is checked against the whole list read without it (whatever runs the shared server holds, plus a
success and a cancelled run of this module's), in every encoding clients send (the provider's
``status__in`` as the string ``"[1, 2, 3]"``, ``include_related`` repeated or comma-joined,
dagster-dbt's ``finished_at__range`` as a JSON pair with ``account_id``). ``extra.pagination.total_count``
counts the filtered runs; an unknown or malformed parameter is a 400 naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook
from helpers import assert_error_envelope, trigger, wait_for_status

from dbt_cloud_local.testing import CONN_ID, LocalDbtCloud

RUNS = "/api/v2/accounts/1/runs/"
JOBS = "/api/v2/accounts/1/jobs/"
SUCCESS, CANCELLED = 10, 30


@pytest.fixture(scope="module")
def client(server: LocalDbtCloud) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def everything(server: LocalDbtCloud, client: httpx.Client) -> list[dict[str, Any]]:
    """Every run of the shared server, oldest first, once it holds a success and a cancelled run (the
    earlier tests' runs, else two of this module's) and none is in flight (the list stays still)."""
    for run in fetch(client, {"status__in": "[1, 2, 3]"}):
        wait_for_status(server, run["id"], timeout=300)
    runs = fetch(client, {})
    if not any(run["status"] == SUCCESS for run in runs):
        done = trigger(server, 5, steps_override=["dbt parse"])
        assert wait_for_status(server, done["id"])["status"] == SUCCESS
    if not any(run["status"] == CANCELLED for run in runs):
        cancelled = trigger(server, 3)
        client.post(f"{RUNS}{cancelled['id']}/cancel/")
        assert wait_for_status(server, cancelled["id"])["status"] == CANCELLED
    runs = fetch(client, {})
    assert len([run for run in runs if run["finished_at"]]) >= 2
    return runs


def fetch(client: httpx.Client, params: dict[str, Any] | list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Every run a query keeps (pages of 100), checking that total_count counts them all."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    runs: list[dict[str, Any]] = []
    while True:
        response = client.get(RUNS, params=[*pairs, ("limit", 100), ("offset", len(runs))])
        assert response.status_code == 200, response.text
        body = response.json()
        runs.extend(body["data"])
        if len(runs) >= body["extra"]["pagination"]["total_count"] or not body["data"]:
            assert len(runs) == body["extra"]["pagination"]["total_count"]
            return runs


def ids(runs: list[dict[str, Any]]) -> list[int]:
    return [run["id"] for run in runs]


def kept(everything: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> list[int]:
    return [run["id"] for run in everything if keep(run)]


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_finished_at_range_as_dagster_sends_it(
    client: httpx.Client, everything: list[dict[str, Any]]
) -> None:
    finished = sorted((run for run in everything if run["finished_at"]), key=lambda run: run["finished_at"])
    assert len(finished) >= 2
    low, high = finished[0]["finished_at"], finished[-1]["finished_at"]
    # dagster-dbt's get_runs_batch: a JSON pair of isoformat() strings, its account, order_by=finished_at.
    params = {
        "account_id": 1,
        "finished_at__range": json.dumps([low, high]),
        "order_by": "finished_at",
        "limit": 100,
        "offset": 0,
    }
    body = client.get(RUNS, params=params).json()
    expected = [run["id"] for run in finished if low <= run["finished_at"] <= high]
    assert ids(body["data"]) == expected, "inclusive on both ends, in finished_at order"
    assert body["extra"]["pagination"]["total_count"] == len(expected)
    assert body["extra"]["filters"]["finished_at__range"] == [
        moment(low).isoformat(timespec="microseconds"),
        moment(high).isoformat(timespec="microseconds"),
    ]
    paged = client.get(RUNS, params={**params, "limit": 1, "offset": 1}).json()
    assert ids(paged["data"]) == expected[1:2]
    assert paged["extra"]["pagination"] == {"count": 1, "total_count": len(expected)}

    # The spec's form (the key twice), other offsets, and open ends.
    in_paris = moment(low).astimezone(datetime.now().astimezone().tzinfo).isoformat()
    assert ids(fetch(client, [("finished_at__range", in_paris), ("finished_at__range", high)])) == sorted(
        expected
    )
    before_last = finished[-2]["finished_at"]
    between = kept(
        everything, lambda run: bool(run["finished_at"]) and low <= run["finished_at"] <= before_last
    )
    assert ids(fetch(client, {"finished_at__range": json.dumps([low, before_last])})) == between
    after = kept(everything, lambda run: bool(run["finished_at"]) and run["finished_at"] >= before_last)
    assert ids(fetch(client, {"finished_at__range": json.dumps([before_last, None])})) == after
    assert ids(fetch(client, {"finished_at__range": f'["{before_last}", ""]'})) == after
    until = kept(everything, lambda run: bool(run["finished_at"]) and run["finished_at"] <= low)
    assert ids(fetch(client, {"finished_at__range": json.dumps([None, low])})) == until


def test_created_at_range(client: httpx.Client, everything: list[dict[str, Any]]) -> None:
    middle = everything[len(everything) // 2]["created_at"]
    later = (moment(middle) + timedelta(days=1)).isoformat()
    expected = kept(everything, lambda run: middle <= run["created_at"])
    assert ids(fetch(client, {"created_at__range": json.dumps([middle, later])})) == expected
    naive = moment(middle).replace(tzinfo=None).isoformat()  # no offset: UTC, as dbt Cloud reads it
    assert ids(fetch(client, {"created_at__range": json.dumps([naive, None])})) == expected


def test_status_filters_in_every_encoding(client: httpx.Client, everything: list[dict[str, Any]]) -> None:
    expected = kept(everything, lambda run: run["status"] in (SUCCESS, CANCELLED))
    assert expected
    for params in (
        {"status__in": "[10, 30]"},  # the provider's str(list)
        {"status__in": "10,30"},
        [("status__in", 10), ("status__in", 30)],
    ):
        assert ids(fetch(client, params)) == expected, params
    assert ids(fetch(client, {"status": 30})) == kept(everything, lambda run: run["status"] == CANCELLED)
    assert fetch(client, {"status": 30, "status__in": "[10]"}) == [], "both must hold"


@pytest.mark.parametrize("field", ["id", "created_at", "finished_at", "updated_at", "status"])
def test_order_by_every_field_both_ways(
    client: httpx.Client, everything: list[dict[str, Any]], field: str
) -> None:
    ascending = fetch(client, {"order_by": field})
    descending = fetch(client, {"order_by": f"-{field}"})
    assert sorted(ids(ascending)) == sorted(ids(everything))
    keys = [(run[field] is None, run[field] or 0, run["id"]) for run in ascending]
    assert keys == sorted(keys), f"order_by={field}"
    values = [run[field] for run in descending if run[field] is not None]
    assert values == sorted(values, reverse=True), f"order_by=-{field}"


def test_every_documented_filter(client: httpx.Client, everything: list[dict[str, Any]]) -> None:
    some = everything[len(everything) // 2]
    cases: list[tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
        ({"job_definition_id": 5}, lambda run: run["job_definition_id"] == 5),
        ({"environment_id": 2}, lambda run: run["environment_id"] == 2),
        ({"project_id": 1}, lambda run: run["project_id"] == 1),
        ({"project_id__in": "[1, 7]"}, lambda run: run["project_id"] in (1, 7)),
        ({"project_id": 7}, lambda run: False),
        ({"pk": some["id"]}, lambda run: run["id"] == some["id"]),
        ({"pk__in": f"[{some['id']}, {everything[0]['id']}]"},
         lambda run: run["id"] in (some["id"], everything[0]["id"])),
        ({"id__gt": some["id"]}, lambda run: run["id"] > some["id"]),
        ({"deferring_run_id": some["id"]}, lambda run: False),  # no local run defers to another
        ({"state": "active"}, lambda run: True),
        ({"state": "all"}, lambda run: True),
        ({"state": 1}, lambda run: True),
        ({"state": "deleted"}, lambda run: False),  # runs are never deleted here
        ({"has_docs_generated": "true"}, lambda run: run["has_docs_generated"]),
        ({"has_docs_generated": "false"}, lambda run: not run["has_docs_generated"]),
        ({"has_sources_generated": "True"}, lambda run: run["has_sources_generated"]),
        ({"dbt_version": some["dbt_version"]}, lambda run: run["dbt_version"] == some["dbt_version"]),
        ({"dbt_version__in": '["0.0.0"]'}, lambda run: False),
        ({"job_definition_id": 5, "status": SUCCESS},
         lambda run: run["job_definition_id"] == 5 and run["status"] == SUCCESS),
    ]  # fmt: skip
    for params, keep in cases:
        assert ids(fetch(client, params)) == kept(everything, keep), params


def test_include_related_in_every_encoding(client: httpx.Client, everything: list[dict[str, Any]]) -> None:
    latest = max(everything, key=lambda run: run["id"] if run["status"] == SUCCESS else 0)
    for params in (
        [("include_related", "run_steps"), ("include_related", "job"), ("include_related", "trigger"),
         ("include_related", "environment")],
        [("include_related", "run_steps,job,trigger,environment")],
        [("include_related", '["run_steps", "job", "trigger", "environment"]')],
    ):  # fmt: skip
        run = fetch(client, [*params, ("pk", latest["id"])])[0]
        assert run["run_steps"][0]["name"] == "Clone git repository", params
        assert run["job"]["id"] == run["job_definition_id"], params
        assert run["trigger"]["cause"], params
        assert run["environment"]["id"] == run["environment_id"], params
    bare = fetch(client, {"pk": latest["id"]})[0]
    assert (bare["run_steps"], bare["job"], bare["trigger"], bare["environment"]) == ([], None, None, None)
    truncated = fetch(client, {"pk": latest["id"], "include_related": "run_steps"})[0]["run_steps"]
    full = fetch(client, {"pk": latest["id"], "include_related": "run_steps,debug_logs"})[0]["run_steps"]
    dbt_step = next(step for step in full if step["name"].startswith("Invoke dbt"))
    assert dbt_step["debug_logs"].endswith(
        next(s for s in truncated if s["id"] == dbt_step["id"])["debug_logs"]
    )
    assert all(step["debug_logs"] == step["truncated_debug_logs"] for step in truncated)


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"finished_at__range": "[yesterday, today]"}, ["finished_at__range", "date-time"]),
        ({"finished_at__range": '["2025-01-01T00:00:00+00:00"]'}, ["finished_at__range", "pair"]),
        ({"created_at__range": '["2025-01-01", "2025-02-01", "2025-03-01"]'}, ["created_at__range", "pair"]),
        ({"created_at__range": '["2025-13-45T00:00:00", null]'}, ["created_at__range", "ISO 8601"]),
        ({"finished_before": "2025-01-01"}, ["finished_before", "Unknown query parameter"]),
        ({"status__in": "[7]"}, ["Unknown run status 7"]),
        ({"status": "done"}, ["status", "integer"]),
        ({"order_by": "secret"}, ["secret"]),
        ({"order_by": "-cause"}, ["cause"]),
        ({"has_docs_generated": "maybe"}, ["has_docs_generated", "true or false"]),
        ({"include_related": "everything"}, ["include_related", "everything"]),
        ({"state": "sometimes"}, ["state", "active"]),
        ({"id__gt": "-1"}, ["id__gt"]),
        ({"pk__in": "[one]"}, ["pk__in"]),
        ({"account_id": 2}, ["account_id", "account 1"]),
    ],
)
def test_an_unknown_or_malformed_filter_is_refused(
    client: httpx.Client, params: dict[str, Any], mentions: list[str]
) -> None:
    assert_error_envelope(client.get(RUNS, params=params), 400, *mentions)


def test_the_providers_exact_calls_keep_working(
    airflow_client_env: LocalDbtCloud, everything: list[dict[str, Any]]
) -> None:
    hook = DbtCloudHook(CONN_ID)
    # reuse_existing_run: status__in as str(list), order_by=-created_at.
    payload = {"job_definition_id": 5, "status__in": "[1, 2, 3]", "order_by": "-created_at"}
    assert hook.get_job_runs(payload=payload).json()["data"] == []
    # list_job_runs: include_related as repeated keys, order_by=-created_at, paginated.
    responses = hook.list_job_runs(
        include_related=["run_steps", "job"], job_definition_id=5, order_by="-created_at"
    )
    runs = [run for response in responses for run in response.json()["data"]]
    assert ids(runs) == sorted(kept(everything, lambda run: run["job_definition_id"] == 5), reverse=True)
    assert all(run["job"]["id"] == 5 for run in runs)
    # retry_from_failure: the job's latest run.
    latest = hook.get_job_runs(payload={"job_definition_id": 5, "order_by": "-created_at", "limit": 1}).json()
    assert ids(latest["data"]) == ids(runs[:1])


def test_jobs_list_filters(client: httpx.Client) -> None:
    def job_ids(**params: Any) -> list[int]:
        response = client.get(JOBS, params={"limit": 100, **params})
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["data"]]

    active = job_ids()
    assert {1, 2, 3, 4, 5} <= set(active)
    assert job_ids(state="active") == job_ids(state=1) == active
    deleted = job_ids(state="deleted")
    assert job_ids(state=2) == deleted
    assert sorted(job_ids(state="all")) == sorted(active + deleted)
    assert job_ids(pk=2) == [2]
    assert job_ids(project_id__in="[1]") == active
    staging = client.get(JOBS, params={"environment_id": 2, "account_id": 1, "limit": 100}).json()["data"]
    assert {4, 5} <= {job["id"] for job in staging}
    assert {job["environment_id"] for job in staging} == {2}
    assert job_ids(triggers_schedule="false") == active, "no local job runs on a schedule"
    assert job_ids(triggers_schedule="true") == []
    assert job_ids(is_fusion_ready="true") == [], "local jobs run dbt Core"
    assert job_ids(is_fusion_ready="false") == active
    assert job_ids(is_system="false") == active
    assert job_ids(dbt_version__in='["0.0.0"]') == []
    with_runs = client.get(
        f"{JOBS}5/", params={"include_related": "most_recent_run,most_recent_completed_run"}
    )
    data = with_runs.json()["data"]
    assert data["most_recent_run"]["job_definition_id"] == 5
    assert data["most_recent_completed_run"]["is_complete"] is True
    for params, mention in (
        ({"state": "gone"}, "state"),
        ({"stat": 1}, "stat"),
        ({"is_system": "perhaps"}, "is_system"),
        ({"include_related": "runs"}, "include_related"),
        ({"account_id": 3}, "account_id"),
    ):
        assert_error_envelope(client.get(JOBS, params=params), 400, mention)
