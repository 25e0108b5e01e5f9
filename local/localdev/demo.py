"""``make demo``: run the eltml DAG end to end on the local dbt Cloud and print the proof.

What it does, in order: start the local dbt Cloud (HTTPS, real dbt Core on DuckDB), migrate the local
Airflow metadata DB, run ``airflow dags test dbt_cloud_provider_eltml`` (real task execution, the
dbt Cloud task deferring to an in-process triggerer), then read back what happened (Airflow task
states, the dbt Cloud run with its steps, what dbt built and tested, the ML metrics); then the same
pipeline with every dbt node a task, ``dbt_cloud_models_as_tasks`` (one task per model, seed and
snapshot, one dbt Cloud run for all of them), and where to look at it; then stop the server. The full
Airflow log goes to a file; the terminal gets the summary.
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
MODELS_DAG_ID = "dbt_cloud_models_as_tasks"
MODELS_LAUNCHER = "eltml_build.launch"


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
        print()
        _step(f"Running the DAG: airflow dags test {MODELS_DAG_ID}   (every dbt node a task, one run)")
        models_code = _run(
            [sys.executable, "-m", "airflow", "dags", "test", MODELS_DAG_ID], env, airflow_log, check=False
        )
        ok = _print_models_as_tasks(server) and ok and models_code == 0
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


def _print_models_as_tasks(server) -> bool:
    """The group's tasks in the order the grid shows them, the one dbt Cloud run, and where to look."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from include.dbt_cloud.job_graph import load_job_graph
    from include.paths import PROJECT_ROOT as INCLUDE_ROOT

    with create_session() as session:
        dag_run = (
            session.query(DagRun).filter(DagRun.dag_id == MODELS_DAG_ID).order_by(DagRun.id.desc()).first()
        )
        if dag_run is None:
            print("No DAG run of the models-as-tasks DAG was recorded.", file=sys.stderr)
            return False
        states = {ti.task_id: ti.state for ti in dag_run.get_task_instances(session=session)}
        run_id = (
            session.query(XComModel.value)
            .filter(
                XComModel.dag_id == MODELS_DAG_ID,
                XComModel.run_id == dag_run.run_id,
                XComModel.task_id == MODELS_LAUNCHER,
                XComModel.key == "dbt_cloud_run_id",
            )
            .scalar()
        )
    graph = load_job_graph(INCLUDE_ROOT / "include/dbt_manifests/eltml_build.json", ("launch", "finalize"))
    group = MODELS_LAUNCHER.split(".")[0]
    order = ["extract", "load", MODELS_LAUNCHER]
    order += [f"{group}.{node.task_id}" for node in graph.nodes] + [f"{group}.finalize", "ml_training"]
    labels = {f"{group}.{node.task_id}": f"{group} / {node.label}" for node in graph.nodes}
    labels[MODELS_LAUNCHER] = f"{group} / launch (setup: the one run)"
    labels[f"{group}.finalize"] = f"{group} / finalize (teardown)"
    print(f"\nAirflow DAG run {dag_run.run_id}: {dag_run.state}")
    for task_id in order:
        print(f"  {labels.get(task_id, task_id):<42} {states.get(task_id) or 'not run'}")
    causes = []
    with server.client() as client:
        runs = client.get(
            f"/api/v2/accounts/{server.account_id}/runs/",
            params={"job_definition_id": 1, "include_related": "trigger", "order_by": "-id", "limit": 20},
        ).json()["data"]
        causes = [run for run in runs if dag_run.run_id in ((run.get("trigger") or {}).get("cause") or "")]
    print(
        f"\ndbt Cloud runs this DAG run started: {len(causes)} for {len(graph.nodes)} node tasks"
        + "".join(f"\n  run {run['id']}: {run['status_humanized']}, {run['href']}" for run in causes)
    )
    print("Where to look:")
    print(
        f"  the grid: `make up`, then http://localhost:8080/dags/{MODELS_DAG_ID} (expand eltml_build: a row"
    )
    print("    per model, seed and snapshot; click one for its log)")
    print("  break a model, then clear it: `make break-model`, trigger the DAG, `make fix-model`, clear")
    print("    the red task with its downstream: one new dbt Cloud run builds exactly those nodes")
    print("  how it works, and when to prefer the single dbt task: docs/models-as-tasks.md")
    return dag_run.state == "success" and run_id is not None and len(causes) == 1


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
