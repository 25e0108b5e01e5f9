"""
A run's nodes for its page: what each step's dbt invocation did, as a table and as a DAG picture.

Read from the run's own artifacts (each step's ``run_results.json`` and ``manifest.json``); a node run
by several steps (``dbt seed`` then ``dbt build``) shows its last result. The picture is server-side
SVG (no JavaScript): models, seeds and snapshots laid out left to right by depth, plus any test that
failed (its failure is why its children were skipped). Failed nodes are red, and what they skipped
(skipped nodes downstream of a failure, and the edges leading there) is amber and dashed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from dbt_cloud_local.runs.workspace import RunWorkspace

FAILED = frozenset({"error", "fail", "runtime error"})
SKIPPED = "skipped"
BUILT_TYPES = frozenset({"model", "seed", "snapshot"})
#: The picture stops here (a project's first N nodes by depth); the table always lists everything.
MAX_PICTURE_NODES = 120

_COLUMN, _ROW, _BOX_W, _BOX_H, _MARGIN = 200, 34, 172, 24, 12


@dataclass
class Node:
    unique_id: str
    resource_type: str
    name: str
    status: str
    execution_time: float | None
    step: int
    message: str = ""
    parents: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in FAILED


def _short(message: str) -> str:
    """dbt's error in two lines at most ("Runtime Error in model x (path)" then the cause), one line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return " — ".join(lines[:2])[:300]


def _read(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def run_nodes(workspace: RunWorkspace, step_indexes: list[int]) -> list[Node]:
    """Every node the run's steps reported, last result first-come order kept (by step, then file)."""
    nodes: dict[str, Node] = {}
    manifest_nodes: dict[str, dict] = {}
    for index in step_indexes:
        target = workspace.target(index)
        manifest = _read(target / "manifest.json") or {}
        for section in ("nodes", "sources"):
            entries = manifest.get(section)
            if isinstance(entries, dict):
                manifest_nodes.update(entries)
        results = (_read(target / "run_results.json") or {}).get("results")
        for result in results if isinstance(results, list) else []:
            if not isinstance(result, dict) or not isinstance(result.get("unique_id"), str):
                continue
            unique_id = result["unique_id"]
            timing = result.get("execution_time")
            message = result.get("message") if isinstance(result.get("message"), str) else ""
            nodes[unique_id] = Node(
                unique_id=unique_id,
                resource_type=unique_id.split(".", 1)[0],
                name=unique_id.split(".", 2)[-1],
                status=str(result.get("status")),
                execution_time=float(timing) if isinstance(timing, (int, float)) else None,
                step=index,
                message=_short(message),
            )
    for node in nodes.values():
        entry = manifest_nodes.get(node.unique_id, {})
        depends = (entry.get("depends_on") or {}).get("nodes") or []
        node.parents = [parent for parent in depends if parent in nodes]
        if isinstance(entry.get("name"), str):
            node.name = entry["name"] + (f".v{entry['version']}" if entry.get("version") else "")
    return list(nodes.values())


def blocked_by_failure(nodes: list[Node]) -> set[str]:
    """Skipped nodes downstream of a failure: what the failure skipped.

    A failed test does not skip its own parents: ``dbt build`` skips the *children* of the model it
    tests, so a failed test's parents propagate the skip without being marked themselves.
    """
    children: dict[str, list[str]] = {}
    for node in nodes:
        for parent in node.parents:
            children.setdefault(parent, []).append(node.unique_id)
    status = {node.unique_id: node.status for node in nodes}
    frontier = [node.unique_id for node in nodes if node.failed]
    frontier += [
        parent for node in nodes if node.failed and node.resource_type == "test" for parent in node.parents
    ]
    blocked: set[str] = set()
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in blocked and status[child] == SKIPPED:
                blocked.add(child)
                frontier.append(child)
    return blocked


def _duration(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.2f}s"


def nodes_table(nodes: list[Node], blocked: set[str]) -> str:
    rows = []
    # What went wrong first: failed nodes, then what they skipped, then the rest in run order.
    ordered = sorted(nodes, key=lambda n: 0 if n.failed else (1 if n.unique_id in blocked else 2))
    for node in ordered:
        css = "failed" if node.failed else ("blocked" if node.unique_id in blocked else node.status)
        rows.append(
            f"<tr class='node {escape(css)}' data-unique-id='{escape(node.unique_id)}'"
            f" data-status='{escape(node.status)}'><td>{escape(node.name)}</td>"
            f"<td>{escape(node.resource_type)}</td><td class='st'>{escape(node.status)}</td>"
            f"<td>{_duration(node.execution_time)}</td><td>{node.step}</td>"
            f"<td class='msg'>{escape(node.message) if node.failed else ''}</td></tr>"
        )
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node.status] = counts.get(node.status, 0) + 1
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    return (
        f"<p class='counts'>{escape(summary)}</p><table id='nodes'><tr><th>Node</th><th>Type</th>"
        f"<th>Status</th><th>Time</th><th>Step</th><th>Error</th></tr>{''.join(rows)}</table>"
    )


def _depths(nodes: list[Node]) -> dict[str, int]:
    by_id = {node.unique_id: node for node in nodes}
    depth: dict[str, int] = {}

    def visit(unique_id: str, seen: frozenset[str]) -> int:
        if unique_id in depth:
            return depth[unique_id]
        parents = [p for p in by_id[unique_id].parents if p in by_id and p not in seen]
        value = 1 + max((visit(p, seen | {unique_id}) for p in parents), default=-1)
        depth[unique_id] = value
        return value

    for node in nodes:
        visit(node.unique_id, frozenset())
    return depth


