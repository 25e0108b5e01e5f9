"""Read dbt's run_results.json and manifest.json into the few typed fields a rerun needs.

Only what the rerun depends on is kept (statuses, the previous command's args, each node's fqn), so a
50,000-node manifest shrinks to small records right after parsing. Anything malformed raises an
``ArtifactError`` naming the file, instead of a KeyError deep inside the selector logic.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from include.rerun_parser.errors import ArtifactError

RUN_RESULTS_SCHEMA_MARK = "/run-results/"
MANIFEST_SCHEMA_MARK = "/manifest/"
#: Manifest sections whose entries the fqn selector method searches (sources are not among them).
SELECTABLE_SECTIONS = (
    "nodes",
    "unit_tests",
    "exposures",
    "metrics",
    "semantic_models",
    "saved_queries",
    "functions",
)


@dataclass(frozen=True, slots=True)
class NodeResult:
    """One entry of run_results.json ``results``: which node, and how it ended."""

    unique_id: str
    status: str


@dataclass(frozen=True)
class RunResults:
    """A step's run_results.json: the command that ran (``args``) and each node's status."""

    source: str
    command: str
    args: Mapping[str, Any]
    results: tuple[NodeResult, ...]
    invocation_id: str | None


@dataclass(frozen=True, slots=True)
class ManifestNode:
    """What dbt's selector needs to know about a node to decide whether a selector picks it."""

    unique_id: str
    fqn: tuple[str, ...]
    resource_type: str
    package_name: str
    is_versioned: bool
    #: The node's ``tags`` (what ``tag:`` selects on); None when the manifest does not list them.
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Manifest:
    """The selectable nodes of a manifest.json, by unique_id, and its graph when it has one.

    ``children`` is the manifest's ``child_map`` (unique_id -> the unique_ids depending on it), the same
    edges dbt's graph operators walk; None when the manifest has no ``child_map`` (e.g. a pruned copy),
    in which case no graph-operator selector can be proven exact.
    """

    source: str
    nodes: Mapping[str, ManifestNode]
    invocation_id: str | None
    children: Mapping[str, Sequence[str]] | None = None


def load_run_results(path: str | Path) -> RunResults:
    """Read and validate a run_results.json file."""
    with _collector_paused():
        return parse_run_results(_read_json(path, object_hook=_shrink_result_entry), str(path))


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest.json file."""
    with _collector_paused():
        return parse_manifest(_read_json(path, object_hook=_shrink_manifest_entry), str(path))


def parse_run_results(document: Any, source: str = "run_results.json") -> RunResults:
    """Validate an already-decoded run_results document; ``source`` names it in errors."""
    metadata = _require_artifact(document, source, RUN_RESULTS_SCHEMA_MARK, "run_results.json")
    args = document.get("args")
    if not isinstance(args, dict):
        raise ArtifactError(source, "has no 'args' object, so the command that ran is unknown")
    command = args.get("which")
    if not isinstance(command, str) or not command:
        raise ArtifactError(source, "has no 'args.which': cannot tell which dbt command ran")
    raw_results = document.get("results")
    if not isinstance(raw_results, list):
        raise ArtifactError(source, "has no 'results' list")
    results = []
    for index, entry in enumerate(raw_results):
        if not isinstance(entry, dict):
            raise ArtifactError(source, f"results[{index}] is not an object")
        unique_id, status = entry.get("unique_id"), entry.get("status")
        if not isinstance(unique_id, str) or not isinstance(status, str):
            raise ArtifactError(source, f"results[{index}] lacks a string 'unique_id' or 'status'")
        results.append(NodeResult(unique_id, status))
    return RunResults(source, command, MappingProxyType(args), tuple(results), metadata.get("invocation_id"))


def parse_manifest(document: Any, source: str = "manifest.json") -> Manifest:
    """Validate an already-decoded manifest document and keep each selectable node's fqn."""
    metadata = _require_artifact(document, source, MANIFEST_SCHEMA_MARK, "manifest.json")
    if not isinstance(document.get("nodes"), dict):
        raise ArtifactError(source, "has no 'nodes' object")
    nodes: dict[str, ManifestNode] = {}
    for section in SELECTABLE_SECTIONS:
        entries = document.get(section) or {}
        if not isinstance(entries, dict):
            raise ArtifactError(source, f"'{section}' is not an object")
        for unique_id, node in entries.items():
            nodes[unique_id] = _manifest_node(unique_id, node, source)
    child_map = document.get("child_map")
    children = MappingProxyType(child_map) if isinstance(child_map, dict) else None
    return Manifest(source, MappingProxyType(nodes), metadata.get("invocation_id"), children)


