"""A dbt Cloud job as a graph of Airflow tasks: which nodes, wired how, with which tests folded in.

Built from the job's stored manifest (``include.dbt_cloud.job_manifest``), never from the network, so
a DAG parse pays only for reading a JSON file (cached per process) and this pure computation.

The rules, chosen so that Airflow's own states match what dbt did in ``dbt build``:

- **One task per model, seed and snapshot the job executed** (its selection, as its last successful
  run executed it). Nodes outside the job's selection get no task.
- **Tests fold into a node's task** (Cosmos' default): the task ends failed when its node or one of
  its tests failed, so the nodes below it become ``upstream_failed`` in Airflow exactly where
  ``dbt build`` skipped them. A test with one built parent folds into it. A test with several
  (``relationships``, singular tests reading two models) folds into ONE of them, deterministically:
  the parent that is downstream of all its other parents when there is one (``dbt build`` runs the
  test after it, and skips what is below it, so Airflow's and dbt's states agree exactly); otherwise
  the node dbt itself attaches the test to (``attached_node``: the model whose YAML declares it);
  otherwise the parent dbt builds last in a topological order (ties broken by unique_id). In the last
  two cases Airflow marks everything below that parent ``upstream_failed`` while dbt skipped only
  what is below *all* the test's parents: a little more than dbt, never less.
- **Source tests**: a test whose parents are only sources folds into one task per source
  (``raw.orders``), upstream of the models that read the source: ``dbt build`` skips those models
  when a source test fails (checked with dbt 1.11 and the demo's switch ``DBT_FAIL_TEST``). A test
  with no parent that has a task (it was selected on its own, e.g. by a tag, while its model was
  not) gets a task of its own.
- **Edges** follow the manifest's dependencies between tasks, reconnected through nodes without a
  task (ephemeral or unselected models), as ``dbt build`` orders a partial selection.
- **Task ids** are readable, stable and unique: the node's name; a versioned model adds its version
  (``dim_customers_v2``), a name two packages share adds the package (``jaffle_utils__stg_payments``),
  a source is ``<source>__<table>``, only as far as needed to be unique. The grid shows dbt's label
  (``task_display_name``): ``jaffle_utils.stg_payments``, ``dim_customers.v2``, ``source raw.orders``.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from include.dbt_cloud.job_manifest import (
    BUILT_TYPES,
    TEST_TYPES,
    JobManifestError,
    StoredJobManifest,
    load_job_manifest,
)
from include.rerun_parser import DbtCommand, ExactSelection, select_exactly

#: Longest task id part a node gets (Airflow allows 250 with the group prefix).
MAX_TASK_ID = 200
_UNSAFE = re.compile(r"[^\w-]+")


@dataclass(frozen=True)
class GraphNode:
    """One Airflow task of the group: a model, seed, snapshot, a source's tests, or a lone test."""

    unique_id: str
    #: model, seed, snapshot, source, or test/unit_test for a test that has a task of its own.
    resource_type: str
    #: The task id within the group (unique, stable) and what the grid shows.
    task_id: str
    label: str
    #: The unique_ids of the nodes whose tasks are directly upstream.
    parents: tuple[str, ...]
    #: The tests folded into this task (unique_ids), in the order dbt ran them.
    tests: tuple[str, ...]

    @property
    def is_built(self) -> bool:
        """Whether dbt executes the node itself (a source only has its tests)."""
        return self.resource_type != "source"

    @property
    def selected_ids(self) -> tuple[str, ...]:
        """What a rerun of this task selects: the node (unless a source) and its folded tests."""
        return ((self.unique_id,) if self.is_built else ()) + self.tests


