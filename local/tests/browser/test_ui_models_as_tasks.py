"""Every dbt model a task, clicked through the Airflow 3.3 UI in a real (headless) Chromium.

A user triggers ``dbt_cloud_models_as_tasks`` while one dbt model is broken (the local dbt Cloud's
``DBT_FAIL_MODEL``): in the grid, each model, seed and snapshot of the dbt Cloud job is a row; the broken
model's task is red and its log says why (dbt's error line), the models dbt skipped below it are
``upstream_failed``, everything else is green, and dbt Cloud ran the job once. The user fixes the
cause, clears the red task with its downstream (the dialog lists the group's launcher and finalize
with it), and watches the rows turn green: one new dbt Cloud run built exactly those nodes and their
tests.

Everything is real: the stack from ``make up`` (scheduler, triggerer, api-server, LocalExecutor,
Postgres), the provider, dbt Core on DuckDB. Screenshots of the grid before the clear, of the clear
and of the grid after it go to ``$BROWSER_SCREENSHOTS_DIR`` (``make screenshots``: docs/screenshots).
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

from include.dbt_cloud.job_graph import load_job_graph
from include.paths import PROJECT_ROOT

DAG_ID = "dbt_cloud_models_as_tasks"
GROUP = "eltml_build"
LAUNCH, FINALIZE = f"{GROUP}.launch", f"{GROUP}.finalize"
BROKEN = f"{GROUP}.stg_orders"
BELOW = [f"{GROUP}.orders", f"{GROUP}.customers", f"{GROUP}.customer_features"]
FAIL_MESSAGE = "DBT_FAIL_MODEL asked jaffle_shop.stg_orders to fail"
SUCCESS, ERROR = DbtCloudJobRunStatus.SUCCESS.value, DbtCloudJobRunStatus.ERROR.value
#: Long log lines wrapped, so dbt's error line shows in full on the screenshots.
STACK_ENV = {"AIRFLOW__API__DEFAULT_WRAP": "True"}
SHOTS = {
    "failed": "6-models-as-tasks-failed-model.png",
    "clear": "7-models-as-tasks-clear-with-downstream.png",
    "cleared": "8-models-as-tasks-cleared-one-exact-run.png",
}


@pytest.mark.timeout(900)
def test_one_failed_model_is_red_in_the_grid_then_clearing_it_reruns_exactly_its_nodes(
    browser_stack: BrowserStack, page: Page, screenshots: Path, tmp_path: Path
):
    started = time.monotonic()
    stack = browser_stack
    graph = load_job_graph(PROJECT_ROOT / "include/dbt_manifests/eltml_build.json", ("launch", "finalize"))
    stack.wait_for_dag(DAG_ID)
    stack.set_environment_variable("DBT_FAIL_MODEL", "stg_orders")  # break a model in dbt Cloud
    run_id: str | None = None
    try:
        run_id = _trigger_from_the_ui(page, stack)
        _wait_for_run(stack, run_id, "failed", timeout=360)
        print(f"DAG run failed after {time.monotonic() - started:.0f}s")
        states = stack.task_states(DAG_ID, run_id)
        assert states[BROKEN][0] == "failed", states
        assert {task: states[task][0] for task in BELOW} == dict.fromkeys(BELOW, "upstream_failed"), states
        others = [task for task in states if task not in {BROKEN, *BELOW, "ml_training"}]
        assert {task: states[task][0] for task in others} == dict.fromkeys(others, "success"), states
        assert len(stack.runs()) == 1, "one dbt Cloud run for the whole group"

        # The grid: one row per node; the broken model's log names the error.
        _open_task_in_grid(page, stack, run_id, BROKEN)
        expect(page.get_by_text(FAIL_MESSAGE).first).to_be_visible(timeout=30_000)
        expect(
            page.get_by_text("model jaffle_shop.stg_orders failed in dbt Cloud run 1").first
        ).to_be_visible()
        page.mouse.move(700, 880)  # no tooltip over the grid
        page.screenshot(path=screenshots / SHOTS["failed"])

        stack.set_environment_variable("DBT_FAIL_MODEL", None)  # fix the cause
        _clear_with_downstream(page, screenshots / SHOTS["clear"])
        stack.wait_for_the_clear(DAG_ID, run_id)
        _wait_for_run(stack, run_id, "success", timeout=300)
        print(f"cleared task and its downstream succeeded after {time.monotonic() - started:.0f}s")

        _assert_one_new_run_built_exactly_the_cleared_nodes(stack, run_id, graph)
        _open_task_in_grid(page, stack, run_id, LAUNCH)
        expect(page.get_by_text("Path: trigger a subset").first).to_be_visible(timeout=30_000)
        expect(page.get_by_text("fqn:jaffle_shop.staging.stg_orders+").first).to_be_visible()
        _no_tooltip(page)
        page.screenshot(path=screenshots / SHOTS["cleared"])
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
        print(
            f"browser test took {time.monotonic() - started:.0f}s after make up; screenshots in {screenshots}"
        )


def _trigger_from_the_ui(page: Page, stack: BrowserStack) -> str:
    """Dags -> the DAG, unpause, Trigger. Returns the new DAG run's id."""
    open_dag_from_the_list(page, stack.ui, DAG_ID)
    return unpause_and_trigger(page, DAG_ID)


