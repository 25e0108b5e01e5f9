"""Shorter selectors for the same nodes: graph operators, with exclusions, proven against the manifest.

Each node of the retry set whose parent is not in the set is a *root*. A root with children is
selected as ``fqn:<its fqn>+``; the set that selects is computed here the way dbt 1.11 computes it:
every node the fqn selector matches (a prefix match over the whole manifest, package dropped or not,
unit tests on a model included), plus all their descendants along the manifest's ``child_map`` (the
depends-on edges; dbt's ``+`` ignores its ``parent_test`` ordering edges), filtered to the resource
types the rerun command executes. Under ``--indirect-selection empty`` no test joins indirectly, and
``--exclude`` subtracts plain sets. Whatever that selects beyond the retry set is excluded, one proven
exact selector per node. The result is used only when the selected set equals the retry set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from include.rerun_parser.artifacts import Manifest, ManifestNode
from include.rerun_parser.errors import AmbiguousSelectionError

#: Resource types a command selects by default (dbt 1.11 task ``resource_types``); the rerun command
#: does not replay ``--resource-type``, so these apply. Commands absent here get no compact form.
SELECTED_RESOURCE_TYPES: dict[str, frozenset[str]] = {
    "build": frozenset(
        {"model", "snapshot", "seed", "test", "unit_test", "saved_query", "exposure", "function"}
    ),
    "run": frozenset({"model"}),
    "test": frozenset({"test", "unit_test"}),
    "seed": frozenset({"seed"}),
    "snapshot": frozenset({"snapshot"}),
}


@dataclass(frozen=True)
class CompactSelection:
    """``--select`` and ``--exclude`` values that together select exactly the retry set."""

    select: tuple[str, ...]
    exclude: tuple[str, ...]

    def argv(self) -> list[str]:
        return ["--select", *self.select, *(["--exclude", *self.exclude] if self.exclude else [])]


def compact_selection(
    unique_ids: Sequence[str],
    manifest: Manifest,
    command: str,
    node_selectors: Mapping[str, str],
    collisions: Mapping[str, Sequence[ManifestNode]],
    exact_selectors: Callable[[Sequence[str]], Sequence[str]],
    original_select: object = None,
) -> CompactSelection | None:
    """The shortest graph-operator selection of ``unique_ids`` proven exact, or None when there is none.

    ``node_selectors`` maps each retried unique_id to its proven single-node selector, ``collisions``
    to the other nodes (any type) its ``fqn:`` selector matches; ``exact_selectors(unique_ids)``
    returns proven single-node selectors for other nodes (the exclusions). ``original_select`` is the
    failed run's ``args.select``: when it is a single ``tag:`` selector, the descendants are also
    tried intersected with it (``fqn:<root>+,tag:<tag>``).
    """
    children = manifest.children
    types = SELECTED_RESOURCE_TYPES.get(command)
    if children is None or types is None:
        return None
    retry = set(unique_ids)
    below_another = {child for uid in retry for child in children.get(uid, ()) if child in retry}
    roots = [uid for uid in unique_ids if uid not in below_another]
    expanded = [manifest.nodes[uid] for uid in roots if children.get(uid)]
    if not expanded:
        return None
    matched = {node.unique_id for node in expanded}
    for node in expanded:
        matched.update(other.unique_id for other in collisions.get(node.unique_id, ()))
    nodes = manifest.nodes
    reached = [uid for uid in _with_descendants(matched, children) if uid in nodes]
    reached = [uid for uid in reached if nodes[uid].resource_type in types]
    candidates = [_candidate(roots, reached, "", retry, manifest, node_selectors, exact_selectors)]
    tag = _single_tag(original_select)
    if tag is not None and all(nodes[uid].tags is not None for uid in reached):
        tagged = [uid for uid in reached if any(fnmatchcase(node_tag, tag) for node_tag in nodes[uid].tags)]
        candidates.append(
            _candidate(roots, tagged, f",tag:{tag}", retry, manifest, node_selectors, exact_selectors)
        )
    found = [candidate for candidate in candidates if candidate is not None]
    return min(found, key=lambda candidate: len(" ".join(candidate.argv()))) if found else None


def _candidate(
    roots: Sequence[str],
    reached: Sequence[str],
    suffix: str,
    retry: set[str],
    manifest: Manifest,
    node_selectors: Mapping[str, str],
    exact_selectors: Callable[[Sequence[str]], Sequence[str]],
) -> CompactSelection | None:
    """``fqn:<root>+<suffix>`` for each root with children, given the set those select (``reached``).

    Retried nodes they miss are added one selector each; nodes they select beyond the retry set are
    excluded one (proven) selector each. So the result selects exactly ``retry``.
    """
    children = manifest.children or {}
    selected = set(reached)
    select = [
        "fqn:" + ".".join(manifest.nodes[uid].fqn) + "+" + suffix
        if children.get(uid)
        else node_selectors[uid]
        for uid in roots
    ]
    selected.update(uid for uid in roots if not children.get(uid))
    select += [node_selectors[uid] for uid in retry - selected]
    extra = sorted(uid for uid in selected if uid not in retry)
    try:
        exclude = tuple(exact_selectors(extra)) if extra else ()
    except AmbiguousSelectionError:
        return None
    return CompactSelection(tuple(select), exclude)


def _single_tag(original_select: object) -> str | None:
    """The tag of an original ``--select tag:<name>`` (one plain term), else None."""
    if not isinstance(original_select, (list, tuple)) or len(original_select) != 1:
        return None
    term = original_select[0]
    if not isinstance(term, str) or not re.fullmatch(r"tag:[A-Za-z0-9_\-]+", term):
        return None
    return term[len("tag:") :]


def _with_descendants(start: set[str], children: Mapping[str, Sequence[str]]) -> set[str]:
    reached = set(start)
    frontier = list(start)
    while frontier:
        uid = frontier.pop()
        for child in children.get(uid, ()):
            if child not in reached:
                reached.add(child)
                frontier.append(child)
    return reached
