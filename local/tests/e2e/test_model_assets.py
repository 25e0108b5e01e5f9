"""Per-model assets end to end: the eltml DAG's dbt Cloud run becomes one asset event per node built.

Real local dbt Cloud, real dbt on DuckDB, real DAG runs (``dag.test()``) recording real asset events in
the session's metadata DB. The story: a good run records every model, seed and snapshot and queues the
DAG scheduled on the ``customer_features`` mart; a run where ``stg_orders`` fails records exactly the
nodes that still built, and the mart (skipped) does not queue its consumer.

The warehouse file is named ``jaffle_shop.duckdb`` as in the demo, so the asset URIs are the demo's
(``duckdb://jaffle_shop/main/<table>``: the database, not the file's path).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from pipeline_harness import DBT_TASK, ELTML, DagRunOutcome, Pipeline

from dbt_cloud_local.testing import run_local_dbt_cloud
from include.assets import CUSTOMER_FEATURES
from include.dbt_cloud.assets import describe_model_events
from localdev.airflow_env import project_environment

CONSUMER = "dbt_cloud_model_consumer"
RECORD_TASK = "record_dbt_model_assets"
BUILT_TYPES = ("model.", "seed.", "snapshot.")
#: No retries (a retry would resume the failed run: another test's story), and a short poll interval.
NO_RETRIES = ("--set", f"{DBT_TASK}.retries=0", "--set", f"{DBT_TASK}.check_interval=2")


def _date(day: int) -> dt.datetime:
    return dt.datetime(2025, 8, day, 6, 0)


def _airflow(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, airflow_db) -> Pipeline:
    root = tmp_path_factory.mktemp("model-assets")
    paths = {
        "JAFFLE_SHOP_WAREHOUSE": str(root / "warehouse" / "jaffle_shop.duckdb"),
        "ELTML_LANDING_DIR": str(root / "landing"),
        "ELTML_MODELS_DIR": str(root / "ml_models"),
    }
    with run_local_dbt_cloud(root / "dbt-cloud", env=paths) as server:
        env = {**project_environment(), **paths, **server.client_env("dbt_cloud")}
        # OpenLineage (Astro Runtime ships the provider) to a file, as a user would point it at a backend.
        env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
            {"type": "file", "log_file_path": str(root / "openlineage.jsonl"), "append": True}
        )
        # The listener gives up after 10 s by default; reading each step's manifest takes longer here.
        env["AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT"] = "120"
        env["AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD"] = "True"
        # What the dag-processor does before the scheduler can queue the consumer: the DAGs are in the
        # metadata DB, with their asset references. The consumer starts unpaused (a demo).
        _airflow(env, "dags", "reserialize")
        assert not _paused(CONSUMER)
        yield Pipeline(server=server, root=root, env=env)


def _paused(dag_id: str) -> bool:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(DagModel.is_paused).filter(DagModel.dag_id == dag_id).scalar()


def _recorded(run_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{unique_id: (asset uri, extra)}`` of the asset events the DAG run's record task added."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent, AssetModel.uri)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetEvent.source_dag_id == ELTML, AssetEvent.source_run_id == run_id)
            .filter(AssetEvent.source_task_id == RECORD_TASK)
            .all()
        )
        return {event.extra["unique_id"]: (uri, dict(event.extra)) for event, uri in rows}


def _events_of(asset, dag_run_id: str) -> list[Any]:
    """The asset's events recorded by one eltml DAG run (the session's DB is shared by e2e modules)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetModel.uri == asset.uri, AssetEvent.source_run_id == dag_run_id)
            .all()
        )
        session.expunge_all()
        return rows


def _consumer_queued() -> int:
    """Asset changes waiting in the scheduler's queue for the consumer DAG (what makes it run)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == CONSUMER).count()


def _scheduler_consumes_the_queue() -> None:
    """What the scheduler does when it creates the consumer's run: empty its queue."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == CONSUMER).delete()


