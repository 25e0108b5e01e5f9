"""The rerun-from-failure story, clicked through the Airflow 3.3 UI in a real (headless) Chromium.

A user triggers the eltml DAG from the UI while a dbt model is broken (the local dbt Cloud's
``DBT_FAIL_MODEL`` environment variable), watches the dbt Cloud task fail after the DAG's own retries,
reads in the task log which model and which step failed, fixes the cause, clears the task (with
downstream) and watches the pipeline finish. The local dbt Cloud then shows that the rerun was a
``dbt retry`` that executed exactly the nodes that failed or were skipped, nothing else.

Everything is real: the stack from ``make up`` (scheduler, triggerer, api-server, LocalExecutor,
Postgres), the provider, dbt Core on DuckDB. The DAG keeps its own settings (retries=2, 30 s apart):
there is no test-only switch for them, so the test waits them out (about 3 of its ~5 minutes).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudJobRunStatus
from browser_stack import BrowserStack, open_dag_from_the_list, unpause_and_trigger
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

DAG_ID = "dbt_cloud_provider_eltml"
DBT_TASK = "trigger_dbt_cloud_job_run"
ML_TASK = "ml_training"
FAILED_MODEL = "model.jaffle_shop.stg_orders"
FAIL_MESSAGE = "DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail"
SUCCESS, ERROR = DbtCloudJobRunStatus.SUCCESS.value, DbtCloudJobRunStatus.ERROR.value
NOT_OK = {"error", "fail", "skipped", "runtime error"}
#: The four README screenshots (docs/screenshots/ with `make screenshots`).
SHOTS = {
    "failed": "1-dag-graph-dbt-task-failed.png",
    "log": "2-failed-task-log.png",
    "rerun": "3-cleared-and-rerun-succeeded.png",
    "dbt_cloud": "4-local-dbt-cloud-rerun-page.png",
}


@pytest.mark.timeout(600)
def test_failed_dbt_task_is_explained_in_its_log_then_cleared_and_reruns_only_what_failed(
    browser_stack: BrowserStack, page: Page, screenshots: Path, tmp_path: Path
):
    started = time.monotonic()
    stack = browser_stack
    stack.wait_for_dag(DAG_ID)
    stack.set_environment_variable("DBT_FAIL_MODEL", "stg_orders")  # break a model in dbt Cloud
    run_id: str | None = None
    try:
        run_id = _trigger_from_the_ui(page, stack)
        print(f"triggered {run_id} after {time.monotonic() - started:.0f}s")

        # The first try and the DAG's two retries (30 s apart) all fail; ml_training never runs.
        _wait_for_states(page, stack, run_id, {DBT_TASK: "failed", ML_TASK: "upstream_failed"}, timeout=360)
        print(f"dbt task failed after {time.monotonic() - started:.0f}s")
        page.get_by_role("button", name="Fit View").click()
        page.screenshot(path=screenshots / SHOTS["failed"])

        _read_the_failure_in_the_task_log(page, screenshots / SHOTS["log"])

        stack.set_environment_variable("DBT_FAIL_MODEL", None)  # fix the cause
        _clear_with_downstream(page)
        _wait_for_states(page, stack, run_id, {DBT_TASK: "success", ML_TASK: "success"}, timeout=240)
        print(f"cleared task and ml_training succeeded after {time.monotonic() - started:.0f}s")
        # Still on the dbt task's page: the graph, and the task's four tries (three failed, one success).
        expect(page.get_by_role("button", name="4", exact=True)).to_be_visible()
        page.get_by_role("button", name="Fit View").click()
        page.screenshot(path=screenshots / SHOTS["rerun"])

        rerun = _assert_the_rerun_ran_only_failed_and_skipped_nodes(stack, run_id)

        page.goto(rerun["href"])
        expect(page.get_by_role("heading", name=re.compile(rf"Run #{rerun['id']}\b"))).to_be_visible()
        expect(page.get_by_text("Invoke dbt with `dbt retry`").first).to_be_visible()
        page.screenshot(path=screenshots / SHOTS["dbt_cloud"])
    except BaseException:
        failure = tmp_path / "failure.png"  # never into docs/screenshots
        try:
            page.screenshot(path=failure)
            print(f"Screenshot at the failure: {failure}; page {page.url}")
        except PlaywrightError as exc:
            print(f"No screenshot at the failure: {exc}")
        print(stack.diagnostics(DAG_ID, run_id))
        raise
    finally:
        elapsed = time.monotonic() - started
        print(f"browser test took {elapsed:.0f}s after make up; screenshots in {screenshots}")


def _trigger_from_the_ui(page: Page, stack: BrowserStack) -> str:
    """Home -> Dags -> the eltml DAG, graph view, unpause, Trigger (single run). Returns the run id."""
    open_dag_from_the_list(page, stack.ui, DAG_ID)
    page.get_by_role("button", name=re.compile(r"^Show Graph")).click()
    expect(page.get_by_test_id(f"rf__node-{DBT_TASK}")).to_be_visible()
    # A new DAG starts paused.
    expect(page.get_by_test_id("toggle-pause").get_by_role("checkbox")).not_to_be_checked()
    return unpause_and_trigger(page, DAG_ID)


def _wait_for_states(
    page: Page, stack: BrowserStack, run_id: str, wanted: dict[str, str], timeout: float
) -> None:
    """Wait until the graph's state badges show ``wanted``; fail early if a task ends otherwise.

    The UI refreshes a running DAG run by itself; the page is reloaded only when it has shown nothing
    new for a while, as a user would press F5.
    """
    badges = {task: page.get_by_test_id(f"rf__node-{task}").get_by_test_id("state-badge") for task in wanted}
    finished = {"success", "failed", "upstream_failed", "skipped", "removed"}
    deadline, last_change, last_seen = time.monotonic() + timeout, time.monotonic(), None
    in_progress = False  # until the UI shows the tasks moving, finished states may be stale ones
    while True:
        seen = {task: (badge.inner_text().strip() if badge.count() else "") for task, badge in badges.items()}
        if seen == wanted:
            return
        in_progress |= any(state not in finished for state in seen.values())
        if in_progress and all(state in finished for state in seen.values()):
            raise AssertionError(f"the tasks ended {seen}, expected {wanted}")
        if seen != last_seen:
            last_seen, last_change = seen, time.monotonic()
        elif time.monotonic() - last_change > 30:
            print(f"reloading the page: the UI has shown {seen} for 30s")
            page.reload()
            last_change = time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {timeout:.0f}s the UI shows {seen}, expected {wanted}; "
                f"REST API says {stack.task_states(DAG_ID, run_id)}"
            )
        page.wait_for_timeout(2000)


def _read_the_failure_in_the_task_log(page: Page, path: Path) -> None:
    """Open the failed task's log (full screen); it names the failed model and the failed step."""
    page.get_by_test_id(f"rf__node-{DBT_TASK}").get_by_role("link", name=DBT_TASK).click()
    expect(page).to_have_url(re.compile(rf"/tasks/{DBT_TASK}$"))
    page.get_by_role("button", name=re.compile("fullscreen", re.IGNORECASE)).click()
    log = page.get_by_role("dialog")
    expect(log.get_by_text("Task Tries")).to_be_visible()
    # The last try (the default) is the second retry: `dbt retry` of what failed, failing again.
    expect(log).to_contain_text(FAIL_MESSAGE, timeout=30_000)
    expect(log).to_contain_text("(`dbt retry`) failed")
    expect(log).to_contain_text(f"failed: {FAILED_MODEL}")
    # The first try ran the job's `dbt build` step.
    log.get_by_role("button", name="1", exact=True).click()
    log.get_by_role("button", name="Log Settings").click()
    page.get_by_role("menuitem", name=re.compile(r"^Wrap")).click()  # long lines in full
    summary = log.get_by_text("(`dbt build`) failed with exit code")
    expect(summary).to_contain_text(f"failed: {FAILED_MODEL}", timeout=30_000)
    expect(log).to_contain_text(FAIL_MESSAGE)
    # Bring the summary line to the top of the log view for the screenshot.
    summary.evaluate(
        """line => {
            line.scrollIntoView({block: 'start'});
            for (let box = line.parentElement; box; box = box.parentElement) {
                if (box.scrollWidth > box.clientWidth) box.scrollLeft = 0;
                if (box.scrollHeight > box.clientHeight) box.scrollTop -= 60;
            }
        }"""
    )
    page.wait_for_timeout(500)
    page.screenshot(path=path)
    log.get_by_role("button", name="Close").click()
    expect(log).to_be_hidden()


