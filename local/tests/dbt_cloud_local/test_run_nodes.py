"""The run page's node view from real-shaped artifacts: what counts as "skipped because of a failure".

The browser test (local/tests/browser/test_run_page_nodes.py) shows a failing model in a real run; these
cover what it cannot cheaply: a failing *test* skips its model's children, not the model, and a node
run again by a later step shows its last result.
"""

from __future__ import annotations

import json
from pathlib import Path

from dbt_cloud_local.pages.nodes import blocked_by_failure, dag_svg, nodes_section, run_nodes
from dbt_cloud_local.runs.workspace import RunWorkspace


def _write_step(
    workspace: RunWorkspace, index: int, results: dict[str, str], edges: dict[str, list[str]]
) -> None:
    target = workspace.target(index)
    target.mkdir(parents=True)
    run_results = {
        "results": [
            {"unique_id": uid, "status": status, "execution_time": 0.5, "message": f"{status}\n  because"}
            for uid, status in results.items()
        ]
    }
    manifest = {
        "nodes": {
            uid: {"name": uid.split(".")[-1], "depends_on": {"nodes": parents}}
            for uid, parents in edges.items()
        }
    }
    (target / "run_results.json").write_text(json.dumps(run_results))
    (target / "manifest.json").write_text(json.dumps(manifest))


def test_a_failed_test_blocks_its_models_children_not_the_model(tmp_path: Path) -> None:
    workspace = RunWorkspace(tmp_path, 1)
    edges = {
        "model.p.stg": [],
        "test.p.unique_stg": ["model.p.stg"],
        "model.p.mart": ["model.p.stg"],
        "model.p.report": ["model.p.mart"],
        "model.p.other": [],
    }
    _write_step(workspace, 1, {"model.p.stg": "error", "model.p.other": "success"}, edges)
    _write_step(
        workspace,
        2,
        {
            "model.p.stg": "success",  # the later step's result wins
            "test.p.unique_stg": "fail",
            "model.p.mart": "skipped",
            "model.p.report": "skipped",
        },
        edges,
    )
    nodes = run_nodes(workspace, [1, 2])
    by_id = {node.unique_id: node for node in nodes}
    assert by_id["model.p.stg"].status == "success"
    assert by_id["model.p.stg"].step == 2
    assert by_id["test.p.unique_stg"].message == "fail — because"
    assert blocked_by_failure(nodes) == {"model.p.mart", "model.p.report"}

    svg = dag_svg(nodes, blocked_by_failure(nodes))
    assert svg.count("class='dagnode failed'") == 1, "the failed test is drawn, in red"
    assert "data-unique-id='model.p.stg' data-status='success'" in svg
    assert svg.count("class='edge hit'") == 1, "mart -> report: the path the failure took"


def test_no_artifacts_no_section(tmp_path: Path) -> None:
    assert nodes_section(RunWorkspace(tmp_path, 9), [1, 2]) == ""
