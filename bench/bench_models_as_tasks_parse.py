"""Parse time of a DAG that renders a 1,000-node dbt Cloud job as tasks, against a one-task DAG.

    .venv/bin/python bench/bench_models_as_tasks_parse.py [--nodes 1000] [--repeat 5]

Goal: <= 500 ms for 1,000 nodes. What is timed is what the dag-processor pays per parse: a fresh
process (the processor forks one per file), Airflow, the provider and the project's modules already
imported (``[dag_processor] parsing_pre_import_modules``, on by default, imports a file's modules
before forking), then ``DagBag`` parsing the one file. The job is synthetic: ``--nodes`` models, seeds
and snapshots in 17 folders, each with 1 to 3 parents among the 200 before it and two tests (5 % of
them ``relationships`` tests with a second parent), stored with ``include.dbt_cloud.job_manifest``
exactly as ``make dbt-manifest`` stores a real job. Also printed: the stored file's size, and how long
reading it and building the graph take on their own (the rest is Airflow building operators).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT)]

MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"
RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"

ONE_TASK_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False)
def one_task():
    @task
    def noop():
        return None

    noop()


one_task()
"""

JOB_DAG = """
import pendulum
from airflow.sdk import dag
from include.dag_defaults import default_args
from include.dbt_cloud.task_group import dbt_cloud_job_task_group


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False,
     default_args=default_args(account_id=1))
def big_job():
    dbt_cloud_job_task_group({manifest!r}, job_id=1, account_id=1)


big_job()
"""

#: Runs in a fresh process per sample: warm imports (as the dag-processor pre-imports), then one parse.
TIMER = """
import json, sys, time
import airflow.sdk, airflow.providers.dbt.cloud.operators.dbt
import include.dag_defaults, include.dbt_cloud.task_group
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - started
assert not bag.import_errors, bag.import_errors
print(json.dumps({"seconds": elapsed, "tasks": sum(len(d.tasks) for d in bag.dags.values())}))
"""

GRAPH_TIMER = """
import json, sys, time
import include.dbt_cloud.job_graph as job_graph
started = time.perf_counter()
graph = job_graph.load_job_graph(sys.argv[1], ("launch", "finalize"))
print(json.dumps({"seconds": time.perf_counter() - started, "nodes": len(graph.nodes)}))
"""


def synthetic_job(nodes: int, seed: int = 1) -> dict:
    """A stored manifest of a job with ``nodes`` built nodes and two tests each."""
    from include.dbt_cloud.job_manifest import build_stored_document

    rng = random.Random(seed)
    manifest: dict = {"metadata": {"dbt_schema_version": MANIFEST_SCHEMA}, "nodes": {}, "child_map": {}}
    built: list[str] = []
    results = []
    for index in range(nodes):
        kind = "seed" if index < nodes // 20 else "snapshot" if index < nodes // 20 + nodes // 50 else "model"
        name = f"node_{index:05d}"
        uid = f"{kind}.jaffle.{name}"
        folder = f"folder_{index % 17}"
        tags = ["daily"] if index % 3 else ["hourly"]
        manifest["nodes"][uid] = _node(uid, name, kind, ["jaffle", folder, name], tags)
        window = built[max(0, len(built) - 200) :]
        if kind != "seed" and window:
            for parent in rng.sample(window, k=min(len(window), rng.randint(1, 3))):
                manifest["child_map"].setdefault(parent, []).append(uid)
        built.append(uid)
        results.append(uid)
        for number in range(2):
            test = f"test.jaffle.not_null_{name}_{number}.{index:04x}{number}"
            parents = [uid] + ([rng.choice(built)] if number == 1 and index % 10 == 0 else [])
            test_name = test.split(".")[2]
            manifest["nodes"][test] = {
                **_node(test, test_name, "test", ["jaffle", folder, test_name], []),
                "attached_node": uid,
            }
            for parent in dict.fromkeys(parents):
                manifest["child_map"].setdefault(parent, []).append(test)
            results.append(test)
    run_results = {
        "metadata": {"dbt_schema_version": RESULTS_SCHEMA},
        "args": {"which": "build"},
        "results": [{"unique_id": uid, "status": "success"} for uid in results],
    }
    return build_stored_document(
        job={"id": 1, "name": "big job", "execute_steps": ["dbt build"]},
        run={"id": 1},
        manifest=manifest,
        step_run_results=[(1, "Invoke dbt with `dbt build`", run_results)],
        account_id=1,
    )


def _node(uid: str, name: str, kind: str, fqn: list[str], tags: list[str]) -> dict:
    return {
        "unique_id": uid,
        "name": name,
        "resource_type": kind,
        "package_name": "jaffle",
        "fqn": fqn,
        "tags": tags,
    }


def samples(code: str, target: Path, repeat: int) -> list[dict]:
    found = []
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, "-c", code, str(target)],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO_ROOT,
            env={**_env(), "PYTHONPATH": str(REPO_ROOT)},
        )
        if result.returncode != 0:
            raise SystemExit(f"parsing {target.name} failed:\n{result.stderr[-3000:]}")
        found.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return found


def _env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-mat-parse-"))
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from include.dbt_cloud.job_manifest import write_stored_document

    with tempfile.TemporaryDirectory(prefix="bench-mat-") as scratch:
        root = Path(scratch)
        manifest = write_stored_document(synthetic_job(args.nodes), root / "big_job.json")
        (root / "one_task.py").write_text(ONE_TASK_DAG)
        (root / "big_job.py").write_text(textwrap.dedent(JOB_DAG.format(manifest=str(manifest))))
        one = samples(TIMER, root / "one_task.py", args.repeat)
        big = samples(TIMER, root / "big_job.py", args.repeat)
        graph = samples(GRAPH_TIMER, manifest, args.repeat)
        size = manifest.stat().st_size // 1024

    one_ms = statistics.median(sample["seconds"] for sample in one) * 1000
    big_ms = statistics.median(sample["seconds"] for sample in big) * 1000
    graph_ms = statistics.median(sample["seconds"] for sample in graph) * 1000
    tasks = big[0]["tasks"]
    print(f"stored manifest: {args.nodes} built nodes, {2 * args.nodes} tests, {size} KiB")
    print(f"one-task DAG:                {one_ms:7.1f} ms (median of {args.repeat} fresh processes)")
    print(
        f"{tasks}-task DAG ({args.nodes} nodes): {big_ms:7.1f} ms = {big_ms / one_ms:.0f}x the one-task DAG"
    )
    print(f"  of which reading the stored manifest and building the graph: {graph_ms:.1f} ms")
    every = ", ".join(f"{sample['seconds'] * 1000:.0f}" for sample in big)
    print(f"  all samples (ms): {every}")
    verdict = "within" if big_ms <= 500 else "OVER"
    print(f"goal <= 500 ms for 1,000 nodes: {verdict} ({big_ms:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
