"""A dbt Cloud job's manifest, stored in the project: what a DAG renders its node tasks from.

A DAG file is parsed every few seconds, so the graph of a job's models cannot come from dbt Cloud at
parse time (network at parse: slow, and broken whenever dbt Cloud is). It comes from a JSON file in
the project (``include/dbt_manifests/<name>.json``) that ``make dbt-manifest`` writes from the job's
latest successful run (``include.dbt_cloud.manifest_refresh``), against the local dbt Cloud or a real
account alike, and that is committed and deployed with the DAGs.

What the file keeps, and why:

- the job's **selection**, as the nodes each dbt step of that run executed (its ``run_results.json``):
  dbt selectors (``tag:``, ``state:``, YAML selectors, ``--exclude``) can only be evaluated by dbt, so
  the run that dbt Cloud last ran successfully is the truth about which nodes the job builds;
- the **manifest**, pruned to what the graph and an exact rerun selection need: every selectable node's
  ``fqn``, type, package, version and tags (to prove a ``--select`` picks those nodes and no other,
  ``include.rerun_parser.select_exactly``), the sources' names, tests' ``attached_node`` and the
  ``child_map`` (the edges). SQL, columns, docs and config are dropped: a 50 MB manifest becomes a
  file that parses in milliseconds;
- each step's command, ``args.select`` and the flags a rerun must repeat (``replayed_flags``).

Loading validates the file and caches it per process by path and modification time, so a refreshed
file is picked up at the next parse. Any problem raises :class:`JobManifestError`, naming the file and
the make target that rebuilds it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.dbt_cloud.results import DBT_STEP, NODE_COMMANDS
from include.rerun_parser.artifacts import (
    SELECTABLE_SECTIONS,
    _collector_paused,
    parse_manifest,
    parse_run_results,
)
from include.rerun_parser.errors import RerunParserError
from include.rerun_parser.replayed_flags import replayed_flags

if TYPE_CHECKING:
    from include.rerun_parser import Manifest

#: Written into every stored file; a file of another format is refused with the refresh hint.
FORMAT = "airflow-dbt-cloud-job-manifest/1"
#: What rebuilds a stored file (every error message names it).
REFRESH_HINT = "make dbt-manifest"
#: The resource types a job builds, each one an Airflow task; tests fold into them.
BUILT_TYPES = frozenset({"model", "seed", "snapshot"})
#: The resource types folded into the node they test.
TEST_TYPES = frozenset({"test", "unit_test"})
#: Per node, the fields the graph and the exact selection read; the rest of the manifest is dropped.
_KEPT_FIELDS = (
    "unique_id",
    "name",
    "fqn",
    "resource_type",
    "package_name",
    "version",
    "tags",
    "attached_node",
    "source_name",
)
#: dbt commands whose steps execute nodes; ``retry`` replays one of them (run_results names which).
_NODE_SUBCOMMANDS = frozenset({*NODE_COMMANDS, "retry"})


class JobManifestError(ValueError):
    """The stored job manifest is missing, unreadable or from another format, with the fix."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(
            f"{path}: {problem}. Refresh it from the job's latest successful run with `{REFRESH_HINT}` "
            "(docs/models-as-tasks.md says how, for the local dbt Cloud or your account)."
        )


@dataclass(frozen=True)
class StoredStep:
    """One dbt step of the run the file was made from."""

    index: int
    command: str
    #: dbt's name of the command that ran (``args.which``): build, seed, run...
    which: str
    #: The step's ``args.select`` (None when the step had none).
    select: tuple[str, ...] | None
    #: The flags a rerun of this step's nodes repeats (``--vars``, ``--full-refresh``, ``--target``...).
    replayed_flags: tuple[str, ...]
    #: The unique_ids the step executed (sorted).
    executed: tuple[str, ...]


@dataclass(frozen=True)
class StoredJobManifest:
    """A validated stored file: the job, the run it came from, its steps and the pruned manifest."""

    path: str
    account_id: int | None
    job_id: int
    job_name: str | None
    source_run_id: int | None
    source_run_finished_at: str | None
    steps: tuple[StoredStep, ...]
    document: Mapping[str, Any]

    @cached_property
    def manifest(self) -> Manifest:
        """The pruned manifest as the rerun parser reads it (for exact selections)."""
        return parse_manifest(self.document, f"{self.path} (manifest)")

    @cached_property
    def executed(self) -> frozenset[str]:
        """Every unique_id the job's dbt steps executed: the job's selection."""
        return frozenset(uid for step in self.steps for uid in step.executed)

    @cached_property
    def last_step_of(self) -> Mapping[str, StoredStep]:
        """For each executed unique_id, the last step that executed it (whose flags a rerun repeats)."""
        return {uid: step for step in self.steps for uid in step.executed}


