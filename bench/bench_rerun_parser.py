"""Benchmark: the rerun command for a 50,000-node project, from artifact files on disk.

    .venv/bin/python bench/bench_rerun_parser.py [--nodes 50000]

Writes a synthetic manifest.json (nodes shaped like dbt 1.11's: SQL, config, columns, depends_on, and
the parent_map/child_map dbt writes) and a run_results.json where one early model failed and everything
downstream of it was skipped (as dbt build reports it), then times load + plan and reports peak memory
(tracemalloc for Python allocations, ru_maxrss for the process) against the artifacts' size on disk,
the length of the rerun command, and the command length for each fixture scenario of the tests.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.rerun_parser import NothingToRerun, load_manifest, load_run_results, plan_step_rerun

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "tests" / "rerun_parser" / "fixtures"

MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"
RUN_RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"


def synthetic_artifacts(n_nodes: int, seed: int = 7) -> tuple[dict, dict]:
    """A manifest of models (2 tests each, some versioned, some in a package) and its run results."""
    rng = random.Random(seed)
    nodes: dict[str, dict] = {}
    results: list[dict] = []
    n_models = n_nodes // 3
    failed_model = 10
    model_ids: list[str] = []
    failed_or_downstream: set[str] = set()
    for index in range(n_models):
        package = "shop" if index % 10 else "utils"
        folder = f"domain_{index % 40}"
        name = f"model_{index}"
        version = 2 if index % 97 == 0 else None
        unique_id = f"model.{package}.{name}" + (f".v{version}" if version else "")
        model_ids.append(unique_id)
        parents = [model_ids[rng.randrange(index)]] if index else []
        nodes[unique_id] = _model(unique_id, package, folder, name, version, parents)
        # As dbt build reports it: everything downstream of the failed model is skipped.
        downstream = bool(parents) and parents[0] in failed_or_downstream
        if downstream or index == failed_model:
            failed_or_downstream.add(unique_id)
        status = "error" if index == failed_model else "skipped" if downstream else "success"
        results.append({"unique_id": unique_id, "status": status, "message": None, "failures": None})
        for test in ("not_null", "unique"):
            test_name = f"{test}_{name}_id"
            test_id = f"test.{package}.{test_name}.{rng.getrandbits(40):010x}"
            nodes[test_id] = _test(test_id, package, folder, test_name, unique_id)
            test_status = "skipped" if downstream or index == failed_model else "pass"
            results.append({"unique_id": test_id, "status": test_status, "message": None, "failures": 0})
    parent_map = {unique_id: list(node["depends_on"]["nodes"]) for unique_id, node in nodes.items()}
    child_map: dict[str, list[str]] = {unique_id: [] for unique_id in nodes}
    for unique_id, parents_of in parent_map.items():
        for parent in parents_of:
            child_map[parent].append(unique_id)
    manifest = {
        "metadata": {"dbt_schema_version": MANIFEST_SCHEMA, "invocation_id": "bench"},
        "nodes": nodes,
        "sources": {},
        "macros": {},
        "parent_map": parent_map,
        "child_map": child_map,
        "unit_tests": {},
    }
    run_results = {
        "metadata": {"dbt_schema_version": RUN_RESULTS_SCHEMA, "invocation_id": "bench"},
        "args": {"which": "build", "vars": {"run_date": "2025-06-30"}, "full_refresh": False},
        "elapsed_time": 900.0,
        "results": results,
    }
    return manifest, run_results


def _model(unique_id, package, folder, name, version, parents) -> dict:
    raw_code = (
        f"select id, amount, created_at from {{{{ ref('{parents[0].split('.')[2]}') }}}}\n" * 8  # noqa: S608 (synthetic text)
        if parents
        else ""
    )
    return {
        "unique_id": unique_id,
        "resource_type": "model",
        "package_name": package,
        "name": name,
        "version": version,
        "fqn": [package, folder, name, *([f"v{version}"] if version else [])],
        "original_file_path": f"models/{folder}/{name}.sql",
        "raw_code": raw_code,
        "compiled_code": raw_code.replace("{{", "").replace("}}", ""),
        "description": f"The {name} model of {folder}, one row per entity." * 3,
        "config": {"materialized": "table", "tags": ["daily"], "meta": {}, "enabled": True},
        "columns": {c: {"name": c, "description": f"The {c}.", "data_type": None} for c in ("id", "amount")},
        "depends_on": {"nodes": parents, "macros": ["macro.dbt.ref"]},
        "refs": [{"name": parent.split(".")[2], "package": None, "version": None} for parent in parents],
        "checksum": {"name": "sha256", "checksum": "0" * 64},
    }


def _test(unique_id, package, folder, test_name, model_id) -> dict:
    return {
        "unique_id": unique_id,
        "resource_type": "test",
        "package_name": package,
        "name": test_name,
        "fqn": [package, folder, test_name],
        "original_file_path": f"models/{folder}/_models.yml",
        "raw_code": "{{ test_not_null(**_dbt_generic_test_kwargs) }}",
        "config": {"severity": "ERROR", "enabled": True},
        "depends_on": {"nodes": [model_id], "macros": ["macro.dbt.test_not_null"]},
        "test_metadata": {"name": test_name.split("_")[0], "kwargs": {"column_name": "id"}},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50_000)
    options = parser.parse_args()
    manifest, run_results = synthetic_artifacts(options.nodes)
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as scratch:
        manifest_path, run_results_path = Path(scratch) / "manifest.json", Path(scratch) / "run_results.json"
        manifest_path.write_text(json.dumps(manifest))
        run_results_path.write_text(json.dumps(run_results))
        n_nodes = len(manifest["nodes"])
        del manifest, run_results
        artifact_bytes = manifest_path.stat().st_size + run_results_path.stat().st_size
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        # Pass 1, timed: no tracemalloc, which slows every allocation several-fold.
        started = time.perf_counter()
        loaded_results = load_run_results(run_results_path)
        loaded_manifest = load_manifest(manifest_path)
        loaded = time.perf_counter()
        plan = plan_step_rerun(loaded_results, loaded_manifest)
        finished = time.perf_counter()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        del loaded_results, loaded_manifest
        # Pass 2, measured: peak of Python allocations while doing the same work.
        tracemalloc.start()
        plan_step_rerun(load_run_results(run_results_path), load_manifest(manifest_path))
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    print(f"nodes in manifest:        {n_nodes:,}")
    print(f"nodes to rerun:           {len(plan.unique_ids):,}")
    print(f"command length:           {len(str(plan.command)):,} characters (root failure)")
    print(f"artifacts on disk:        {artifact_bytes / 2**20:,.1f} MiB")
    print(f"load (parse+validate):    {loaded - started:.2f} s")
    print(f"plan (retry set+select):  {finished - loaded:.2f} s")
    print(f"total:                    {finished - started:.2f} s")
    print(f"peak Python memory:       {traced_peak / 2**20:,.1f} MiB (tracemalloc)")
    print(f"peak / artifact size:     {traced_peak / artifact_bytes:.2f}x")
    print(
        f"process max RSS:          {rss_after / 2**20:,.1f} MiB (before load: {rss_before / 2**20:,.1f} MiB)"
    )
    print("command length per fixture scenario (tests/rerun_parser/fixtures):")
    for folder in sorted(path for path in FIXTURES_DIR.iterdir() if path.is_dir()):
        fixture_plan = plan_step_rerun(
            load_run_results(folder / "run_results.json"), load_manifest(folder / "manifest.json")
        )
        if isinstance(fixture_plan, NothingToRerun):
            print(f"  {folder.name:<32} nothing to rerun")
            continue
        enumerated = fixture_plan.enumerated_command or fixture_plan.command
        print(
            f"  {folder.name:<32} {len(str(fixture_plan.command)):>6,} characters "
            f"(one selector per node: {len(str(enumerated)):,}; {len(fixture_plan.unique_ids)} nodes)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
