"""The end-to-end harness: the real local dbt Cloud (HTTPS, dbt Core on DuckDB) and real DAG runs.

Each test module gets its own server, warehouse and files; DAG runs execute with ``dag.test()`` in a
separate process (``run_dag.py``) against the session's migrated Airflow DB, so the test process can
read task states and XComs back from that DB afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudJobRunStatus

from dbt_cloud_local.testing import LocalDbtCloud

PROJECT_ROOT = Path(__file__).resolve().parents[3]
RUN_DAG = Path(__file__).with_name("run_dag.py")
ELTML = "dbt_cloud_provider_eltml"
DBT_TASK = "trigger_dbt_cloud_job_run"
ELTML_JOB_ID = 1
SUCCESS, ERROR, CANCELLED = (
    DbtCloudJobRunStatus.SUCCESS.value,
    DbtCloudJobRunStatus.ERROR.value,
    DbtCloudJobRunStatus.CANCELLED.value,
)
#: run_results statuses of nodes that did not succeed: what a rerun from failure must run again.
NOT_OK = {"error", "fail", "skipped", "runtime error"}


@dataclass
class DagRunOutcome:
    run_id: str | None
    state: str | None
    output: str
    returncode: int


@dataclass
class Pipeline:
    """A local dbt Cloud plus the environment the Airflow tasks and the triggerer run with."""

    server: LocalDbtCloud
    root: Path
    env: dict[str, str] = field(repr=False)

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def models_dir(self) -> Path:
        return self.root / "ml_models"

    # --- Airflow ------------------------------------------------------------------------------
    def start_dag(self, logical_date: dt.datetime, *args: str, dag_id: str = ELTML) -> subprocess.Popen[str]:
        argv = [sys.executable, str(RUN_DAG), dag_id, logical_date.isoformat(), *args]
        return subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def run_dag(
        self, logical_date: dt.datetime, *args: str, dag_id: str = ELTML, timeout: float = 400
    ) -> DagRunOutcome:
        process = self.start_dag(logical_date, *args, dag_id=dag_id)
        output, _ = process.communicate(timeout=timeout)
        result = next((line for line in output.splitlines() if line.startswith("DAG_RUN_RESULT ")), None)
        data = json.loads(result.split(" ", 1)[1]) if result else {}
        return DagRunOutcome(data.get("run_id"), data.get("state"), output, process.returncode)

    def clear_task(self, logical_date: dt.datetime, task_id: str, dag_id: str = ELTML) -> None:
        """What a user does in the UI (Clear, with downstream), through the equivalent CLI command.

        Airflow 3.3.2's ``tasks clear -t`` matches task ids as substrings, not as a regex: an anchored
        pattern such as ``^task$`` matches nothing, so the plain task id is passed.
        """
        day = logical_date.replace(tzinfo=dt.UTC).isoformat()
        argv = [sys.executable, "-m", "airflow", "tasks", "clear", dag_id, "-t", task_id]
        argv += ["--downstream", "--yes", "-s", day, "-e", day]
        result = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"airflow tasks clear failed:\n{result.stdout}\n{result.stderr}"

    @staticmethod
    def dag_run_id(dag_id: str, logical_date: dt.datetime) -> str | None:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            run = (
                session.query(DagRun)
                .filter(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date.replace(tzinfo=dt.UTC))
                .one_or_none()
            )
            return None if run is None else run.run_id

    @staticmethod
    def task_instances(dag_id: str, run_id: str) -> dict[str, Any]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.query(TaskInstance).filter(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
            return {ti.task_id: (str(ti.state), ti.try_number) for ti in rows}

    @staticmethod
    def xcom(dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter(
                    XComModel.dag_id == dag_id,
                    XComModel.run_id == run_id,
                    XComModel.task_id == task_id,
                    XComModel.key == key,
                )
                .one_or_none()
            )
            return None if row is None else XComModel.deserialize_value(row)

    # --- dbt Cloud ----------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        with self.server.client(timeout=30) as client:
            response = client.request(method, f"/api/v2/accounts/{self.server.account_id}{path}", **kwargs)
            response.raise_for_status()
            return response.json()

    def runs(self, job_id: int = ELTML_JOB_ID) -> list[dict[str, Any]]:
        """Every run of the job, oldest first, with its trigger."""
        params = {"job_definition_id": job_id, "order_by": "id", "include_related": "trigger", "limit": 100}
        return self.api("GET", "/runs/", params=params)["data"]

    def run(self, run_id: int) -> dict[str, Any]:
        return self.api("GET", f"/runs/{run_id}/", params={"include_related": "run_steps,trigger"})["data"]

    def run_results(self, run_id: int, step: int) -> dict[str, str]:
        """``{unique_id: status}`` of one step of a run, from its run_results.json artifact."""
        document = self.api("GET", f"/runs/{run_id}/artifacts/run_results.json", params={"step": step})
        return {result["unique_id"]: result["status"] for result in document["results"]}

    def wait_until_complete(self, run_id: int, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["is_complete"]:
                return run
            time.sleep(0.5)
        raise AssertionError(f"dbt Cloud run {run_id} did not finish within {timeout}s")

    def set_faults(self, **settings: Any) -> None:
        """Replace the server's injected faults (see dbt_cloud_local/faults.py); none clears them."""
        with self.server.client(timeout=30) as client:
            response = (
                client.put("/_local/faults", json=settings) if settings else client.delete("/_local/faults")
            )
            response.raise_for_status()

    def set_environment_variable(self, name: str, value: str | None) -> None:
        """Set (or with None, delete) a Production environment variable, as in dbt Cloud's UI."""
        path = f"/api/v3/accounts/{self.server.account_id}/projects/1/environment-variables/bulk/"
        with self.server.client(timeout=30) as client:
            if value is None:
                response = client.request("DELETE", path, json={"env_var_names": [name]})
            else:
                response = client.post(path, json={"env_var": [{"new_name": name, "Production": value}]})
            response.raise_for_status()