def _built(pipeline: Pipeline, dbt_run_id: int) -> dict[str, str]:
    """``{unique_id: last status}`` of the models, seeds and snapshots the run's build steps ran."""
    run = pipeline.run(dbt_run_id)
    last: dict[str, str] = {}
    for step in run["run_steps"]:
        if any(
            command in step["name"] for command in ("`dbt seed", "`dbt build", "`dbt run", "`dbt snapshot")
        ):
            statuses = pipeline.run_results(dbt_run_id, step["index"])
            last.update({uid: status for uid, status in statuses.items() if uid.startswith(BUILT_TYPES)})
    return last


def _dbt_run_id(pipeline: Pipeline, dag_run_id: str) -> int:
    for key in ("dbt_cloud_run_id", "return_value"):
        value = pipeline.xcom(ELTML, dag_run_id, DBT_TASK, key=key)
        if value is not None:
            return int(value)
    url = pipeline.xcom(ELTML, dag_run_id, DBT_TASK, key="job_run_url")
    return int(url.rstrip("/").rsplit("/", 1)[1])


@pytest.fixture(scope="module")
def good_run(pipeline: Pipeline) -> DagRunOutcome:
    """One successful eltml run, shared by the asset and the lineage test (each run costs ~40 s)."""
    _scheduler_consumes_the_queue()  # another e2e module's changes, in the session's shared DB
    outcome = pipeline.run_dag(_date(1), *NO_RETRIES)
    assert outcome.state == "success", outcome.output[-4000:]
    return outcome


def test_good_run_records_every_built_node_and_queues_the_model_consumer(
    pipeline: Pipeline, good_run: DagRunOutcome
):
    outcome = good_run
    states = pipeline.task_instances(ELTML, outcome.run_id)
    assert states[RECORD_TASK][0] == "success"
    dbt_run_id = _dbt_run_id(pipeline, outcome.run_id)
    built = _built(pipeline, dbt_run_id)
    assert set(built.values()) == {"success"}
    assert sum(uid.startswith("model.") for uid in built) >= 8

    assert f"dbt Cloud run {dbt_run_id}, node by node:" in outcome.output
    recorded = _recorded(outcome.run_id)
    assert set(recorded) == set(built), "one event per model, seed and snapshot built"
    uri, extra = recorded["model.jaffle_shop.customer_features"]
    assert uri == CUSTOMER_FEATURES.uri == "duckdb://jaffle_shop/main/customer_features"
    assert extra["dbt_cloud_run_id"] == dbt_run_id
    assert extra["resource_type"] == "model"
    # Same-named models of two packages, and a model's versions, are distinct tables.
    assert recorded["model.jaffle_utils.stg_payments"][0] == "duckdb://jaffle_shop/main_utils/stg_payments"
    assert recorded["model.jaffle_shop.dim_customers.v2"][0] == "duckdb://jaffle_shop/main/dim_customers_v2"
    assert recorded["snapshot.jaffle_shop.customers_snapshot"][0].startswith(
        "duckdb://jaffle_shop/main_snapshots/"
    )
    assert recorded["seed.jaffle_shop.countries"][1]["rows_affected"] > 0, "DuckDB reports a seed's rows"

    assert _consumer_queued() == 1, "the DAG scheduled on customer_features is queued"
    # What the consumer's task reports from its triggering event (the event row itself, from the DB).
    [described] = describe_model_events(
        {CUSTOMER_FEATURES: _events_of(CUSTOMER_FEATURES, outcome.run_id)}, CUSTOMER_FEATURES
    )
    assert described["dbt_cloud_run_id"] == dbt_run_id
    assert described["recorded_by"] == f"{ELTML}.{RECORD_TASK}"