def dag_svg(nodes: list[Node], blocked: set[str]) -> str:
    """The run's DAG as inline SVG: one column per depth, failures and what they skipped highlighted."""
    shown = [n for n in nodes if n.resource_type in BUILT_TYPES or (n.resource_type == "test" and n.failed)]
    if not shown:
        return "<p>No models, seeds or snapshots in this run.</p>"
    depth = _depths(shown)
    shown.sort(key=lambda n: (depth[n.unique_id], n.resource_type, n.name))
    shown = shown[:MAX_PICTURE_NODES]
    ids = {n.unique_id for n in shown}
    by_id = {n.unique_id: n for n in shown}
    position: dict[str, tuple[int, int]] = {}
    rows_used: dict[int, int] = {}
    for node in shown:
        column = depth[node.unique_id]
        row = rows_used.get(column, 0)
        rows_used[column] = row + 1
        position[node.unique_id] = (_MARGIN + column * _COLUMN, _MARGIN + row * _ROW)
    width = _MARGIN * 2 + (max(rows_used) + 1) * _COLUMN
    height = _MARGIN * 2 + max(rows_used.values()) * _ROW
    edges, boxes = [], []
    for node in shown:
        x, y = position[node.unique_id]
        for parent in node.parents:
            if parent not in ids:
                continue
            px, py = position[parent]
            x1, y1, x2, y2 = px + _BOX_W, py + _BOX_H / 2, x, y + _BOX_H / 2
            # The path a failure took: from a failed or skipped node into what it skipped.
            hit = node.unique_id in blocked and (parent in blocked or by_id[parent].failed)
            css = "edge hit" if hit else "edge"
            path = f"M{x1},{y1} C{x1 + 20},{y1} {x2 - 20},{y2} {x2},{y2}"
            edges.append(f"<path class='{css}' d='{path}'/>")
        css = "failed" if node.failed else ("blocked" if node.unique_id in blocked else node.status)
        label = node.name if len(node.name) <= 24 else node.name[:23] + "…"
        boxes.append(
            f"<g class='dagnode {escape(css)}' data-unique-id='{escape(node.unique_id)}'"
            f" data-status='{escape(node.status)}'><title>{escape(node.unique_id)}: {escape(node.status)}"
            f" {_duration(node.execution_time)}</title>"
            f"<rect x='{x}' y='{y}' width='{_BOX_W}' height='{_BOX_H}' rx='5'/>"
            f"<text x='{x + 8}' y='{y + 16}'>{escape(label)}</text></g>"
        )
    return (
        f"<svg id='dag' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'"
        f" viewBox='0 0 {width} {height}' role='img' aria-label='DAG of the run'>"
        f"{''.join(edges)}{''.join(boxes)}</svg>"
    )


STYLE = """
#dag { border: 1px solid #ddd; background: #fff; max-width: 100%; height: auto; }
#dag .edge { fill: none; stroke: #8c959f; stroke-width: 1.2; }
#dag .edge.hit { stroke: #bf8700; stroke-width: 2; stroke-dasharray: 5 3; }
#dag rect { fill: #f6f8fa; stroke: #8c959f; }
#dag text { font: 12px system-ui, sans-serif; fill: #1f2328; }
#dag .success rect { fill: #dafbe1; stroke: #1a7f37; }
#dag .pass rect { fill: #dafbe1; stroke: #1a7f37; }
#dag .failed rect { fill: #ffebe9; stroke: #cf222e; stroke-width: 3; }
#dag .failed text { font-weight: 700; fill: #a40e26; }
#dag .blocked rect, #dag .skipped rect {
  fill: #fff8c5; stroke: #bf8700; stroke-width: 2; stroke-dasharray: 4 2;
}
#nodes tr.failed td { background: #ffebe9; } #nodes tr.failed .st { color: #cf222e; font-weight: 700; }
#nodes tr.blocked td, #nodes tr.skipped td { background: #fff8c5; }
#nodes tr.success .st, #nodes tr.pass .st { color: #1a7f37; }
.legend span { display: inline-block; padding: 0 .5rem; margin-right: .5rem; border: 1px solid #8c959f; }
.legend .ok { background: #dafbe1; } .legend .bad { background: #ffebe9; border: 2px solid #cf222e; }
.legend .skip { background: #fff8c5; border: 2px dashed #bf8700; }
.msg { color: #a40e26; font-size: .85rem; max-width: 30rem; }
#nodes td:first-child { max-width: 26rem; overflow-wrap: anywhere; }
"""


def nodes_section(workspace: RunWorkspace, step_indexes: list[int]) -> str:
    """The run page's "Nodes" section: legend, DAG picture and table ('' before any results exist)."""
    nodes = run_nodes(workspace, step_indexes)
    if not nodes:
        return ""
    blocked = blocked_by_failure(nodes)
    legend = (
        "<p class='legend'><span class='ok'>built</span><span class='bad'>failed</span>"
        "<span class='skip'>skipped because of a failure</span></p>"
    )
    return f"<h2>Nodes</h2>{legend}{dag_svg(nodes, blocked)}{nodes_table(nodes, blocked)}"
