"""
``make astro-rehearsal``: the Astro path as the real Astro CLI runs it, in containers on Podman.

Each step is what a command of astro-cli v1.45 does (``astro_cli.py`` says where in its source), with
the CLI's own timings, and each phase is timed:
1. stand-in images: a Debian root file system, the Astro Runtime 3.3-8 stand-in (tagged with the
   Dockerfile's FROM name) and the metadata database (cached: rebuilt only when their inputs change);
2. the project image as ``astro dev start`` builds it (``astro-run-dag`` appended to requirements.txt
   for the build), checked lean (no dbt, no trustme, no local-only code);
3. bare ``astro dev pytest`` (``pytest tests/``) and ``astro dev parse`` in that image, no services;
4. the lifecycle, on the CLI's compose file for Airflow 3 merged with docker-compose.override.yml:
   cold start (the api-server healthy within the CLI's 60 s after compose returns, then the settings
   seeded) -> the eltml DAG succeeds -> the models-as-tasks DAG succeeds, every node task green ->
   stop -> start (dbt not reinstalled, the connection still there) -> restart -> kill (every volume
   gone) -> start (dbt installed again) -> the DAG succeeds;
5. everything it started removed (``astro dev kill``; images stay cached).
"""

from __future__ import annotations

import argparse
import socket
import ssl
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from astro_rehearsal import airflow_api, astro_cli, astro_compose, images, podman
from dbt_cloud_local.client import host_port, port_taken_message
from include.dbt_cloud.job_graph import load_job_graph
from localdev.state import REHEARSAL_DIR, state_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "dbt_cloud_provider_eltml"
DBT_TASK_ID = "trigger_dbt_cloud_job_run"
#: The same job, every dbt node a task (include/dbt_cloud/task_group.py); its group and launcher.
MODELS_DAG_ID = "dbt_cloud_models_as_tasks"
MODELS_GROUP = "eltml_build"
#: The stored manifest the models-as-tasks DAG renders (dags/dbt_cloud_models_as_tasks.py).
MODELS_MANIFEST = "include/dbt_manifests/eltml_build.json"
DBT_CLOUD_CA = "/opt/dbt-cloud-local/data/tls/ca.pem"
#: Written by container-start.sh when it installs dbt into the venv volume.
DBT_INSTALL_STAMP = "/opt/dbt-cloud-local/venv/.installed-from"


