"""Selectors that pick exactly the given nodes, no more: the heart of "rerun exactly what failed".

dbt's fqn selector is looser than it looks (dbt 1.11 ``graph/selector_methods.py``,
``is_selected_node``): a bare name matches that name in every package and every version, a dotted
selector matches every node whose fqn *starts with* it (so ``jaffle_shop.staging.stg_payments`` also
picks the unit tests defined on that model, whose fqn extends it), the match is tried with the package
dropped too, and a versioned model matches ``<name>_<vN>`` in any package. So each node gets its full
fqn (``fqn:pkg.folder.name[.vN]``), and we emulate dbt's matching over the whole manifest to find any
other node the selector would also pick; only then is it narrowed by intersection
(``,resource_type:…`` then ``,package:…``). Without a manifest, package- and type-qualified names are
the best available and are flagged as not proven exact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from include.rerun_parser.artifacts import Manifest, ManifestNode
from include.rerun_parser.errors import AmbiguousSelectionError, MismatchedArtifactsError

#: Resource types each command executes; a selector collision with any other type is harmless.
#: None: the command acts on every kind of node (compile, docs generate).
EXECUTED_RESOURCE_TYPES: dict[str, frozenset[str] | None] = {
    "build": frozenset(
        {"model", "seed", "snapshot", "test", "unit_test", "function", "saved_query", "exposure"}
    ),
    "run": frozenset({"model"}),
    "test": frozenset({"test", "unit_test"}),
    "seed": frozenset({"seed"}),
    "snapshot": frozenset({"snapshot"}),
    "clone": frozenset({"model", "seed", "snapshot"}),
    "compile": None,
    "generate": None,
}
_WILDCARD_CHARACTERS = frozenset("*?[]")


@dataclass(frozen=True)
class Selection:
    """``--select`` values for a set of nodes, and whether they are proven to pick nothing else."""

    selectors: tuple[str, ...]
    exact: bool


def exact_selection(unique_ids: Sequence[str], manifest: Manifest, command: str) -> Selection:
    """One selector per node, each proven (against ``manifest``) to select that node alone."""
    return exact_selection_with_collisions(unique_ids, manifest, command)[0]


def exact_selection_with_collisions(
    unique_ids: Sequence[str], manifest: Manifest, command: str
) -> tuple[Selection, dict[str, list[ManifestNode]]]:
    """``exact_selection``, plus each node's fqn collisions of any type (for graph-operator selectors)."""
    missing = [unique_id for unique_id in unique_ids if unique_id not in manifest.nodes]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise MismatchedArtifactsError(
            manifest.source,
            f"lacks {len(missing)} node(s) that run_results.json reports ({shown}): "
            "the two files come from different runs or projects",
        )
    targets = [manifest.nodes[unique_id] for unique_id in unique_ids]
    for target in targets:
        if any(_WILDCARD_CHARACTERS & set(part) for part in target.fqn):
            raise AmbiguousSelectionError(
                f"{target.unique_id}: its fqn {'.'.join(target.fqn)} contains a glob character, "
                "which dbt's fqn selector would expand"
            )
    collisions = fqn_collisions(targets, manifest)
    return Selection(narrowed_selectors(targets, command, collisions), True), collisions


def fqn_collisions(targets: Sequence[ManifestNode], manifest: Manifest) -> dict[str, list[ManifestNode]]:
    """For each target, every other node (of any resource type) its ``fqn:`` selector also matches."""
    return _fqn_collisions(targets, manifest.nodes.values(), None)


def narrowed_selectors(
    targets: Sequence[ManifestNode], command: str, collisions: dict[str, list[ManifestNode]]
) -> tuple[str, ...]:
    """Each target's selector, narrowed until it picks none of its colliding nodes ``command`` executes."""
    executed_types = EXECUTED_RESOURCE_TYPES.get(command)
    return tuple(
        _narrowed_selector(
            target,
            [
                node
                for node in collisions.get(target.unique_id, ())
                if executed_types is None or node.resource_type in executed_types
            ],
        )
        for target in targets
    )


def best_effort_selection(unique_ids: Sequence[str]) -> Selection:
    """Selectors from unique_ids alone (no manifest): name, package and type intersected.

    They miss no node, but can over-select when a folder shares a node's name (the fqn selector then
    matches the folder's nodes too); use a manifest for a proven-exact selection.
    """
    return Selection(tuple(_selector_without_manifest(unique_id) for unique_id in unique_ids), False)


