"""Per-model Airflow asset events from a dbt Cloud run: one event per model, seed and snapshot it built.

:func:`record_model_assets` adds one Airflow asset event per model, seed and snapshot that the run
built successfully, through the ``DBT_CLOUD_MODELS`` asset alias, so the set of assets follows the dbt
project without DAG edits. Failed and skipped nodes emit nothing.

:func:`dbt_model_assets_task` builds the TaskFlow task that does it in a DAG. Airflow only records the
outlet events of a task that *succeeds*, and a dbt task whose run had one failing model fails, so the
events come from a separate task that runs whatever happened (``trigger_rule="all_done"``) and reads
the run id that the dbt task pushed (XCom ``dbt_cloud_run_id``)::

    record = dbt_model_assets_task("trigger_dbt_cloud_job_run")
    dbt_task >> [ml_training, record()]

Any other task can record the events of any run id, e.g. a DAG triggered by a dbt Cloud webhook for a
run started outside Airflow: declare ``outlets=[DBT_CLOUD_MODELS]`` and call
``record_model_assets(dbt_cloud_hook(), account_id, run_id, context["outlet_events"])``.

Asset URIs name the warehouse table where the adapter allows it, so a DAG can be scheduled on a table
(``duckdb://jaffle_shop/main/customer_features``, ``snowflake://<account>/<db>/<schema>/<table>``,
``postgres://<host>:<port>/<db>/<schema>/<table>``, ``bigquery://<project>/<dataset>/<table>``...).
DuckDB's URI names the database (the file's stem), not the file's path, so it is the same on a laptop,
in CI and in containers. Other adapters get a stable dbt URI,
``dbt://accounts/<account>/projects/<project>/<unique_id>``. The asset's name is its URI.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias

from include.dbt_cloud.results import NodeOutcome, Relation, StepOutcome, fetch_relations, fetch_steps

if TYPE_CHECKING:
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook
    from airflow.sdk import Asset

log = logging.getLogger(__name__)

#: Every model, seed and snapshot a dbt Cloud run builds is an asset event through this alias, so the
#: set of assets follows the dbt project with no DAG edit (schedule a DAG on a model's own asset).
DBT_CLOUD_MODELS = AssetAlias(name="dbt_cloud_models")
BUILD_COMMANDS = frozenset({"build", "run", "seed", "snapshot"})
#: A run's page in dbt Cloud: ``https://<host>/deploy/<account>/projects/<project>/runs/<run_id>/``.
RUN_URL = re.compile(r"/runs/(\d+)/?(?:$|[?#])")
#: The resource types that leave a table or view behind: each successful one becomes an asset event.
BUILT_TYPES = frozenset({"model", "seed", "snapshot"})


def built_nodes(steps: Sequence[StepOutcome]) -> dict[str, tuple[StepOutcome, NodeOutcome]]:
    """Models, seeds and snapshots whose *last* outcome in the run was a success (a seed rebuilt by a
    later step that then failed is not fresh)."""
    last: dict[str, tuple[StepOutcome, NodeOutcome]] = {}
    for step in steps:
        if step.command not in BUILD_COMMANDS:
            continue
        for node in step.nodes:
            if node.resource_type in BUILT_TYPES:
                last[node.unique_id] = (step, node)
    return {uid: pair for uid, pair in last.items() if pair[1].status == "success"}


def asset_uri(
    adapter: str | None,
    connection: Mapping[str, Any] | None,
    relation: Relation | None,
    *,
    account_id: int | None,
    project_id: int | None,
    unique_id: str,
) -> str:
    """The warehouse table's URI where the adapter allows, else ``dbt://accounts/…/<unique_id>``."""
    details = (connection or {}).get("details") or {}
    connection_type = (connection or {}).get("type")
    kind = connection_type if connection_type and connection_type != "adapter" else adapter
    if relation is not None and relation.schema and kind:
        table = [relation.schema, relation.identifier]
        database = relation.database
        host = details.get("hostname") or details.get("host")
        if kind == "duckdb" and database:
            return _uri("duckdb", database, *table)
        if kind == "snowflake" and database and details.get("account"):
            return _uri("snowflake", str(details["account"]).lower(), database, *table)
        if kind == "bigquery" and database:
            return _uri("bigquery", database, *table)
        if kind in ("postgres", "redshift") and database and host:
            port = details.get("port") or (5432 if kind == "postgres" else 5439)
            return _uri(kind, f"{host}:{port}", database, *table)
    return f"dbt://accounts/{account_id}/projects/{project_id}/{unique_id}"


