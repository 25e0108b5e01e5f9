"""``make demo``: run the eltml DAG end to end on the local dbt Cloud and print the proof.

What it does, in order: start the local dbt Cloud (HTTPS, real dbt Core on DuckDB), migrate the local
Airflow metadata DB, run ``airflow dags test dbt_cloud_provider_eltml`` (real task execution, the
dbt Cloud task deferring to an in-process triggerer), then read back what happened (Airflow task
states, the dbt Cloud run with its steps, what dbt built and tested, the ML metrics) and stop the
server. The full Airflow log goes to a file; the terminal gets the summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from dbt_cloud_local.client import PORT_ENV, host_port, port_taken_message
from dbt_cloud_local.testing import free_port, run_local_dbt_cloud
from localdev.airflow_env import data_environment, project_environment
from localdev.processes import is_running, read_records
from localdev.stack_settings import REPO_ROOT as PROJECT_ROOT
from localdev.stack_settings import StackSettings
from localdev.state import state_dir

DAG_ID = "dbt_cloud_provider_eltml"
DBT_TASK_ID = "trigger_dbt_cloud_job_run"


def main() -> int:
    started = time.monotonic()
    # The same state home as `make up` and `make break-model`: one local dbt Cloud, one warehouse.
    state = StackSettings(state_dir=state_dir())
    if any(is_running(record) for record in read_records(state.run_dir)):
        print(
            f"The local stack is running from {_relative(state.state_dir)} (`make up`) and owns its "
            "local dbt Cloud: trigger the DAG in its UI, or `make down` first and run the demo again.",
            file=sys.stderr,
        )
        return 1
    airflow_home = Path(os.environ.get("AIRFLOW_HOME") or state.state_dir)
    log_dir = airflow_home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    airflow_log = log_dir / f"demo-{time.strftime('%Y%m%dT%H%M%S')}.log"
    port = host_port()
    if not _port_is_free(port):
        if os.environ.get(PORT_ENV):  # asked for that port: say so rather than move elsewhere
            print(port_taken_message(port, "make demo"), file=sys.stderr)
            return 1
        port = free_port()  # the default is busy: any free port will do for a demo

    _step(f"Starting the local dbt Cloud on https://localhost:{port}")
    data = data_environment(state.data_dir)
    with run_local_dbt_cloud(state.dbt_cloud_dir, port=port, env=data) as server:
        env = {
            **project_environment(airflow_home),
            **server.client_env("dbt_cloud"),
            **data,
        }
        _step("Preparing the Airflow metadata DB (airflow db migrate)")
        _run([sys.executable, "-m", "airflow", "db", "migrate"], env, airflow_log)
        _step(f"Running the DAG: airflow dags test {DAG_ID}   (full log: {_relative(airflow_log)})")
        code = _run([sys.executable, "-m", "airflow", "dags", "test", DAG_ID], env, airflow_log, check=False)
        os.environ.update(env)  # the summary reads the same DB and server
        ok = _print_proof(server)
    elapsed = time.monotonic() - started
    print(f"\nDone in {elapsed:.0f} s; the local dbt Cloud was stopped. To browse its run pages again:")
    data_dir = _relative(state.dbt_cloud_dir)
    print(f"  .venv/bin/python -m dbt_cloud_local serve --port {port} --data-dir {data_dir}")
    if code != 0 or not ok:
        print(f"The DAG run did not succeed: see {_relative(airflow_log)}", file=sys.stderr)
        return 1
    return 0


def _print_proof(server) -> bool:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        dag_run = session.query(DagRun).filter(DagRun.dag_id == DAG_ID).order_by(DagRun.id.desc()).first()
        if dag_run is None:
            print("No DAG run was recorded.", file=sys.stderr)
            return False
        states = {ti.task_id: (ti.state, ti.try_number) for ti in dag_run.get_task_instances(session=session)}
        xcoms = {
            row.task_id: row.value
            for row in session.query(XComModel).filter(
                XComModel.dag_id == DAG_ID,
                XComModel.run_id == dag_run.run_id,
                XComModel.key == "return_value",
            )
        }
    print(f"\nAirflow DAG run {dag_run.run_id}: {dag_run.state}")
    for task_id in ("extract", "load", DBT_TASK_ID, "ml_training", "record_dbt_model_assets"):
        state, tries = states.get(task_id, ("not run", 0))
        print(f"  {task_id:<28} {state}{f' (try {tries})' if tries and tries > 1 else ''}")

    dbt_run_id = xcoms.get(DBT_TASK_ID)
    if dbt_run_id is None:
        return False
    with server.client() as client:
        run = client.get(
            f"/api/v2/accounts/{server.account_id}/runs/{dbt_run_id}/",
            params={"include_related": "run_steps"},
        ).json()["data"]
        print(f"\ndbt Cloud run {run['id']}: {run['status_humanized']} in {run['duration_humanized']}")
        print(f"  run page: {run['href']}")
        for step in run["run_steps"]:
            print(f"  step {step['index']}: {step['name']:<45} {step['status_humanized']}")
        build_step = next((s for s in run["run_steps"] if "dbt build" in s["name"]), None)
        if build_step is not None:
            results = client.get(
                f"/api/v2/accounts/{server.account_id}/runs/{dbt_run_id}/artifacts/run_results.json",
                params={"step": build_step["index"]},
            ).json()["results"]
            counts = Counter((r["unique_id"].split(".")[0], r["status"]) for r in results)
            summary = ", ".join(f"{n} {kind} {status}" for (kind, status), n in sorted(counts.items()))
            print(f"  dbt build: {summary}")

    events = xcoms.get("record_dbt_model_assets")
    if events is not None:
        print(
            f"\nAirflow asset events: {events} (one per model, seed, snapshot built; alias dbt_cloud_models)"
        )
    metrics = xcoms.get("ml_training")
    if metrics:
        print(
            "\nChurn model (held-out 25 %): "
            + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(metrics.items()))
        )
    return dag_run.state == "success"


def _run(argv: list[str], env: dict[str, str], log_path: Path, check: bool = True) -> int:
    with log_path.open("a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        code = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if check and code != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed with exit code {code}: see {_relative(log_path)}")
    return code


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