def _fqn_collisions(
    targets: Sequence[ManifestNode],
    candidates: Iterable[ManifestNode],
    executed_types: frozenset[str] | None,
) -> dict[str, list[ManifestNode]]:
    """For each target, the other executable nodes its ``fqn:`` selector would also select.

    One pass over the manifest: a candidate is selected by a target's selector S when S is a prefix
    of the candidate's flattened fqn (with or without its package), when S equals its leaf name, or,
    for a versioned candidate, when the last two parts match joined by "_" (``is_selected_node``).
    """
    by_prefix: dict[int, dict[tuple[str, ...], ManifestNode]] = defaultdict(dict)
    by_selector_string: dict[str, ManifestNode] = {}
    by_version_key: dict[str, list[ManifestNode]] = defaultdict(list)
    for target in targets:
        parts = tuple(part for segment in target.fqn for part in segment.split("."))
        by_prefix[len(parts)][parts] = target
        by_selector_string[".".join(target.fqn)] = target
        by_version_key["_".join(parts[-2:])].append(target)
    lengths = sorted(by_prefix)
    collisions: dict[str, list[ManifestNode]] = defaultdict(list)
    for candidate in candidates:
        if executed_types is not None and candidate.resource_type not in executed_types:
            continue
        hits = _targets_selecting(candidate, lengths, by_prefix, by_selector_string, by_version_key)
        for target in hits:
            if target.unique_id != candidate.unique_id:
                collisions[target.unique_id].append(candidate)
    return collisions


def _targets_selecting(
    candidate: ManifestNode,
    lengths: list[int],
    by_prefix: dict[int, dict[tuple[str, ...], ManifestNode]],
    by_selector_string: dict[str, ManifestNode],
    by_version_key: dict[str, list[ManifestNode]],
) -> set[ManifestNode]:
    fqn = candidate.fqn
    hits: set[ManifestNode] = set()
    leaf = fqn[-2] if candidate.is_versioned and len(fqn) > 1 else fqn[-1]
    if leaf in by_selector_string:
        hits.add(by_selector_string[leaf])
    if candidate.is_versioned:
        hits.update(by_version_key.get("_".join(fqn[-2:]), ()))
    if ".".join(fqn).count(".") == len(fqn) - 1:  # no dotted segment (the usual case): fqn is flat
        flat, unscoped = fqn, fqn[1:]
    else:
        flat = tuple(part for segment in fqn for part in segment.split("."))
        unscoped = tuple(part for segment in fqn[1:] for part in segment.split("."))
    for length in lengths:
        if length > len(flat):
            break
        prefixes = by_prefix[length]
        for path in (flat, unscoped):
            target = prefixes.get(path[:length]) if len(path) >= length else None
            if target is not None:
                hits.add(target)
    return hits


def _narrowed_selector(target: ManifestNode, collisions: Sequence[ManifestNode]) -> str:
    selector = "fqn:" + ".".join(target.fqn)
    remaining = list(collisions)
    if remaining:
        selector += f",resource_type:{target.resource_type}"
        remaining = [node for node in remaining if node.resource_type == target.resource_type]
    if remaining:
        selector += f",package:{target.package_name}"
        remaining = [node for node in remaining if node.package_name == target.package_name]
    if remaining:
        others = ", ".join(node.unique_id for node in remaining[:5])
        raise AmbiguousSelectionError(
            f"{target.unique_id}: selector {selector!r} would also select {others} "
            "(same package and type; a folder probably shares the node's name)"
        )
    return selector


def _selector_without_manifest(unique_id: str) -> str:
    parts = unique_id.split(".")
    resource_type, package = parts[0], parts[1] if len(parts) > 1 else ""
    if resource_type == "unit_test" and len(parts) >= 4:
        return f"unit_test:{package}.{parts[3]},resource_type:unit_test"
    if resource_type == "model" and len(parts) == 4 and parts[3].startswith("v"):
        name = f"{parts[2]}.{parts[3]}"  # a version: matched as <name>_<vN> by dbt
    elif resource_type == "test" and len(parts) >= 4:
        name = parts[2]  # test.<pkg>.<name>.<hash>
    else:
        name = ".".join(parts[2:])
    return f"fqn:{name},package:{package},resource_type:{resource_type}"
