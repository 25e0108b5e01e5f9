"""DAG integrity: every DAG file imports cleanly, follows the project's conventions and parses cheaply.

Runs in the local venv (`make test`) and in the Astro image (`astro dev pytest tests/dags`): no
metadata DB, no network and no services are needed, which is itself part of what is tested.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.dags.dag_parsing import DAGS_FOLDER, PROJECT_ROOT, parse_dags

# Modules too heavy to import on every parse: they belong inside tasks (see include/eltml/tasks.py).
HEAVY_MODULES = ("sklearn", "duckdb", "pandas", "scipy", "dbt")
DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dag_bag():
    return parse_dags()


def test_dag_files_import_without_errors_or_external_access(dag_bag):
    errors = {Path(p).name: message.strip().splitlines()[-1] for p, message in dag_bag.import_errors.items()}
    assert errors == {}, f"DAG import errors: {json.dumps(errors, indent=2)}"
    assert dag_bag.dags, f"No DAG found in {DAGS_FOLDER}"
    parsed_files = {Path(dag.fileloc).name for dag in dag_bag.dags.values()}
    assert parsed_files == {p.name for p in DAG_FILES}, "every DAG file defines at least one DAG"


def test_eltml_dag_has_the_guide_shape(dag_bag):
    dag = dag_bag.dags["dbt_cloud_provider_eltml"]
    order = ["extract", "load", "trigger_dbt_cloud_job_run", "ml_training"]
    for upstream, downstream in itertools.pairwise(order):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    dbt_task = dag.get_task("trigger_dbt_cloud_job_run")
    assert dbt_task.deferrable
    # Resumes the run it launched (include/dbt_cloud/operator.py), in place of the provider's
    # retry_from_failure/reuse_existing_run.
    assert type(dbt_task).__name__ == "DbtCloudResumableRunJobOperator"


def test_models_as_tasks_dag_renders_the_job_node_by_node_around_one_launcher(dag_bag):
    """One task per model, seed, snapshot (and tested source) of the eltml job, all below one setup
    task that starts the dbt Cloud run, with a teardown after them (include/dbt_cloud/task_group.py)."""
    dag = dag_bag.dags["dbt_cloud_models_as_tasks"]
    group = "eltml_build"
    launcher, finalize = dag.get_task(f"{group}.launch"), dag.get_task(f"{group}.finalize")
    nodes = [task for task in dag.tasks if type(task).__name__ == "DbtCloudNodeOperator"]
    assert launcher.is_setup
    assert finalize.is_teardown
    assert len(nodes) == 15
    for node in nodes:
        assert launcher.task_id in {up.task_id for up in node.get_flat_relatives(upstream=True)}
        assert finalize.task_id in {down.task_id for down in node.get_flat_relatives(upstream=False)}
    assert dag.get_task(f"{group}.orders").upstream_task_ids == {
        f"{group}.stg_orders",
        f"{group}.jaffle_shop__stg_payments",
    }
    assert dag.get_task("ml_training").upstream_task_ids == {f"{group}.customer_features"}
    assert launcher.upstream_task_ids == {"load"}


def test_models_as_tasks_dag_says_how_to_fix_a_missing_manifest(tmp_path):
    """A DAG whose stored manifest is missing fails to import with the make target that makes it."""
    source = (DAGS_FOLDER / "dbt_cloud_models_as_tasks.py").read_text()
    broken = source.replace("include/dbt_manifests/eltml_build.json", "include/dbt_manifests/missing.json")
    (tmp_path / "models_as_tasks_missing.py").write_text(broken)
    errors = parse_dags(tmp_path).import_errors
    (message,) = errors.values()
    assert "missing.json: no such file" in message
    assert "make dbt-manifest" in message


@pytest.mark.parametrize(
    "dag_id",
    [
        "dbt_cloud_provider_eltml",
        "dbt_cloud_hourly_models",
        "dbt_cloud_daily_models",
        "dbt_cloud_after_ingestion",
        "dbt_cloud_rerun_parser",
        "dbt_cloud_model_consumer",
        "dbt_cloud_models_as_tasks",
    ],
)
def test_expected_dags_exist(dag_bag, dag_id):
    assert dag_id in dag_bag.dags


def test_every_dag_follows_conventions(dag_bag):
    problems = []
    for dag_id, dag in sorted(dag_bag.dags.items()):
        if not dag.tags:
            problems.append(f"{dag_id}: add tags=[...]")
        if not dag.doc_md:
            problems.append(f"{dag_id}: add doc_md (the DAG's docs in the UI)")
        if dag.schedule is not None and dag.catchup:
            problems.append(f"{dag_id}: scheduled DAGs set catchup=False (no surprise backfills)")
        for task in dag.tasks:
            if task.owner in (None, "", "airflow"):
                problems.append(f"{dag_id}.{task.task_id}: set an owner in default_args")
            if task.retries < 2:
                problems.append(f"{dag_id}.{task.task_id}: retries={task.retries}, want >= 2")
    assert problems == []


def test_every_dbt_cloud_task_uses_the_shared_connection_and_hook_settings(dag_bag):
    """One convention for every operator and sensor (include/dbt_cloud/hook.py): a DAG that forgets the
    hook settings would fail on the first 429 instead of retrying it."""
    from include.dbt_cloud.hook import DBT_CLOUD_CONN_ID, HOOK_PARAMS

    dbt_tasks = [
        task
        for dag in dag_bag.dags.values()
        for task in dag.tasks
        if type(task).__module__.startswith(("airflow.providers.dbt.cloud.", "include.dbt_cloud"))
    ]
    assert len(dbt_tasks) >= 5
    for task in dbt_tasks:
        assert task.dbt_cloud_conn_id == DBT_CLOUD_CONN_ID, task
        assert task.hook_params == HOOK_PARAMS, task


def test_each_asset_has_one_producer(dag_bag):
    from airflow.sdk import AssetAlias

    producers: dict[str, list[str]] = {}
    for dag_id, dag in dag_bag.dags.items():
        for task in dag.tasks:
            for outlet in task.outlets:
                if isinstance(outlet, AssetAlias):  # shared by design (eltml and webhook DAGs record into it)
                    continue
                producers.setdefault(outlet.name, []).append(f"{dag_id}.{task.task_id}")
    assert producers, "the demo DAGs update assets"
    shared = {name: tasks for name, tasks in producers.items() if len(tasks) > 1}
    assert shared == {}, f"assets with more than one producer: {shared}"


def test_parse_guard_catches_top_level_access(tmp_path):
    """The guard used above must actually fail a DAG file that reads a Variable or calls out at parse."""
    bad_dags = {
        "variable_at_top.py": "from airflow.sdk import Variable\nVALUE = Variable.get('x')\n",
        "network_at_top.py": "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/')\n",
        "connection_at_top.py": "from airflow.sdk import BaseHook\nBaseHook.get_connection('dbt_cloud')\n",
    }
    for name, body in bad_dags.items():
        # safe_mode only parses files that mention both "airflow" and "dag", as real DAG files do.
        (tmp_path / name).write_text("from airflow.sdk import dag\n" + body)
    errors = parse_dags(tmp_path).import_errors
    assert {Path(p).name for p in errors} == set(bad_dags)
    assert all("at DAG parse time" in message for message in errors.values())


@pytest.fixture(scope="module")
def heavy_imports_by_file() -> dict[str, list[str]]:
    """The heavy modules each DAG file pulls into a parse, each file parsed in a fresh fork of one clean
    interpreter (Airflow imported once, then ``os.fork`` per file: the same as a fresh process per file,
    in a fraction of the time). The test process itself may have imported anything, so it cannot judge."""
    script = textwrap.dedent(
        f"""
        import json, os, sys
        import airflow.sdk, airflow.providers.dbt.cloud.operators.dbt  # what any DAG here imports
        from airflow.models import DagBag
        before = set(sys.modules)
        found = {{}}
        for path in {[str(path) for path in DAG_FILES]!r}:
            read, write = os.pipe()
            if os.fork() == 0:
                os.close(read)
                DagBag(dag_folder=path)
                new = set(sys.modules) - before
                heavy = sorted(m for m in new if m.split('.')[0] in {HEAVY_MODULES!r})
                os.write(write, json.dumps(heavy).encode())
                os._exit(0)
            os.close(write)
            with os.fdopen(read) as answer:
                found[os.path.basename(path)] = json.loads(answer.read() or '["<the parse crashed>"]')
            os.wait()
        print(json.dumps(found))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_heavy_module_at_parse_time(dag_file, heavy_imports_by_file):
    """Parse cost budget: a DAG file must not pull heavy libraries into every parse."""
    heavy = heavy_imports_by_file[dag_file.name]
    assert heavy == [], f"{dag_file.name} imports {heavy} at parse time; import them inside the task"