@dataclass(frozen=True)
class JobGraph:
    """The tasks of a job's group, in a topological order, and the stored manifest they came from."""

    stored: StoredJobManifest
    nodes: tuple[GraphNode, ...]

    @cached_property
    def by_task_id(self) -> Mapping[str, GraphNode]:
        return {node.task_id: node for node in self.nodes}

    @cached_property
    def by_unique_id(self) -> Mapping[str, GraphNode]:
        return {node.unique_id: node for node in self.nodes}

    @cached_property
    def position(self) -> Mapping[GraphNode, int]:
        """Each task's place in the topological order."""
        return {node: index for index, node in enumerate(self.nodes)}

    @cached_property
    def owner_of(self) -> Mapping[str, GraphNode]:
        """The task each folded test belongs to (by the test's unique_id)."""
        return {test: node for node in self.nodes for test in node.tests}

    def node(self, name_or_id: str) -> GraphNode:
        """A task's node by task id, unique_id, dbt name or label (``dim_customers.v2``)."""
        for index in (self.by_task_id, self.by_unique_id):
            if name_or_id in index:
                return index[name_or_id]
        found = [node for node in self.nodes if name_or_id in (node.label, _name(node.unique_id))]
        if len(found) == 1:
            return found[0]
        if found:
            raise KeyError(
                f"{name_or_id!r} names {len(found)} nodes of job {self.stored.job_id} "
                f"({', '.join(node.task_id for node in found)}): use the task id"
            )
        raise KeyError(
            f"{name_or_id!r} is not a node of job {self.stored.job_id} in {self.stored.path}; its "
            f"tasks: {', '.join(node.task_id for node in self.nodes[:20])}"
            + (" ..." if len(self.nodes) > 20 else "")
        )

    def rerun_command(self, unique_ids: Iterable[str]) -> RerunCommand:
        """One ``dbt build`` that runs exactly these tasks' nodes and folded tests, proven against
        the stored manifest (``include.rerun_parser.select_exactly``), with the flags the job's step
        that last ran them used (``--vars``, ``--full-refresh``, ``--target``...)."""
        # In the graph's order, whatever the caller's: the same set always gives the same command.
        tasks = sorted({self.by_unique_id[uid] for uid in unique_ids}, key=self.position.__getitem__)
        if not tasks:
            raise ValueError("rerun_command needs at least one node")
        selected = tuple(dict.fromkeys(uid for task in tasks for uid in task.selected_ids))
        steps = {
            step.index: step for uid in selected if (step := self.stored.last_step_of.get(uid)) is not None
        }
        step = steps[max(steps)] if steps else self.stored.steps[-1]
        flag_sets = {step.replayed_flags for step in steps.values()}
        selection = select_exactly(selected, self.stored.manifest, "build", original_select=step.select)
        command = DbtCommand(
            ("dbt", "build", *selection.argv, "--indirect-selection", "empty", *step.replayed_flags)
        )
        return RerunCommand(command, selected, selection, step.index, len(flag_sets) > 1)


@dataclass(frozen=True)
class RerunCommand:
    """The command a launcher triggers for a subset of the tasks, and what it proves."""

    command: DbtCommand
    #: Every unique_id it selects (nodes and folded tests), and nothing else.
    unique_ids: tuple[str, ...]
    selection: ExactSelection
    #: The job step whose flags it repeats; ``mixed_flags``: the tasks came from steps with other flags.
    flags_from_step: int
    mixed_flags: bool


# --- building ---------------------------------------------------------------------------------------
_GRAPHS: dict[int, tuple[StoredJobManifest, JobGraph]] = {}
_GRAPHS_LOCK = threading.Lock()


def load_job_graph(path: str | Path, reserved_task_ids: Iterable[str] = ()) -> JobGraph:
    """The job graph of a stored manifest file, built once per file version per process."""
    stored = load_job_manifest(path)
    reserved = frozenset(reserved_task_ids)
    key = hash((id(stored), reserved))
    with _GRAPHS_LOCK:
        cached = _GRAPHS.get(key)
        if cached is not None and cached[0] is stored:
            return cached[1]
    graph = build_job_graph(stored, reserved)
    with _GRAPHS_LOCK:
        _GRAPHS[key] = (stored, graph)
    return graph