def record_model_assets(hook: DbtCloudHook, account_id: int | None, run_id: int, outlet_events: Any) -> int:
    """Add one asset event per model/seed/snapshot the run built successfully to the DBT_CLOUD_MODELS
    alias in ``outlet_events`` (the task's ``context["outlet_events"]``); return how many."""
    from airflow.sdk import Asset

    steps = fetch_steps(hook, account_id, run_id)
    built = built_nodes(steps)
    if not built:
        log.info("dbt Cloud run %s built no model, seed or snapshot successfully: no asset events", run_id)
        return 0
    run = hook.get_job_run(run_id=run_id, account_id=account_id).json()["data"]
    account, project_id = run.get("account_id", account_id), run.get("project_id")
    connection = _project_connection(hook, account, project_id)
    relations: dict[int, tuple[str | None, dict[str, Relation]]] = {}
    for step, _ in built.values():
        if step.index not in relations:
            relations[step.index] = fetch_relations(hook, account_id, run_id, step.index)

    emitted = []
    for unique_id, (step, node) in built.items():
        adapter, step_relations = relations[step.index]
        uri = asset_uri(
            adapter,
            connection,
            step_relations.get(unique_id),
            account_id=account,
            project_id=project_id,
            unique_id=unique_id,
        )
        extra = {
            "dbt_cloud_run_id": run_id,
            "unique_id": unique_id,
            "resource_type": node.resource_type,
            "step": step.index,
            "execution_time": node.seconds,
        }
        if node.rows_affected is not None:
            extra["rows_affected"] = node.rows_affected
        try:
            asset = Asset(name=uri, uri=uri)
        except ValueError as error:  # a provider's URI rules for that scheme refuse it: the dbt URI then
            log.warning("Asset URI %s refused (%s): using the dbt URI for %s", uri, error, unique_id)
            uri = asset_uri(None, None, None, account_id=account, project_id=project_id, unique_id=unique_id)
            asset = Asset(name=uri, uri=uri)
        outlet_events[DBT_CLOUD_MODELS].add(asset, extra=extra)
        emitted.append(uri)
    log.info("dbt Cloud run %s: %d asset events\n  %s", run_id, len(emitted), "\n  ".join(sorted(emitted)))
    return len(emitted)


def dbt_model_assets_task(dbt_task_id: str, *, account_id: int | None = None) -> Any:
    """A TaskFlow task that records the asset events of the run ``dbt_task_id`` waited on.

    It runs whatever the dbt task's outcome (``all_done``): after a run with a failing model the
    models that did build still get their events. No run id (the dbt task failed before dbt Cloud
    accepted a run) means nothing to record.
    """
    from airflow.sdk import task

    @task(task_id="record_dbt_model_assets", outlets=[DBT_CLOUD_MODELS], trigger_rule="all_done")
    def record_dbt_model_assets(**context: Any) -> int:
        from include.dbt_cloud.hook import dbt_cloud_hook

        run_id = dbt_task_run_id(context["ti"], dbt_task_id)
        if run_id is None:
            log.info("%s started no dbt Cloud run: no asset events to record", dbt_task_id)
            return 0
        account = (
            account_id
            if account_id is not None
            else getattr(context["task"].dag.get_task(dbt_task_id), "account_id", None)
        )
        return record_model_assets(dbt_cloud_hook(), account, run_id, context["outlet_events"])

    return record_dbt_model_assets


def dbt_task_run_id(ti: Any, dbt_task_id: str) -> int | None:
    """The dbt Cloud run a dbt task waited on, from its XComs: ``dbt_cloud_run_id`` (pushed as soon as
    the run is known, also when it then fails), else the provider operator's return value (success
    only), else the run id in its ``job_run_url`` (pushed before it waits, by every provider version)."""
    for key in ("dbt_cloud_run_id", "return_value"):
        value = ti.xcom_pull(task_ids=dbt_task_id, key=key)
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return int(value)
    url = ti.xcom_pull(task_ids=dbt_task_id, key="job_run_url")
    found = RUN_URL.search(url) if isinstance(url, str) else None
    return int(found.group(1)) if found else None


def _project_connection(hook: DbtCloudHook, account_id: int | None, project_id: Any) -> dict[str, Any] | None:
    """The v3 project's connection (``type`` and ``details``), as the provider's OpenLineage code reads it."""
    if not isinstance(project_id, int):
        return None
    try:
        project = hook.get_project(project_id=project_id, account_id=account_id).json()["data"]
    except Exception as error:  # the URIs then fall back to the manifest's adapter type
        log.warning("Could not read dbt Cloud project %s's connection: %s", project_id, error)
        return None
    connection = project.get("connection")
    return connection if isinstance(connection, dict) else None


def _uri(scheme: str, authority: str, *path: str) -> str:
    return f"{scheme}://{authority}/" + "/".join(path)


def describe_model_events(triggering_asset_events: Any, asset: Asset) -> list[dict[str, Any]]:
    """For a DAG scheduled on a model's asset: which dbt Cloud run rebuilt it, when, with which rows
    (one dict per triggering event, also logged)."""
    events = triggering_asset_events.get(asset, []) if triggering_asset_events else []
    described = []
    for event in events:
        extra = dict(event.extra or {})
        described.append(
            {
                "uri": asset.uri,
                "dbt_cloud_run_id": extra.get("dbt_cloud_run_id"),
                "unique_id": extra.get("unique_id"),
                "rows_affected": extra.get("rows_affected"),
                "recorded_by": f"{event.source_dag_id}.{event.source_task_id}",
                "timestamp": str(event.timestamp),
            }
        )
        log.info("%s was rebuilt by dbt Cloud run %s", asset.uri, extra.get("dbt_cloud_run_id"))
    if not described:
        log.info("%s: no triggering event (a manual run)", asset.uri)
    return described