# --- building a file (make dbt-manifest) ----------------------------------------------------------
def build_stored_document(
    *,
    job: Mapping[str, Any],
    run: Mapping[str, Any],
    manifest: Mapping[str, Any],
    step_run_results: Sequence[tuple[int, str, Mapping[str, Any]]],
    account_id: int | None,
) -> dict[str, Any]:
    """The stored file's JSON from a successful run: its job, its dbt steps' run_results, the manifest.

    ``step_run_results`` holds ``(step index, step name, run_results.json)`` for each dbt step that
    executed nodes. Pure: ``include.dbt_cloud.manifest_refresh`` does the reading.
    """
    parse_manifest(manifest, "manifest.json")  # the same validation the rerun parser applies
    steps = []
    for index, name, document in step_run_results:
        source = f"run_results.json of step {index} ({name})"
        results = parse_run_results(document, source)
        if results.command not in NODE_COMMANDS:
            continue
        select = results.args.get("select")
        steps.append(
            {
                "index": index,
                "command": _step_command(name),
                "which": results.command,
                "select": list(select) if isinstance(select, list | tuple) and select else None,
                "replayed_flags": replayed_flags(results.args),
                # Sorted: dbt's order varies with its threads, and the file must not change with it.
                "executed": sorted({result.unique_id for result in results.results}),
            }
        )
    if not steps:
        raise ValueError(
            f"run {run.get('id')} of job {job.get('id')} has no dbt step that built or tested nodes "
            "(its steps: " + ", ".join(name for _, name, _ in step_run_results) + ")"
        )
    metadata = manifest.get("metadata") or {}
    return {
        "format": FORMAT,
        "generated_by": f"{REFRESH_HINT} (python -m include.dbt_cloud.manifest_refresh)",
        "job": {
            "account_id": account_id,
            "id": job.get("id"),
            "name": job.get("name"),
            "execute_steps": list(job.get("execute_steps") or []),
        },
        "source_run": {
            "id": run.get("id"),
            "finished_at": run.get("finished_at"),
            "dbt_version": metadata.get("dbt_version"),
        },
        "steps": steps,
        "manifest": prune_manifest(manifest),
    }