def build_job_graph(stored: StoredJobManifest, reserved_task_ids: Iterable[str] = ()) -> JobGraph:
    """Apply the module's rules to a stored manifest."""
    document = stored.document
    types = _resource_types(document)
    parents_of = _parents(document.get("child_map") or {})
    executed = [uid for step in stored.steps for uid in step.executed]
    executed = list(dict.fromkeys(executed))
    built = [uid for uid in executed if types.get(uid) in BUILT_TYPES]
    tests = [uid for uid in executed if types.get(uid) in TEST_TYPES]
    if not built and not tests:
        raise JobManifestError(stored.path, "its job executed no model, seed, snapshot or test")

    rendered = set(built)
    # Sources whose tests have no built parent get a task of their own (upstream of their models).
    for test in tests:
        test_parents = parents_of.get(test, ())
        if not any(parent in rendered for parent in test_parents):
            rendered.update(parent for parent in test_parents if types.get(parent) == "source")
    lone_tests = [
        test for test in tests if not any(parent in rendered for parent in parents_of.get(test, ()))
    ]
    rendered.update(lone_tests)

    edges = _rendered_edges(rendered, parents_of, types)
    order = _topological_order(rendered, edges)
    position = {uid: index for index, uid in enumerate(order)}
    ancestors = _ancestor_bits(order, edges, position)
    folded: dict[str, list[str]] = defaultdict(list)
    for test in tests:
        if test in rendered:
            continue
        owner = _owner(test, parents_of.get(test, ()), rendered, document, position, ancestors)
        folded[owner].append(test)

    names = _task_names(order, document, types, frozenset(reserved_task_ids))
    nodes = tuple(
        GraphNode(
            unique_id=uid,
            resource_type=types.get(uid) or uid.split(".", 1)[0],
            task_id=names[uid][0],
            label=names[uid][1],
            parents=tuple(sorted(edges.get(uid, ()), key=position.__getitem__)),
            tests=tuple(folded.get(uid, ())),
        )
        for uid in order
    )
    return JobGraph(stored=stored, nodes=nodes)


def _resource_types(document: Mapping[str, Any]) -> dict[str, str]:
    types: dict[str, str] = {}
    for section in ("nodes", "unit_tests", "sources", "exposures", "metrics", "semantic_models",
                    "saved_queries", "functions"):  # fmt: skip
        for uid, node in (document.get(section) or {}).items():
            types[uid] = node.get("resource_type") or uid.split(".", 1)[0]
    return types


