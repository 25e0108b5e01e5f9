"""What a dbt Cloud run did, model by model: a results table for the task log, and asset events.

When a dbt Cloud task finishes, Airflow on its own only knows "the job succeeded" or "it failed".
Everything here reads the run's own artifacts (``run_results.json`` and ``manifest.json`` of each
``Invoke dbt with `...` `` step) through the provider's hook, so it works the same against dbt Cloud
and the local dbt Cloud, and adds nothing to the run itself.

* :func:`log_run_results` logs, per step, one line per node (node, resource type, status, time, the
  first line of the error) and dbt's own counts line (``Done. PASS=… WARN=… ERROR=… SKIP=…``). It
  never raises: a report must not turn a good run into a failed task.
* :func:`record_model_assets` adds one Airflow asset event per model, seed and snapshot that the run
  built successfully, through the ``DBT_CLOUD_MODELS`` asset alias (``include.assets``), so the set of
  assets follows the dbt project without DAG edits. Failed and skipped nodes emit nothing.
* :func:`dbt_model_assets_task` builds the TaskFlow task that does it in a DAG. Airflow only records
  the outlet events of a task that *succeeds*, and a dbt task whose run had one failing model fails,
  so the events come from a separate task that runs whatever happened (``trigger_rule="all_done"``)
  and reads the run id that the dbt task pushed (XCom ``dbt_cloud_run_id``)::

      record = dbt_model_assets_task("trigger_dbt_cloud_job_run")
      dbt_task >> [ml_training, record()]

  Any other task can record the events of any run id, e.g. a DAG triggered by a dbt Cloud webhook for
  a run started outside Airflow: declare ``outlets=[DBT_CLOUD_MODELS]`` and call
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
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.rerun_parser.artifacts import parse_manifest, parse_run_results

if TYPE_CHECKING:
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook
    from airflow.sdk import Asset

log = logging.getLogger(__name__)

#: dbt Cloud names the steps that invoke dbt ``Invoke dbt with `dbt build` `` (clone and deps steps
#: have no artifacts of their own).
DBT_STEP = re.compile(r"^Invoke dbt with `(?P<command>[^`]*)`")
#: The dbt commands (run_results ``args.which``) that build or test nodes; ``docs generate`` and
#: ``compile`` list every node as "success" without building anything, so their steps are left out.
#: ``dbt retry`` (dbt Cloud's run-level retry) records the command it replays (seen with dbt 1.11).
NODE_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "test"})
BUILD_COMMANDS = frozenset({"build", "run", "seed", "snapshot"})
#: A run's page in dbt Cloud: ``https://<host>/deploy/<account>/projects/<project>/runs/<run_id>/``.
RUN_URL = re.compile(r"/runs/(\d+)/?(?:$|[?#])")
#: The resource types that leave a table or view behind: each successful one becomes an asset event.
BUILT_TYPES = frozenset({"model", "seed", "snapshot"})
#: run_results statuses -> dbt's counts line (the order dbt prints them in).
COUNT_LABELS = {
    "success": "PASS",
    "pass": "PASS",
    "warn": "WARN",
    "error": "ERROR",
    "fail": "ERROR",
    "runtime error": "ERROR",
    "skipped": "SKIP",
    "no-op": "NO-OP",
}
COUNT_ORDER = ("PASS", "WARN", "ERROR", "SKIP", "NO-OP")
#: dbt's first error line is often only a header (``Runtime Error in model x (path)``); the cause follows.
ERROR_HEADER = re.compile(r"^(Runtime|Database|Compilation|Dependency|Parsing) Error in \S+ \S+ \(.*\)$")
#: Longest node label shown in the table (long generated test names are cut).
MAX_LABEL = 64
#: Longest error excerpt kept in the table and in asset metadata.
MAX_MESSAGE = 160


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    """How one node ended in one step (one entry of run_results.json)."""

    unique_id: str
    status: str
    seconds: float | None
    message: str | None
    rows_affected: int | None

    @property
    def resource_type(self) -> str:
        return self.unique_id.split(".", 1)[0]

    @property
    def label(self) -> str:
        """What dbt prints: ``package.name`` (``.vN`` for a version), a test without its hash."""
        parts = self.unique_id.split(".")
        if self.resource_type == "test" and len(parts) > 3:
            parts = parts[:-1]
        return ".".join(parts[1:])


@dataclass(frozen=True)
class StepOutcome:
    """One ``Invoke dbt`` step of a run and the outcome of each node it ran."""

    index: int
    name: str
    #: dbt's own name of the command that ran (``args.which``: build, run, seed, generate...).
    command: str
    nodes: tuple[NodeOutcome, ...]
    elapsed: float | None = None


@dataclass(frozen=True, slots=True)
class Relation:
    """Where a node lives in the warehouse, from the step's manifest."""

    database: str | None
    schema: str | None
    identifier: str


# --- Reading a run ------------------------------------------------------------------------------
def step_outcome(index: int, name: str, run_results: Any) -> StepOutcome:
    """The nodes of a step's run_results.json (validated by the rerun parser's reader)."""
    source = f"run_results.json of step {index}"
    parsed = parse_run_results(run_results, source)
    nodes = tuple(
        NodeOutcome(
            unique_id=result.unique_id,
            status=result.status,
            seconds=_number(raw.get("execution_time")),
            message=first_error_line(raw.get("message")) if not _is_ok(result.status) else None,
            rows_affected=_rows_affected(raw.get("adapter_response")),
        )
        for result, raw in zip(parsed.results, run_results["results"], strict=True)
    )
    return StepOutcome(index, name, parsed.command, nodes, _number(run_results.get("elapsed_time")))