def _clear_with_downstream(page: Page) -> None:
    """Clear the failed dbt task with its downstream (ml_training), from the task instance page."""
    page.get_by_role("button", name=re.compile(r"\bclear\b", re.IGNORECASE)).first.click()
    form = page.get_by_role("dialog")
    expect(form).to_contain_text(f"Clear Task Instance: {DBT_TASK}")
    expect(form.get_by_role("row").filter(has_text=DBT_TASK)).to_have_count(1)
    affected = form.get_by_role("row").filter(has_text=ML_TASK)
    try:  # "Downstream" is preselected; the affected tasks load a moment after the dialog opens
        expect(affected).to_have_count(1, timeout=10_000)
    except AssertionError:
        form.get_by_role("button", name="Downstream", exact=True).click()
        expect(affected).to_have_count(1)  # ml_training is cleared with it
    expect(form.get_by_role("row").filter(has_text="extract")).to_have_count(0)  # upstream is not
    form.get_by_role("button", name="Confirm").click()
    expect(form).to_be_hidden()


def _assert_the_rerun_ran_only_failed_and_skipped_nodes(stack: BrowserStack, run_id: str) -> dict:
    states = stack.task_states(DAG_ID, run_id)
    assert states[DBT_TASK] == ("success", 4), f"3 failed tries, then the cleared one: {states}"
    assert states[ML_TASK][0] == "success", states
    assert states["extract"] == ("success", 1), f"extract was not rerun: {states}"
    assert states["load"] == ("success", 1), f"load was not rerun: {states}"

    runs = stack.runs()
    assert [run["status"] for run in runs] == [ERROR, ERROR, ERROR, SUCCESS], runs
    assert [run["trigger"]["cause_category"] for run in runs] == ["api", "rerun", "rerun", "rerun"], runs
    original, rerun = stack.run(runs[0]["id"]), stack.run(runs[-1]["id"])
    xcom = stack.airflow(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{DBT_TASK}/xcomEntries/return_value"
    )
    assert int(xcom["value"]) == rerun["id"], f"the cleared task waited for run {xcom['value']}"

    build_step = next(step["index"] for step in original["run_steps"] if "dbt build" in step["name"])
    original_results = stack.run_results(original["id"], build_step)
    expected = {uid for uid, status in original_results.items() if status in NOT_OK}
    assert FAILED_MODEL in expected
    assert any(status in {"success", "pass"} for status in original_results.values())

    # dbt Cloud's steps 1 to 3 (clone, profile, deps), then the retry as the first command: step 4.
    retry_step = rerun["run_steps"][3]
    assert (retry_step["index"], retry_step["name"]) == (4, "Invoke dbt with `dbt retry`"), rerun["run_steps"]
    executed = stack.run_results(rerun["id"], retry_step["index"])
    assert set(executed) == expected, (
        "the rerun executed exactly the failed and skipped nodes; "
        f"extra: {sorted(set(executed) - expected)}, missing: {sorted(expected - set(executed))}"
    )
    assert set(executed.values()) <= {"success", "pass"}, executed
    return rerun