def _parents(child_map: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    parents: dict[str, list[str]] = defaultdict(list)
    for parent, children in child_map.items():
        for child in children:
            parents[child].append(parent)
    return parents


def _rendered_edges(
    rendered: set[str], parents_of: Mapping[str, Sequence[str]], types: Mapping[str, str]
) -> dict[str, set[str]]:
    """For each rendered node, the nearest rendered ancestors, reached through nodes without a task
    (ephemeral or unselected models); tests are never on a dependency path."""
    frontier_cache: dict[str, frozenset[str]] = {}

    def frontier(uid: str) -> frozenset[str]:
        """The rendered nodes reached going up from ``uid``'s parents, stopping at rendered ones."""
        if uid in frontier_cache:
            return frontier_cache[uid]
        found: set[str] = set()
        stack = list(parents_of.get(uid, ()))
        seen: set[str] = set()
        while stack:
            parent = stack.pop()
            if parent in seen or types.get(parent) in TEST_TYPES:
                continue
            seen.add(parent)
            if parent in rendered:
                found.add(parent)
            elif parent in frontier_cache:
                found |= frontier_cache[parent]
            else:
                stack.extend(parents_of.get(parent, ()))
        frontier_cache[uid] = frozenset(found)
        return frontier_cache[uid]

    return {uid: set(frontier(uid)) for uid in rendered if types.get(uid) not in TEST_TYPES}


def _topological_order(rendered: set[str], edges: Mapping[str, set[str]]) -> list[str]:
    """Kahn's algorithm, smallest unique_id first among the ready ones: the same order every parse."""
    children: dict[str, list[str]] = defaultdict(list)
    waiting = {uid: len(edges.get(uid, ())) for uid in rendered}
    for uid in rendered:
        for parent in edges.get(uid, ()):
            children[parent].append(uid)
    ready = [uid for uid, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        uid = heapq.heappop(ready)
        order.append(uid)
        for child in children[uid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    if len(order) != len(rendered):  # dbt refuses cycles; a hand-edited file could hold one
        raise ValueError(f"the job's graph has a cycle among {sorted(set(rendered) - set(order))[:5]}")
    return order


def _ancestor_bits(
    order: Sequence[str], edges: Mapping[str, set[str]], position: Mapping[str, int]
) -> dict[str, int]:
    """Each rendered node's ancestors as a bit set over topological positions (one int per node)."""
    bits: dict[str, int] = {}
    for uid in order:
        mask = 0
        for parent in edges.get(uid, ()):
            mask |= bits[parent] | (1 << position[parent])
        bits[uid] = mask
    return bits


def _owner(
    test: str,
    parents: Sequence[str],
    rendered: set[str],
    document: Mapping[str, Any],
    position: Mapping[str, int],
    ancestors: Mapping[str, int],
) -> str:
    """The task a test folds into (see the module's rules)."""
    candidates = sorted({parent for parent in parents if parent in rendered}, key=position.__getitem__)
    if len(candidates) == 1:
        return candidates[0]
    for candidate in candidates:
        others = [other for other in candidates if other != candidate]
        if all(ancestors[candidate] >> position[other] & 1 for other in others):
            return candidate  # downstream of every other parent: dbt runs the test after it
    section = "unit_tests" if test.startswith("unit_test.") else "nodes"
    attached = ((document.get(section) or {}).get(test) or {}).get("attached_node")
    if attached in candidates:
        return attached
    return candidates[-1]


def _task_names(
    order: Sequence[str], document: Mapping[str, Any], types: Mapping[str, str], reserved: frozenset[str]
) -> dict[str, tuple[str, str]]:
    """``(task_id, label)`` per node: the shortest readable form that is unique (see the module)."""
    info = {uid: _node_info(uid, document, types) for uid in order}
    levels = dict.fromkeys(order, 0)
    for _ in range(6):
        names = {uid: _name_at(info[uid], levels[uid]) for uid in order}
        clashing: dict[str, list[str]] = defaultdict(list)
        for uid, (task_id, _) in names.items():
            clashing[task_id.lower()].append(uid)
        clashes = [uid for task_id, uids in clashing.items() for uid in uids
                   if len(uids) > 1 or task_id in reserved]  # fmt: skip
        if not clashes:
            return names
        for uid in clashes:
            levels[uid] += 1
    # Level 4 adds a digest of the unique_id, so six rounds always end above.
    raise ValueError(f"could not name the tasks of {len(order)} nodes uniquely")


def _node_info(uid: str, document: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, Any]:
    resource_type = types.get(uid) or uid.split(".", 1)[0]
    section = {"source": "sources", "unit_test": "unit_tests"}.get(resource_type, "nodes")
    node = (document.get(section) or {}).get(uid) or {}
    name = node.get("name") or _name(uid)
    if resource_type == "source":
        name = f"{node.get('source_name') or uid.split('.')[-2]}.{name}"
    return {
        "uid": uid,
        "type": resource_type,
        "name": name,
        "package": node.get("package_name") or uid.split(".")[1],
        "version": node.get("version"),
    }


def _name_at(info: Mapping[str, Any], level: int) -> tuple[str, str]:
    """The task id and label of a node at a naming level: 0 its name, 1 + its version, 2 + its
    package, 3 + its resource type, 4 + a digest of its unique_id (always unique)."""
    kind, name, version, package = info["type"], info["name"], info["version"], info["package"]
    label, task_id = name, name.replace(".", "__")  # a source's name is <source>.<table>
    if version is not None and level >= 1:
        label, task_id = f"{label}.v{version}", f"{task_id}_v{version}"
    if level >= 2:
        label, task_id = f"{package}.{label}", f"{package}__{task_id}"
    if level >= 3:
        label, task_id = f"{kind} {label}", f"{kind}__{task_id}"
    elif kind == "source":
        label = f"source {label}"
    task_id = _safe(task_id)
    if level >= 4 or len(task_id) > MAX_TASK_ID:
        digest = hashlib.sha256(info["uid"].encode()).hexdigest()[:8]
        task_id = f"{task_id[: MAX_TASK_ID - 10]}__{digest}"
    return task_id, label


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or "node"


def _name(uid: str) -> str:
    parts = uid.split(".")
    if parts[0] == "test" and len(parts) > 3:
        return parts[2]
    if parts[0] == "model" and len(parts) == 4 and parts[3].startswith("v"):
        return parts[2]
    return parts[-1]
