"""What a dbt Cloud run did, node by node: the outcomes of each dbt step, and a table for the task log.

Everything here reads the run's own artifacts (``run_results.json`` and ``manifest.json`` of each
``Invoke dbt with `...` `` step) through the provider's hook, so it works the same against dbt Cloud
and the local dbt Cloud, and adds nothing to the run itself.

:func:`log_run_results` logs, per step, one line per node (node, resource type, status, time, the
first line of the error) and dbt's own counts line (``Done. PASS=… WARN=… ERROR=… SKIP=…``). It never
raises: a report must not turn a good run into a failed task. :func:`fetch_steps` is what the asset
events (``include.dbt_cloud.assets``) and the per-model tasks read the outcomes from.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.rerun_parser.artifacts import parse_manifest, parse_run_results

if TYPE_CHECKING:
    from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook

log = logging.getLogger(__name__)

#: dbt Cloud names the steps that invoke dbt ``Invoke dbt with `dbt build` ``. Every run starts with
#: steps it adds (1 ``Clone git repository``, 2 ``Create profile from connection <type>``, 3 ``dbt
#: deps``), which have no node results: the job's commands are step 4 on.
DBT_STEP = re.compile(r"^Invoke dbt with `(?P<command>[^`]*)`")
#: The built-in step that invokes dbt but writes no run_results.json.
DEPS_STEP = "Invoke dbt with `dbt deps`"
#: The dbt commands (run_results ``args.which``) that build or test nodes; ``docs generate`` and
#: ``compile`` list every node as "success" without building anything, so their steps are left out.
#: ``dbt retry`` (dbt Cloud's run-level retry) records the command it replays (seen with dbt 1.11).
NODE_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "test"})
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
        if name == DEPS_STEP:
            continue
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


def first_error_line(message: Any) -> str | None:
    """The line of a dbt error message that says what went wrong, shortened for a table cell."""
    if not isinstance(message, str) or not message.strip():
        return None
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    line = lines[1] if len(lines) > 1 and ERROR_HEADER.match(lines[0]) else lines[0]
    return _shorten(line, MAX_MESSAGE)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_ok(status: str) -> bool:
    return status in ("success", "pass")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rows_affected(response: Any) -> int | None:
    rows = response.get("rows_affected") if isinstance(response, dict) else None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None
