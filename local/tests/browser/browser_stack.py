"""The browser suites' view of a running stack: its UI, its REST API and its local dbt Cloud.

``BrowserStack`` wraps a stack from ``localdev.testing`` (the one the stack tests use) with what a
browser test checks from outside the UI; ``chromium_executable`` finds the Chromium to drive.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.error
from typing import Any
from urllib.parse import unquote

import httpx
from playwright.sync_api import Page, expect

from dbt_cloud_local.client import client_access
from localdev.testing import IsolatedStack

VIEWPORT = {"width": 1280, "height": 800}
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STACK_LOGS = ("scheduler", "triggerer", "api-server", "dag-processor", "dbt-cloud-local")


def chromium_executable() -> str | None:
    """A system Chromium, or None for Playwright's own (``playwright install chromium``)."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which(name) for name in ("chromium", "chromium-browser")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class BrowserStack:
    """The running stack plus what the test needs to check it from outside the UI."""

    def __init__(self, stack: IsolatedStack):
        self.stack = stack
        self.ui = stack.api_url
        # Token, account and CA as the stack's local dbt Cloud has them (the stack runs it unchanged).
        self.dbt_cloud_access = client_access(
            stack.state_dir / "dbt-cloud-local", stack.ports["dbt_cloud"], environ=stack.env
        )
        self._token: str | None = None

    # --- Airflow REST API ---------------------------------------------------------------------
    def airflow(self, path: str) -> Any:
        if self._token is None:
            self._token = self.stack.token()
        return self.stack.api("GET", path, token=self._token)

    def task_states(self, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
        instances = self.airflow(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in instances["task_instances"]}

    def wait_for_dag(self, dag_id: str, timeout: float = 90) -> None:
        """`make up` returns once the components are healthy; the DAG file may still be parsing."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.airflow(f"/api/v2/dags/{dag_id}")
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(2)

    def wait_for_the_clear(self, dag_id: str, run_id: str, timeout: float = 30) -> None:
        """The clear dialog closes before the UI's clear request has landed; until it has, the DAG
        run still reads ``failed``. A clear makes it ``queued``."""
        deadline = time.monotonic() + timeout
        while self.airflow(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"] == "failed":
            assert time.monotonic() < deadline, f"the clear never reached DAG run {run_id}"
            time.sleep(0.5)

    # --- local dbt Cloud ----------------------------------------------------------------------
    def dbt_cloud(self, method: str, path: str, **kwargs: Any) -> Any:
        access = self.dbt_cloud_access
        headers = {"Authorization": f"Token {access.token}"}
        with httpx.Client(
            base_url=access.base_url, verify=access.trust(), headers=headers, timeout=30
        ) as client:
            response = client.request(method, path, **kwargs)
            assert response.is_success, f"{method} {path} -> {response.status_code}: {response.text[:500]}"
            return response.json() if response.content else None

    def set_environment_variable(self, name: str, value: str | None) -> None:
        """Set (or with None, delete) a Production environment variable, as in dbt Cloud's UI."""
        path = "/api/v3/accounts/1/projects/1/environment-variables/bulk/"
        if value is None:
            self.dbt_cloud("DELETE", path, json={"env_var_names": [name]})
        else:
            self.dbt_cloud("POST", path, json={"env_var": [{"new_name": name, "Production": value}]})

    def runs(self, job_id: int = 1) -> list[dict[str, Any]]:
        params = {"job_definition_id": job_id, "order_by": "id", "include_related": "trigger", "limit": 100}
        return self.dbt_cloud("GET", "/api/v2/accounts/1/runs/", params=params)["data"]

    def run(self, run_id: int) -> dict[str, Any]:
        params = {"include_related": "run_steps,trigger"}
        return self.dbt_cloud("GET", f"/api/v2/accounts/1/runs/{run_id}/", params=params)["data"]

    def run_results(self, run_id: int, step: int) -> dict[str, str]:
        """``{unique_id: status}`` of one step of a run, from its run_results.json artifact."""
        path = f"/api/v2/accounts/1/runs/{run_id}/artifacts/run_results.json"
        document = self.dbt_cloud("GET", path, params={"step": step})
        return {result["unique_id"]: result["status"] for result in document["results"]}

    # --- diagnostics --------------------------------------------------------------------------
    def diagnostics(self, dag_id: str, run_id: str | None) -> str:
        """The components' log tails, task states and dbt Cloud runs: what to read when the test fails."""
        parts = []
        for name in STACK_LOGS:
            path = self.stack.state_dir / "logs" / "stack" / f"{name}.log"
            try:
                tail = "\n".join(path.read_text(errors="replace").splitlines()[-40:])
            except OSError as exc:
                tail = f"(unreadable: {exc})"
            parts.append(f"----- {name}.log (last 40 lines) -----\n{tail}")
        if run_id:
            try:
                parts.append(f"----- task instances of {run_id} -----\n{self.task_states(dag_id, run_id)}")
            except (AssertionError, OSError, urllib.error.URLError) as exc:
                parts.append(f"(task instances unavailable: {exc})")
        try:
            runs = [
                (run["id"], run["status_humanized"], run["trigger"]["cause_category"]) for run in self.runs()
            ]
            parts.append(f"----- dbt Cloud runs (id, status, cause) -----\n{runs}")
        except (AssertionError, httpx.HTTPError) as exc:
            parts.append(f"(dbt Cloud runs unavailable: {exc})")
        return "\n".join(parts)


# --- What a user does in the UI, the same for every DAG --------------------------------------------


def open_dag_from_the_list(page: Page, ui: str, dag_id: str) -> None:
    """Home -> Dags -> the DAG's page."""
    page.goto(ui)
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    page.get_by_role("link", name="Dags", exact=True).click()
    page.get_by_role("link", name=dag_id, exact=True).click()
    expect(page).to_have_url(re.compile(rf"/dags/{dag_id}$"))


def unpause_and_trigger(page: Page, dag_id: str) -> str:
    """On the DAG's page: unpause it, then Trigger a single run. Returns the new DAG run's id."""
    pause_toggle = page.get_by_test_id("toggle-pause")
    expect(pause_toggle).to_have_count(1)  # the DAG's page, no longer the list of DAGs
    if not pause_toggle.get_by_role("checkbox").is_checked():
        pause_toggle.click()
    expect(pause_toggle.get_by_role("checkbox")).to_be_checked()
    page.get_by_role("button", name="Trigger Dag").click()
    form = page.get_by_role("dialog")
    expect(form).to_contain_text(f"Trigger Dag - {dag_id}")
    single = form.get_by_text("Single Run", exact=True)
    if single.count():  # offered beside Backfill for a scheduled DAG only
        single.click()
    unpause = form.locator("label").filter(has_text=f"Unpause {dag_id} on trigger")
    if unpause.count():  # only offered while the DAG is paused; checked by default
        expect(unpause.get_by_role("checkbox")).to_be_checked()
    form.get_by_role("button", name="Trigger", exact=True).click()
    expect(page.get_by_text("Dag Run Triggered").first).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/dags/{dag_id}/runs/[^/]+$"))
    run_id = unquote(page.url.rsplit("/runs/", 1)[1])
    assert run_id.startswith("manual__"), f"expected a manual run, the UI opened {page.url}"
    return run_id