def dbt_steps(run: Mapping[str, Any]) -> list[tuple[int, str]]:
    """``(index, name)`` of the run's steps that invoked dbt, in order."""
    steps = [(step.get("index"), step.get("name") or "") for step in run.get("run_steps") or []]
    return [(index, name) for index, name in steps if isinstance(index, int) and DBT_STEP.match(name)]


def fetch_steps(hook: DbtCloudHook, account_id: int | None, run_id: int) -> list[StepOutcome]:
    """Each dbt step of the run with its node outcomes; a step without run_results.json is left out
    (it failed before dbt wrote any, e.g. a compilation error), with a warning naming it."""
    run = hook.get_job_run(run_id=run_id, account_id=account_id, include_related=["run_steps"]).json()["data"]
    outcomes = []
    for index, name in dbt_steps(run):
        try:
            document = hook.get_job_run_artifact(
                run_id, "run_results.json", account_id=account_id, step=index
            )
            outcomes.append(step_outcome(index, name, document.json()))
        except Exception as error:  # one unreadable step must not hide the others
            log.warning("dbt Cloud run %s step %s (%s): no node results (%s)", run_id, index, name, error)
    return outcomes


def fetch_relations(
    hook: DbtCloudHook, account_id: int | None, run_id: int, step: int
) -> tuple[str | None, dict[str, Relation]]:
    """The step's adapter type and the warehouse relation of each node, from its manifest.json."""
    document = hook.get_job_run_artifact(run_id, "manifest.json", account_id=account_id, step=step).json()
    return manifest_relations(document, f"manifest.json of step {step}")


def manifest_relations(
    document: Any, source: str = "manifest.json"
) -> tuple[str | None, dict[str, Relation]]:
    """The adapter type (``metadata.adapter_type``) and each node's ``database.schema.alias``."""
    manifest = parse_manifest(document, source)
    relations = {}
    for unique_id, node in document["nodes"].items():  # models, seeds and snapshots all sit in "nodes"
        if unique_id in manifest.nodes and isinstance(node, dict):
            identifier = node.get("alias") or node.get("identifier") or node.get("name")
            if isinstance(identifier, str):
                relations[unique_id] = Relation(node.get("database"), node.get("schema"), identifier)
    adapter = (document.get("metadata") or {}).get("adapter_type")
    return (adapter if isinstance(adapter, str) else None), relations


# --- The task log -------------------------------------------------------------------------------
def format_step(step: StepOutcome) -> str:
    """A fixed-width table of the step's nodes, then dbt's counts line."""
    rows = [
        (
            _shorten(node.label, MAX_LABEL),
            node.resource_type,
            node.status,
            "" if node.seconds is None else f"{node.seconds:.2f}s",
            node.message or "",
        )
        for node in step.nodes
    ]
    header = ("node", "type", "status", "time", "error")
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(4)]
    lines = [f"Step {step.index}: {step.name}"]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append("  " + "  ".join([*cells, row[4]]).rstrip())
    lines.append("  " + counts_line(step.nodes, step.elapsed))
    return "\n".join(lines)


def counts_line(nodes: Iterable[NodeOutcome], elapsed: float | None = None) -> str:
    """dbt's summary: ``Done. PASS=40 WARN=0 ERROR=1 SKIP=14 NO-OP=0 TOTAL=55``."""
    counts = Counter(COUNT_LABELS.get(node.status, "ERROR") for node in nodes)
    total = sum(counts.values())
    parts = " ".join(f"{label}={counts.get(label, 0)}" for label in COUNT_ORDER)
    took = "" if elapsed is None else f" in {elapsed:.2f}s"
    return f"Done{took}. {parts} TOTAL={total}"


def log_run_results(hook: DbtCloudHook, account_id: int | None, run_id: int) -> None:
    """Log a compact per-step table of the run's nodes. Never raises (a report must not fail a task)."""
    try:
        steps = [step for step in fetch_steps(hook, account_id, run_id) if step.command in NODE_COMMANDS]
        if not steps:
            log.warning("dbt Cloud run %s: no step left node results to report", run_id)
            return
        tables = "\n".join(format_step(step) for step in steps)
        log.info("dbt Cloud run %s, node by node:\n%s", run_id, tables)
    except Exception as error:
        log.warning("Could not report the nodes of dbt Cloud run %s: %s", run_id, error)


# --- Asset events -------------------------------------------------------------------------------
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

    from include.assets import DBT_CLOUD_MODELS

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

    from include.assets import DBT_CLOUD_MODELS

    @task(task_id="record_dbt_model_assets", outlets=[DBT_CLOUD_MODELS], trigger_rule="all_done")
    def record_dbt_model_assets(**context: Any) -> int:
        from include.dbt_cloud import dbt_cloud_hook

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


# --- Helpers ------------------------------------------------------------------------------------
def first_error_line(message: Any) -> str | None:
    """The line of a dbt error message that says what went wrong, shortened for a table cell."""
    if not isinstance(message, str) or not message.strip():
        return None
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    line = lines[1] if len(lines) > 1 and ERROR_HEADER.match(lines[0]) else lines[0]
    return _shorten(line, MAX_MESSAGE)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _is_ok(status: str) -> bool:
    return status in ("success", "pass")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rows_affected(response: Any) -> int | None:
    rows = response.get("rows_affected") if isinstance(response, dict) else None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None


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