#: The node fields ``_manifest_node`` reads; everything else (SQL, columns, docs, config) is dropped.
_KEPT_NODE_FIELDS = ("unique_id", "fqn", "resource_type", "package_name", "version", "tags")


def _shrink_result_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """``json`` object hook: keep only the unique_id and status of each result (not its SQL, timings)."""
    if "unique_id" in entry and "status" in entry:
        return {"unique_id": entry["unique_id"], "status": entry["status"]}
    return entry


def _shrink_manifest_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """``json`` object hook: shrink every node-like object (it has a unique_id) as soon as it is decoded.

    The decoder builds each object bottom-up, so a node's SQL, columns and config are freed right after
    the node is decoded instead of living until the whole 50 MB document is parsed.
    """
    if "unique_id" not in entry:
        return entry
    return {key: entry[key] for key in _KEPT_NODE_FIELDS if key in entry}


def _manifest_node(unique_id: str, node: Any, source: str) -> ManifestNode:
    if not isinstance(node, dict):
        raise ArtifactError(source, f"node {unique_id} is not an object")
    fqn = node.get("fqn")
    if not isinstance(fqn, list) or not fqn or not all(isinstance(part, str) for part in fqn):
        raise ArtifactError(source, f"node {unique_id} has no valid 'fqn' list")
    resource_type = node.get("resource_type") or unique_id.split(".", 1)[0]
    package_name = node.get("package_name")
    if not isinstance(package_name, str):
        raise ArtifactError(source, f"node {unique_id} has no 'package_name'")
    tags = node.get("tags")
    tags = tuple(tags) if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags) else None
    return ManifestNode(
        unique_id, tuple(fqn), resource_type, package_name, node.get("version") is not None, tags
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while decoding: the decoded objects form no cycles, and the
    collector would otherwise rescan the growing document every few hundred allocations (~40% of the
    load time of a 50,000-node manifest). Reference counting still frees every dropped object."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_json(path: str | Path, object_hook: Any = None) -> Any:
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ArtifactError(source, "file not found") from None
    except OSError as error:
        raise ArtifactError(source, f"cannot be read ({error.strerror})") from None
    if not data.strip():
        raise ArtifactError(source, "is empty")
    truncated = not data.rstrip().endswith(b"}")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ArtifactError(source, "is not UTF-8 text") from None
    del data  # keep one copy of the document in memory, not two
    try:
        return json.loads(text, object_hook=object_hook)
    except json.JSONDecodeError as error:
        hint = " (truncated?)" if truncated else ""
        raise ArtifactError(source, f"is not valid JSON{hint}: {error.msg} at line {error.lineno}") from None


def _require_artifact(document: Any, source: str, schema_mark: str, expected: str) -> Mapping[str, Any]:
    if not isinstance(document, dict):
        raise ArtifactError(source, f"is not a dbt {expected} (top level is not an object)")
    metadata = document.get("metadata")
    schema = metadata.get("dbt_schema_version") if isinstance(metadata, dict) else None
    if not isinstance(schema, str):
        raise ArtifactError(source, f"is not a dbt {expected} (no metadata.dbt_schema_version)")
    if schema_mark not in schema:
        raise ArtifactError(source, f"is not a dbt {expected}: its schema is {schema}")
    return metadata
