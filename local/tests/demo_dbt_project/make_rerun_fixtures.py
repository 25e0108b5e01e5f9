"""Regenerate tests/rerun_parser/fixtures/ from real dbt runs of the demo project.

    PYTHONPATH=.:local .venv/bin/python local/tests/demo_dbt_project/make_rerun_fixtures.py

Loads the demo raw data into a scratch DuckDB file, builds the project once, then runs every scenario
of ``rerun_scenarios.py`` on a copy of that warehouse and stores its pruned run_results.json and
manifest.json. Run it after changing the demo project or the scenarios, then review the diff.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from dbt_harness import DemoWarehouse, prepare_project, run_dbt
from rerun_scenarios import FIXTURES_DIR, SCENARIOS, run_scenario, write_fixture


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rerun-fixtures-") as scratch:
        root = Path(scratch)
        prepare_project(root / "parse")
        built = DemoWarehouse.create(root / "built")
        build = run_dbt(["build"], built, root / "built-target")
        if build.returncode != 0:
            print(build.output, file=sys.stderr)
            return 1
        for scenario in SCENARIOS:
            _, invocation = run_scenario(scenario, built, root / scenario.name)
            folder = write_fixture(scenario, invocation.target_path)
            size = sum(path.stat().st_size for path in folder.iterdir())
            print(f"{scenario.name}: {len(invocation.statuses())} results, {size / 1024:.0f} KiB -> {folder}")
    total = sum(path.stat().st_size for path in FIXTURES_DIR.rglob("*.json"))
    print(f"total fixtures: {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