def _wait_for_run(stack: BrowserStack, run_id: str, wanted: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = stack.airflow(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state == wanted:
            return
        if state in ("success", "failed") and state != wanted:
            raise AssertionError(
                f"the DAG run ended {state}, expected {wanted}: {stack.task_states(DAG_ID, run_id)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"the DAG run is still {state} after {timeout:.0f}s")
        time.sleep(3)


def _open_task_in_grid(page: Page, stack: BrowserStack, run_id: str, task_id: str) -> None:
    """The DAG's grid with the group expanded, the task instance of ``run_id`` selected (its log)."""
    page.goto(f"{stack.ui}/dags/{DAG_ID}")
    expect(page.get_by_test_id(f"task-{GROUP}")).to_be_visible()
    expand = page.get_by_test_id("expand-all-button")  # "Expand all task groups"
    expect(expand).to_be_visible()
    if expand.is_enabled():  # disabled once expanded: the UI remembers it
        expand.click()
    cell = page.get_by_test_id(f"grid-{run_id}-{task_id}")
    expect(cell).to_be_visible()
    cell.click()
    expect(page).to_have_url(re.compile(rf"/tasks/{re.escape(task_id)}$"))  # its page opens on its log


def _no_tooltip(page: Page) -> None:
    """The grid cell just clicked keeps the focus, and its tooltip with it: move away, blur, wait."""
    page.mouse.move(1100, 780)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.wait_for_timeout(500)


def _clear_with_downstream(page: Page, screenshot: Path) -> None:
    """Clear the failed task with its downstream, from its task instance page: the launcher (setup)
    and finalize (teardown) come along, the nodes that succeeded do not."""
    page.get_by_role("button", name=re.compile(r"\bclear\b", re.IGNORECASE)).first.click()
    form = page.get_by_role("dialog")
    expect(form).to_contain_text("Clear Task Instance: stg_orders")
    expected = {LAUNCH, FINALIZE, BROKEN, *BELOW, "ml_training"}
    expect(form).to_contain_text(f"Affected Tasks: {len(expected)}", timeout=15_000)
    for task_id in expected:
        expect(form.get_by_role("cell", name=task_id, exact=True)).to_have_count(1)
    for untouched in (f"{GROUP}.stg_customers", "extract", "load"):
        expect(form.get_by_role("cell", name=untouched, exact=True)).to_have_count(0)
    page.screenshot(path=screenshot)
    form.get_by_role("button", name="Confirm").click()
    expect(form).to_be_hidden()


def _assert_one_new_run_built_exactly_the_cleared_nodes(stack: BrowserStack, run_id: str, graph) -> None:
    states = stack.task_states(DAG_ID, run_id)
    assert {task: state for task, (state, _) in states.items()} == dict.fromkeys(states, "success"), states
    assert states[LAUNCH][1] == 2, f"the launcher ran once per clear: {states[LAUNCH]}"
    assert states[BROKEN][1] == 2, states[BROKEN]
    assert states[f"{GROUP}.stg_customers"][1] == 1, "a node that succeeded is not rerun"

    first, rerun = (stack.run(run["id"]) for run in stack.runs())  # exactly two runs
    assert first["status"] == ERROR
    assert first["trigger"]["steps_override"] is None
    cleared = [
        graph.node(name).unique_id for name in ("stg_orders", "orders", "customers", "customer_features")
    ]
    assert rerun["status"] == SUCCESS
    assert rerun["trigger"]["steps_override"] == [str(graph.rerun_command(cleared).command)]
    xcom = stack.airflow(
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{LAUNCH}/xcomEntries/return_value"
    )
    assert int(xcom["value"]) == rerun["id"]
    (step,) = [s["index"] for s in rerun["run_steps"] if s["name"].startswith("Invoke dbt with `dbt build")]
    executed = stack.run_results(rerun["id"], step)
    expected = {selected for uid in cleared for selected in graph.by_unique_id[uid].selected_ids}
    assert set(executed) == expected, (
        f"extra: {sorted(set(executed) - expected)}, missing: {sorted(expected - set(executed))}"
    )
    assert set(executed.values()) <= {"success", "pass"}, executed
