"""Regenerate tests/dbt_cloud/fixtures/ from real runs of the eltml job on the local dbt Cloud.

    PYTHONPATH=.:local .venv/bin/python local/tests/dbt_cloud/make_run_report_fixtures.py

Loads the demo's raw data into a scratch DuckDB file, runs job 1 (``dbt seed``, ``dbt build``, docs)
once as is (``good``) and once with ``DBT_FAIL_MODEL=stg_orders`` (``failed``), and stores, per run,
its steps as dbt Cloud numbers them (index, name and dbt's own ``Done. PASS=…`` line from the step's
log: steps 1 to 3 are the clone, profile and ``dbt deps`` steps), the run_results.json of each step
that wrote one (pruned to what the report reads) and the build step's manifest.json (pruned to each
node's relation).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Read by the image's tests (tests/dbt_cloud/).
FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "dbt_cloud" / "fixtures"
RESULT_FIELDS = ("unique_id", "status", "execution_time", "message", "adapter_response")
NODE_FIELDS = ("unique_id", "resource_type", "package_name", "fqn", "version", "database", "schema", "alias")


def prune_run_results(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": document["metadata"],
        "args": {"which": document["args"]["which"]},
        "elapsed_time": document["elapsed_time"],
        "results": [{key: result.get(key) for key in RESULT_FIELDS} for result in document["results"]],
    }


def prune_manifest(document: dict[str, Any]) -> dict[str, Any]:
    nodes = {uid: {key: node.get(key) for key in NODE_FIELDS} for uid, node in document["nodes"].items()}
    return {"metadata": document["metadata"], "nodes": nodes}


def main() -> int:
    from dbt_cloud_local.testing import run_local_dbt_cloud
    from include.eltml.tasks import extract_raw_files, load_raw_files

    with tempfile.TemporaryDirectory(prefix="model-fixtures-") as scratch:
        root = Path(scratch)
        paths = {
            "JAFFLE_SHOP_WAREHOUSE": str(root / "jaffle_shop.duckdb"),
            "ELTML_LANDING_DIR": str(root / "landing"),
        }
        os.environ.update(paths)
        load_raw_files(extract_raw_files("fixtures"))
        with (
            run_local_dbt_cloud(root / "dbt-cloud", env=paths) as server,
            server.client(timeout=60) as client,
        ):
            variables = "/api/v3/accounts/1/projects/1/environment-variables/bulk/"
            for name, fail in (("good", None), ("failed", "stg_orders")):
                if fail:
                    client.post(
                        variables, json={"env_var": [{"new_name": "DBT_FAIL_MODEL", "Production": fail}]}
                    )
                run = client.post("/api/v2/accounts/1/jobs/1/run/", json={"cause": "fixtures"}).json()["data"]
                while not run["is_complete"]:
                    time.sleep(1)
                    url = f"/api/v2/accounts/1/runs/{run['id']}/"
                    run = client.get(url, params={"include_related": "run_steps"}).json()["data"]
                folder = FIXTURES / name
                folder.mkdir(parents=True, exist_ok=True)
                steps = []
                for step in run["run_steps"]:
                    done = [
                        line.split("  ", 1)[-1] for line in step["logs"].splitlines() if "Done. PASS=" in line
                    ]
                    steps.append(
                        {
                            "index": step["index"],
                            "name": step["name"],
                            "dbt_done_line": done[-1] if done else None,
                        }
                    )
                    artifacts = f"/api/v2/accounts/1/runs/{run['id']}/artifacts/"
                    params = {"step": step["index"]}
                    response = client.get(artifacts + "run_results.json", params=params)
                    if response.status_code == 404:  # the clone, profile and deps steps write none
                        continue
                    results = response.json()
                    (folder / f"step{step['index']}_run_results.json").write_text(
                        json.dumps(prune_run_results(results), indent=1) + "\n"
                    )
                    if "dbt build" in step["name"]:
                        manifest = client.get(artifacts + "manifest.json", params=params).json()
                        (folder / "build_manifest.json").write_text(
                            json.dumps(prune_manifest(manifest), indent=1) + "\n"
                        )
                (folder / "run.json").write_text(json.dumps({"run_steps": steps}, indent=1) + "\n")
                print(f"{name}: run {run['id']} ({run['status_humanized']}) -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
