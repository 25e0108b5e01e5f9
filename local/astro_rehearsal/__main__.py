"""
``make astro-rehearsal``: rehearse ``astro dev pytest``, ``astro dev parse`` and ``astro dev start``
in containers, on a machine with Podman instead of Docker, and print the proof.

Phases, each timed:
1. stand-in images: a Debian root file system, the Astro Runtime 3.3-8 stand-in (tagged with the
   Dockerfile's FROM name) and the metadata database (cached: rebuilt only when their inputs change);
2. the project image, built from the unchanged Dockerfile, then checked lean (no dbt, no trustme, no
   local-only code);
3. ``pytest tests/dags`` and ``.astro/test_dag_integrity_default.py`` in that image with no services;
4. the stack ``astro dev start`` runs (the CLI's compose file for Airflow 3, merged with
   docker-compose.override.yml, nothing built), airflow_settings.yaml upserted through the REST API;
5. ``dbt_cloud_provider_eltml`` triggered and awaited; the DAG run, its tasks, the dbt Cloud run and
   its steps printed, and the run link opened from the host;
6. everything it started stopped and removed (containers, network, volumes; images stay cached).
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

from astro_rehearsal import airflow_api, astro_compose, images, podman

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = PROJECT_ROOT / ".state" / "astro-rehearsal"
DAG_ID = "dbt_cloud_provider_eltml"
DBT_TASK_ID = "trigger_dbt_cloud_job_run"
DBT_CLOUD_PORT = 8443  # published by docker-compose.override.yml
DBT_CLOUD_CA = "/opt/dbt-cloud-local/data/tls/ca.pem"


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
    parser.add_argument("--dag-timeout", type=float, default=900, help="seconds to wait for the DAG run")
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
    STATE_DIR.mkdir(parents=True, exist_ok=True)

    with timings.phase("Stand-in images (Debian rootfs, Astro Runtime 3.3-8, Postgres; cached)"):
        runtime_image = images.runtime_image_name(PROJECT_ROOT)
        made = images.ensure_rootfs(STATE_DIR)
        made |= images.ensure_built(
            runtime_image,
            images.HERE / "standin",
            {"runtime-constraints.txt": PROJECT_ROOT / "constraints" / "local.lock"},
        )
        made |= images.ensure_built(images.POSTGRES_IMAGE, images.HERE / "postgres")
        print(f"  {runtime_image}, {images.POSTGRES_IMAGE}: {'built' if made else 'cached'}")

    with timings.phase(f"Project image {project.airflow_image} (unchanged Dockerfile)"):
        images.build_project_image(PROJECT_ROOT, project.airflow_image)
        found = images.check_lean(project.airflow_image)
        if found:
            print("  The image holds what only runs locally: " + ", ".join(found), file=sys.stderr)
            return False
        print("  lean: no dbt Core, no trustme, no local-only code, tests/dags only")

    with timings.phase("astro dev pytest tests/dags + astro dev parse (in the image, no services)"):
        for test_path in ("tests/dags", ".astro/test_dag_integrity_default.py"):
            code = images.pytest_in_image(PROJECT_ROOT, project.airflow_image, test_path)
            if code != 0:
                print(f"  pytest {test_path} exited with {code}", file=sys.stderr)
                return False

    compose_binary = podman.ensure_compose(STATE_DIR / "bin")
    settings = astro_compose.ComposeSettings(
        api_server_port=args.api_port or _free_port(8080),
        postgres_port=args.postgres_port or _free_port(5432),
        postgres_image=images.POSTGRES_IMAGE,
    )
    if not _port_is_free(DBT_CLOUD_PORT):
        raise podman.ContainerError(
            f"port {DBT_CLOUD_PORT} is taken (docker-compose.override.yml publishes the local dbt Cloud "
            "there): stop what uses it (`make down`?) and run again"
        )
    compose_file = astro_compose.write(project, settings, STATE_DIR / "compose.yaml")
    with podman.docker_api(STATE_DIR / "podman.sock") as env:
        compose = [
            str(compose_binary), "--project-name", project.compose_project,
            "--project-directory", str(PROJECT_ROOT),
            "-f", str(compose_file), "-f", str(PROJECT_ROOT / "docker-compose.override.yml"),
        ]  # fmt: skip
        try:
            return _run_stack(compose, env, project, settings, args, timings)
        finally:
            if not args.keep:
                with timings.phase("Stop and remove the stack (containers, network, volumes)"):
                    podman.run(
                        [*compose, "down", "--volumes", "--remove-orphans", "--timeout", "20"],
                        env=env,
                        check=False,
                        quiet=True,
                    )


def _run_stack(compose, env, project, settings, args, timings: Timings) -> bool:
    with timings.phase("astro dev start: the CLI's Airflow 3 services + the override, nothing built"):
        podman.run([*compose, "down", "--volumes", "--remove-orphans"], env=env, check=False, quiet=True)
        with podman.healthchecks_running(project.compose_project):
            podman.run([*compose, "up", "--detach", "--no-build", "--pull", "never", "--quiet-pull"], env=env)
            api = airflow_api.AirflowApi(f"http://localhost:{settings.api_server_port}")
            try:
                api.wait_until_healthy(timeout=300)
            except airflow_api.AirflowApiError:
                _show_logs(compose, env)
                raise
        print(
            f"  Airflow UI: http://localhost:{settings.api_server_port}   local dbt Cloud: "
            f"https://localhost:{DBT_CLOUD_PORT}"
        )

    with timings.phase("airflow_settings.yaml upserted through the REST API"), api.client() as client:
        written = airflow_api.upsert_settings(client, PROJECT_ROOT / astro_compose.SETTINGS_FILE)
        print("  " + ", ".join(written))

    with timings.phase(f"Trigger {DAG_ID} and wait for it"), api.client() as client:
        run_id = airflow_api.trigger(client, DAG_ID, wait_for_dag=180)
        print(f"  triggered {run_id}")
        dag_run = airflow_api.wait_for_run(client, DAG_ID, run_id, timeout=args.dag_timeout)
        ok = _print_proof(client, compose, env, dag_run)
    if not ok:
        _show_logs(compose, env)
    return ok


def _print_proof(client: httpx.Client, compose: list[str], env: dict[str, str], dag_run: dict) -> bool:
    run_id = dag_run["dag_run_id"]
    print(f"\nAirflow DAG run {run_id}: {dag_run['state']}")
    for task_id, (state, tries) in airflow_api.task_states(client, DAG_ID, run_id).items():
        print(f"  {task_id:<28} {state}{f' (try {tries})' if tries > 1 else ''}")
    if dag_run["state"] != "success":
        return False

    dbt_run_id = airflow_api.xcom(client, DAG_ID, run_id, DBT_TASK_ID, "return_value")
    run_link = airflow_api.xcom(client, DAG_ID, run_id, DBT_TASK_ID, "job_run_url")
    ca_pem = podman.run(
        [*compose, "exec", "-T", "dbt-cloud-local", "cat", DBT_CLOUD_CA], env=env, quiet=True
    ).stdout
    trust = ssl.create_default_context(cadata=ca_pem)
    connection = next(
        item
        for item in yaml.safe_load((PROJECT_ROOT / astro_compose.SETTINGS_FILE).read_text())["airflow"][
            "connections"
        ]
        if item["conn_id"] == "dbt_cloud"
    )
    account = connection["conn_login"]
    with httpx.Client(
        base_url=f"https://localhost:{DBT_CLOUD_PORT}",
        verify=trust,
        timeout=30,
        headers={"Authorization": f"Token {connection['conn_password']}"},
    ) as dbt_cloud:
        run = (
            dbt_cloud.get(
                f"/api/v2/accounts/{account}/runs/{dbt_run_id}/", params={"include_related": "run_steps"}
            )
            .raise_for_status()
            .json()["data"]
        )
        print(f"\ndbt Cloud run {run['id']}: {run['status_humanized']} in {run['duration_humanized']}")
        for step in run["run_steps"]:
            print(f"  step {step['index']}: {step['name']:<45} {step['status_humanized']}")
        page = dbt_cloud.get(run_link)
        print(f"  run link (the task's Monitor Job Run): {run_link} -> HTTP {page.status_code} from the host")
    return (
        run["status_humanized"] == "Success"
        and page.status_code == 200
        and run_link.startswith(f"https://localhost:{DBT_CLOUD_PORT}/")
    )


def _show_logs(compose: list[str], env: dict[str, str]) -> None:
    print("\nLast lines of each service's log:", file=sys.stderr)
    podman.run([*compose, "logs", "--no-color", "--tail", "40"], env=env, check=False)


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _free_port(preferred: int) -> int:
    if _port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