def test_run_with_a_failing_model_records_exactly_the_nodes_that_built(
    pipeline: Pipeline, good_run: DagRunOutcome
):
    _scheduler_consumes_the_queue()  # the good run's change, so that only this run's could queue it
    lineage_before = len(_dbt_lineage_events(pipeline))
    pipeline.set_environment_variable("DBT_FAIL_MODEL", "stg_orders")
    try:
        failed = pipeline.run_dag(_date(2), *NO_RETRIES)
    finally:
        pipeline.set_environment_variable("DBT_FAIL_MODEL", None)

    assert failed.state == "failed", failed.output[-4000:]
    states = pipeline.task_instances(ELTML, failed.run_id)
    assert states[DBT_TASK][0] == "failed"
    assert states[RECORD_TASK][0] == "success", "it runs whatever the dbt task's outcome"
    built = _built(pipeline, _dbt_run_id(pipeline, failed.run_id))
    assert built["model.jaffle_shop.stg_orders"] == "error"
    assert built["model.jaffle_shop.customer_features"] == "skipped"

    # The dbt task's log ends with the run's nodes, the failed one with its cause, and dbt's counts.
    failed_row = r"jaffle_shop\.stg_orders +model +error +[\d.]+s +Invalid Input Error: DBT_FAIL_MODEL asked"
    assert re.search(failed_row, failed.output), failed.output[-4000:]
    assert re.search(r"Done in [\d.]+s\. PASS=\d+ WARN=0 ERROR=1 SKIP=\d+ NO-OP=0 TOTAL=\d+", failed.output)

    recorded = _recorded(failed.run_id)
    succeeded = {uid for uid, status in built.items() if status == "success"}
    assert set(recorded) == succeeded, "exactly the nodes that built; failed and skipped ones emit nothing"
    assert {"model.jaffle_shop.stg_customers", "seed.jaffle_shop.countries"} <= succeeded
    assert _consumer_queued() == 0, "customer_features was skipped: its consumer is not queued"

    # Lineage of a failed run: the OpenLineage provider falls back to the dbt operator's "on complete"
    # method when a task fails, so the nodes that built are COMPLETE with their tables, the failed
    # model is FAIL, and the skipped ones have no event: the same set as the asset events.
    events = _dbt_lineage_events(pipeline)[lineage_before:]
    outputs = {d["name"] for event in events if event["eventType"] == "COMPLETE" for d in event["outputs"]}
    assert outputs == _tables(recorded, "model.", "snapshot.")
    failed_jobs = {event["job"]["name"] for event in events if event["eventType"] == "FAIL"}
    assert "jaffle_shop.main.jaffle_shop.stg_orders.build.run" in failed_jobs
    assert not any("customer_features.build.run" in event["job"]["name"] for event in events)


def test_openlineage_events_name_the_models_of_a_successful_run(pipeline: Pipeline, good_run: DagRunOutcome):
    """The provider's OpenLineage code reads the run (v3 project connection, each step's manifest and
    run_results) and emits one event per dbt node, child of the Airflow task, to the file transport."""
    events = _dbt_lineage_events(pipeline)
    namespace = f"duckdb://{pipeline.root / 'warehouse' / 'jaffle_shop.duckdb'}"
    outputs = {(d["namespace"], d["name"]) for event in events for d in event.get("outputs", [])}
    # OpenLineage's dbt processor reports models and snapshots (not seeds).
    built_tables = _tables(_recorded(good_run.run_id), "model.", "snapshot.")
    assert "jaffle_shop.main.customer_features" in built_tables
    assert outputs == {(namespace, table) for table in built_tables}
    parents = {event["run"]["facets"]["parent"]["job"]["name"] for event in events}
    assert parents == {f"{ELTML}.{DBT_TASK}"}, "each dbt node's run is a child of the Airflow task's"


def _dbt_lineage_events(pipeline: Pipeline) -> list[dict[str, Any]]:
    """The OpenLineage events of dbt nodes (not of Airflow tasks) in the transport's file."""
    path = pipeline.root / "openlineage.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    events = [json.loads(line) for line in lines if line.strip()]
    airflow_jobs = (ELTML, f"{ELTML}.")  # the DAG's and its tasks' own events
    return [event for event in events if not event["job"]["name"].startswith(airflow_jobs)]


def _tables(recorded: dict[str, tuple[str, dict[str, Any]]], *prefixes: str) -> set[str]:
    """The recorded assets' tables, named as OpenLineage names them: duckdb://db/schema/t -> db.schema.t"""
    return {
        uri.removeprefix("duckdb://").replace("/", ".")
        for uid, (uri, _) in recorded.items()
        if uid.startswith(prefixes)
    }