def prune_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What the graph and the exact selection need of a manifest.json, in manifest.json's own shape
    (so ``include.rerun_parser.parse_manifest`` reads it): every selectable node (all packages, all
    of the job's or not: a selector is only proven exact against every node it could also pick) and
    the sources, each with a few fields, and the non-empty entries of ``child_map``."""
    metadata = manifest.get("metadata") or {}
    pruned: dict[str, Any] = {
        "metadata": {
            key: metadata[key]
            for key in ("dbt_schema_version", "dbt_version", "project_name", "adapter_type")
            if key in metadata
        }
    }
    for section in (*SELECTABLE_SECTIONS, "sources"):
        entries = manifest.get(section) or {}
        pruned[section] = {
            uid: {key: node[key] for key in _KEPT_FIELDS if _kept(key, node.get(key))}
            for uid, node in sorted(entries.items())
            if isinstance(node, dict)
        }
    child_map = manifest.get("child_map") or {}
    pruned["child_map"] = {uid: sorted(children) for uid, children in sorted(child_map.items()) if children}
    return pruned


def _kept(key: str, value: Any) -> bool:
    """Drop empty fields, but keep an empty ``tags`` list: "no tags" is what proves a ``tag:``
    selection does not pick the node (``include.rerun_parser.compact``)."""
    return value is not None and (key == "tags" or value not in ([], ""))


def _step_command(name: str) -> str:
    match = DBT_STEP.match(name)
    return match["command"] if match else name


def is_node_step(name: str) -> bool:
    """Whether a run step (by its name, ``Invoke dbt with `dbt build` ``) executes nodes: dbt Cloud's
    own steps (clone, profile, ``dbt deps``) and ``dbt docs generate`` do not."""
    match = DBT_STEP.match(name)
    if not match:
        return False
    words = [word for word in match["command"].split() if not word.startswith("-")]
    return len(words) >= 2 and words[0] == "dbt" and words[1] in _NODE_SUBCOMMANDS


def same_graph(document: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two stored documents hold the same job, steps and manifest (the run they were read
    from aside): a refresh that changes nothing else leaves the file as it is."""
    return {k: v for k, v in document.items() if k != "source_run"} == {
        k: v for k, v in other.items() if k != "source_run"
    }


def write_stored_document(document: Mapping[str, Any], path: str | Path) -> Path:
    """Write the file (sorted, one key per line: a refresh shows as a readable diff)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=1, sort_keys=True) + "\n"
    temporary = target.with_suffix(target.suffix + ".tmp")
    temporary.write_text(text)
    temporary.replace(target)  # atomic: a DAG parse never reads half a file
    return target


# --- reading a file (DAG parse, launcher) ----------------------------------------------------------
_CACHE: dict[str, tuple[tuple[int, int], StoredJobManifest]] = {}
_CACHE_LOCK = threading.Lock()


def load_job_manifest(path: str | Path) -> StoredJobManifest:
    """Read and validate a stored file; cached per process until the file changes (mtime, size)."""
    key = str(Path(path).resolve())
    try:
        stat = Path(key).stat()
    except FileNotFoundError:
        raise JobManifestError(path, "no such file") from None
    except OSError as error:
        raise JobManifestError(path, f"cannot be read ({error.strerror})") from None
    signature = (stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
    stored = parse_stored_document(_read(path), str(path))
    with _CACHE_LOCK:
        _CACHE[key] = (signature, stored)
    return stored


def _read(path: str | Path) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise JobManifestError(path, f"cannot be read ({error.strerror})") from None
    try:
        with _collector_paused():  # thousands of small dicts: the cyclic GC would rescan them repeatedly
            return json.loads(text)
    except json.JSONDecodeError as error:
        raise JobManifestError(path, f"is not valid JSON ({error.msg} at line {error.lineno})") from None


def parse_stored_document(document: Any, source: str) -> StoredJobManifest:
    """Validate a decoded stored file; every problem names the field."""
    if not isinstance(document, dict):
        raise JobManifestError(source, "is not a stored job manifest (top level is not an object)")
    if document.get("format") != FORMAT:
        found = document.get("format")
        raise JobManifestError(
            source, f"has format {found!r}, this project reads {FORMAT!r}" if found else "has no 'format'"
        )
    job = document.get("job")
    if not isinstance(job, dict) or not _is_int(job.get("id")):
        raise JobManifestError(source, "has no 'job.id'")
    if job.get("account_id") is not None and not _is_int(job.get("account_id")):
        raise JobManifestError(source, "has a 'job.account_id' that is not a number")
    raw_steps = document.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise JobManifestError(source, "has no 'steps' (the dbt steps of the run it was made from)")
    steps = tuple(_stored_step(step, position, source) for position, step in enumerate(raw_steps))
    manifest = document.get("manifest")
    if not isinstance(manifest, dict):
        raise JobManifestError(source, "has no 'manifest'")
    stored = StoredJobManifest(
        path=source,
        account_id=job.get("account_id"),
        job_id=job["id"],
        job_name=job.get("name") if isinstance(job.get("name"), str) else None,
        source_run_id=(document.get("source_run") or {}).get("id"),
        source_run_finished_at=(document.get("source_run") or {}).get("finished_at"),
        steps=steps,
        document=manifest,
    )
    try:
        nodes = stored.manifest.nodes
    except RerunParserError as error:
        raise JobManifestError(source, f"holds an invalid manifest ({error})") from None
    sources = manifest.get("sources") or {}
    unknown = sorted(uid for uid in stored.executed if uid not in nodes and uid not in sources)
    if unknown:
        raise JobManifestError(
            source, f"its steps executed {len(unknown)} node(s) its manifest lacks (e.g. {unknown[0]})"
        )
    return stored


def _stored_step(step: Any, position: int, source: str) -> StoredStep:
    where = f"steps[{position}]"
    if not isinstance(step, dict):
        raise JobManifestError(source, f"{where} is not an object")
    executed = step.get("executed")
    if not isinstance(executed, list) or not all(isinstance(uid, str) for uid in executed):
        raise JobManifestError(source, f"{where}.executed is not a list of unique_ids")
    select = step.get("select")
    flags = step.get("replayed_flags") or []
    if not _is_int(step.get("index")) or not isinstance(step.get("which"), str):
        raise JobManifestError(source, f"{where} lacks its 'index' or 'which'")
    return StoredStep(
        index=step["index"],
        command=str(step.get("command") or f"dbt {step['which']}"),
        which=step["which"],
        select=tuple(select) if isinstance(select, list) and select else None,
        replayed_flags=tuple(str(flag) for flag in flags),
        executed=tuple(executed),
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