class Timings:
    def __init__(self) -> None:
        self.phases: list[tuple[str, float]] = []

    @contextmanager
    def phase(self, title: str) -> Iterator[None]:
        print(f"\n==> {title}", flush=True)
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases.append((title, time.monotonic() - started))

    def report(self) -> str:
        width = max(len(title) for title, _ in self.phases)
        lines = [f"  {title:<{width}}  {seconds:6.1f} s" for title, seconds in self.phases]
        total = sum(seconds for _, seconds in self.phases)
        return "\n".join(["Timings:", *lines, f"  {'total':<{width}}  {total:6.1f} s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make astro-rehearsal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-port", type=int, default=0, help="host port of the api-server (default: free)")
    parser.add_argument("--postgres-port", type=int, default=0, help="host port of Postgres (default: free)")
    parser.add_argument("--dag-timeout", type=float, default=900, help="seconds to wait for a DAG run")
    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = parser.parse_args(argv)

    timings = Timings()
    try:
        ok = _rehearse(args, timings)
    except (podman.ContainerError, airflow_api.AirflowApiError) as exc:
        print(f"\nastro-rehearsal: {exc}", file=sys.stderr)
        ok = False
    print("\n" + timings.report())
    print("\nRehearsal " + ("passed." if ok else "FAILED."), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _rehearse(args: argparse.Namespace, timings: Timings) -> bool:
    print(f"Container engine: {podman.check_podman()}")
    project = astro_compose.AstroProject.load(PROJECT_ROOT)
    _remove_abandoned_stacks(project)
    dbt_cloud_port = host_port()  # the stack at the end publishes it on the host
    if not _port_is_free(dbt_cloud_port):
        raise podman.ContainerError(port_taken_message(dbt_cloud_port, "make astro-rehearsal"))
    work_dir = state_dir() / REHEARSAL_DIR
    work_dir.mkdir(parents=True, exist_ok=True)

    with timings.phase("Stand-in images (Debian rootfs, Astro Runtime 3.3-8, Postgres; cached)"):
        runtime_image = images.runtime_image_name(PROJECT_ROOT)
        made = images.ensure_rootfs(work_dir)
        made |= images.ensure_built(
            runtime_image,
            images.HERE / "standin",
            {"runtime-constraints.txt": PROJECT_ROOT / "constraints" / "local.lock"},
        )
        made |= images.ensure_built(images.POSTGRES_IMAGE, images.HERE / "postgres")
        print(f"  {runtime_image}, {images.POSTGRES_IMAGE}: {'built' if made else 'cached'}")

    with timings.phase(f"Project image {project.airflow_image} (astro dev start's build)"):
        astro_cli.build(project)
        found = images.check_lean(project.airflow_image)
        if found:
            print("  The image holds what only runs locally: " + ", ".join(found), file=sys.stderr)
            return False
        if not images.has_distribution(project.airflow_image, astro_cli.ASTRO_RUN_DAG_LINE):
            print("  astro-run-dag is missing: the build did not use the CLI's requirements", file=sys.stderr)
            return False
        print(
            "  lean: no dbt Core, no trustme, no local-only code; astro-run-dag installed as the CLI adds it"
        )

    for title, test_path in (("astro dev pytest (bare: pytest tests/)", "tests/"),
                             ("astro dev parse", ".astro/test_dag_integrity_default.py")):  # fmt: skip
        with timings.phase(f"{title} in the image, no services"):
            code = astro_cli.pytest(project, test_path)
            if code != 0:
                print(f"  pytest {test_path} exited with {code}", file=sys.stderr)
                return False

    settings = astro_compose.ComposeSettings(
        api_server_port=args.api_port or _free_port(8080),
        postgres_port=args.postgres_port or _free_port(5432),
        postgres_image=images.POSTGRES_IMAGE,
    )
    compose_file = astro_compose.write(project, settings, work_dir / "compose.yaml")
    compose_binary = podman.ensure_compose(work_dir / "bin")
    with podman.docker_api(work_dir / "podman.sock") as env:
        argv = [
            str(compose_binary), "--project-name", project.compose_project,
            "--project-directory", str(PROJECT_ROOT),
            "-f", str(compose_file), "-f", str(PROJECT_ROOT / "docker-compose.override.yml"),
        ]  # fmt: skip
        compose = astro_cli.Compose(
            argv=argv,
            env=env,
            project=project,
            api=airflow_api.AirflowApi(f"http://localhost:{settings.api_server_port}"),
            show_logs=lambda: _show_logs(argv, env),
        )
        compose.kill()  # leftovers of an interrupted rehearsal
        try:
            return _lifecycle(compose, settings, dbt_cloud_port, args, timings)
        finally:
            if not args.keep:
                with timings.phase("astro dev kill (clean up: containers, network, volumes)"):
                    compose.kill()


def _lifecycle(compose, settings, dbt_cloud_port: int, args, timings: Timings) -> bool:
    with timings.phase("astro dev start, cold (dbt installed on first start)"):
        _start(compose, settings, dbt_cloud_port)
        installed_at = _dbt_install_stamp(compose)
    with timings.phase(f"{DAG_ID} succeeds"):
        if not _dag_succeeds(compose, dbt_cloud_port, args):
            return False
    with timings.phase(f"{MODELS_DAG_ID} succeeds, every node task green"):
        if not _models_as_tasks_succeed(compose, args):
            return False

    with timings.phase("astro dev stop"):
        compose.stop()
    with timings.phase("astro dev start after stop (volumes kept)"):
        _start(compose, settings, dbt_cloud_port, expect_connection=True)
        _require(_dbt_install_stamp(compose) == installed_at, "dbt was installed again after stop/start")
        print("  dbt not reinstalled (the venv volume was kept)")

    with timings.phase("astro dev restart (stop, then start)"):
        compose.stop()
        _start(compose, settings, dbt_cloud_port, expect_connection=True)
        _require(_dbt_install_stamp(compose) == installed_at, "dbt was installed again after restart")

    with timings.phase("astro dev kill (every volume removed)"):
        compose.kill()
        left = compose.volumes()
        _require(not left, f"volumes left after kill: {left}")
        print("  no container, no volume left")
    with timings.phase("astro dev start after kill (dbt installed again)"):
        _start(compose, settings, dbt_cloud_port, expect_connection=False)
        _require(_dbt_install_stamp(compose) != installed_at, "dbt was not installed again after kill")
    with timings.phase(f"{DAG_ID} succeeds again"):
        return _dag_succeeds(compose, dbt_cloud_port, args)


def _start(compose: astro_cli.Compose, settings, dbt_cloud_port: int, expect_connection: bool | None = None):
    """``astro dev start`` and what it prints; ``expect_connection``: the seeded connection must (True)
    or must not (False) be there before the CLI seeds it again."""
    report = compose.start()
    print(
        f"  compose up returned after {report.up_seconds:.0f} s; the api-server was healthy "
        f"{report.healthy_after_up:.0f} s later (the CLI waits {astro_cli.CLI_WAIT_SECONDS:.0f} s)"
    )
    if expect_connection is not None:
        with compose.api.client() as client:
            present = client.get("/connections/dbt_cloud").status_code == 200
        _require(present == expect_connection, f"dbt_cloud connection present before seeding: {present}")
        print(
            f"  dbt_cloud connection {'still there' if present else 'gone with the volumes'} before seeding"
        )
    print("  seeded: " + ", ".join(compose.seed()))
    print(f"  ➤ Airflow UI: {astro_cli.ui_address(compose.project.root)}  (the CLI's proxy; "
          f"--no-proxy: http://localhost:{settings.api_server_port})")  # fmt: skip
    print(f"  local dbt Cloud: https://localhost:{dbt_cloud_port}")


def _dbt_install_stamp(compose: astro_cli.Compose) -> str:
    """When container-start.sh last installed dbt into the venv volume (the stamp file's mtime)."""
    return compose.exec("dbt-cloud-local", "stat", "-c", "%Y", DBT_INSTALL_STAMP).strip()


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise podman.ContainerError(problem)


def _dag_succeeds(compose: astro_cli.Compose, dbt_cloud_port: int, args) -> bool:
    with compose.api.client() as client:
        run_id = airflow_api.trigger(client, DAG_ID, wait_for_dag=180)
        print(f"  triggered {run_id}")
        dag_run = airflow_api.wait_for_run(client, DAG_ID, run_id, timeout=args.dag_timeout)
        ok = _print_proof(client, compose, dbt_cloud_port, dag_run)
    if not ok:
        compose.show_logs()
    return ok


def _models_as_tasks_succeed(compose: astro_cli.Compose, args) -> bool:
    """Trigger the models-as-tasks DAG (after the eltml DAG: raw data loaded, job 1 free) and check that
    it succeeded with every node task of its group green, on one dbt Cloud run."""
    with compose.api.client() as client:
        run_id = airflow_api.trigger(client, MODELS_DAG_ID, wait_for_dag=180)
        print(f"  triggered {run_id}")
        dag_run = airflow_api.wait_for_run(client, MODELS_DAG_ID, run_id, timeout=args.dag_timeout)
        states = airflow_api.task_states(client, MODELS_DAG_ID, run_id)
        launcher = f"{MODELS_GROUP}.launch"
        dbt_run_id = airflow_api.xcom(client, MODELS_DAG_ID, run_id, launcher, "dbt_cloud_run_id")
    print(f"\nAirflow DAG run {run_id}: {dag_run['state']}")
    for task_id, (state, tries) in states.items():
        print(f"  {task_id:<44} {state}{f' (try {tries})' if tries > 1 else ''}")
    nodes = {
        task_id: state
        for task_id, (state, _) in states.items()
        if task_id.startswith(f"{MODELS_GROUP}.") and task_id not in (launcher, f"{MODELS_GROUP}.finalize")
    }
    green = [task_id for task_id, state in nodes.items() if state == "success"]
    # Every node the stored manifest renders must have run as a task: none missing, none extra.
    expected = {
        f"{MODELS_GROUP}.{task_id}" for task_id in load_job_graph(PROJECT_ROOT / MODELS_MANIFEST).by_task_id
    }
    print(f"  node tasks: {len(green)} of {len(expected)} succeeded, on dbt Cloud run {dbt_run_id}")
    ok = dag_run["state"] == "success" and set(nodes) == expected and len(green) == len(nodes)
    if not ok:
        compose.show_logs()
    return ok


def _print_proof(
    client: httpx.Client, compose: astro_cli.Compose, dbt_cloud_port: int, dag_run: dict
) -> bool:
    run_id = dag_run["dag_run_id"]
    print(f"\nAirflow DAG run {run_id}: {dag_run['state']}")
    for task_id, (state, tries) in airflow_api.task_states(client, DAG_ID, run_id).items():
        print(f"  {task_id:<28} {state}{f' (try {tries})' if tries > 1 else ''}")
    if dag_run["state"] != "success":
        return False

    dbt_run_id = airflow_api.xcom(client, DAG_ID, run_id, DBT_TASK_ID, "return_value")
    run_link = airflow_api.xcom(client, DAG_ID, run_id, DBT_TASK_ID, "job_run_url")
    trust = ssl.create_default_context(cadata=compose.exec("dbt-cloud-local", "cat", DBT_CLOUD_CA))
    connections = yaml.safe_load((PROJECT_ROOT / astro_compose.SETTINGS_FILE).read_text())["airflow"]
    connection = next(item for item in connections["connections"] if item["conn_id"] == "dbt_cloud")
    account = connection["conn_login"]
    base_url = f"https://localhost:{dbt_cloud_port}"
    headers = {"Authorization": f"Token {connection['conn_password']}"}
    with httpx.Client(base_url=base_url, verify=trust, timeout=30, headers=headers) as dbt_cloud:
        path = f"/api/v2/accounts/{account}/runs/{dbt_run_id}/"
        run = dbt_cloud.get(path, params={"include_related": "run_steps"}).raise_for_status().json()["data"]
        print(f"\ndbt Cloud run {run['id']}: {run['status_humanized']} in {run['duration_humanized']}")
        for step in run["run_steps"]:
            print(f"  step {step['index']}: {step['name']:<45} {step['status_humanized']}")
        page = dbt_cloud.get(run_link)
        print(f"  run link (the task's Monitor Job Run): {run_link} -> HTTP {page.status_code} from the host")
    return (
        run["status_humanized"] == "Success"
        and page.status_code == 200
        and run_link.startswith(f"{base_url}/")
    )


def _remove_abandoned_stacks(project: astro_compose.AstroProject) -> None:
    """Remove the stacks of this project, from any clone, whose processes died with an interrupted run.

    Their port forwards outlive them and would swallow the new stack's api-server port: the health
    check then sees nothing for the CLI's whole minute. A stack that is still alive is left alone.
    """
    prefix = project.compose_project.rsplit("_", 1)[0] + "_"
    for name, containers in podman.compose_projects(prefix).items():
        if podman.is_abandoned(containers):
            podman.remove_project(name, containers)
            print(f"  removed {name}: its processes were gone, its port forwards were not")


def _show_logs(compose_argv: list[str], env: dict[str, str]) -> None:
    print("\nLast lines of each service's log:", file=sys.stderr)
    podman.run([*compose_argv, "logs", "--no-color", "--tail", "40"], env=env, check=False)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _free_port(preferred: int) -> int:
    """The CLI's rule with its proxy: the configured port when it is free, another one otherwise."""
    if _port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
