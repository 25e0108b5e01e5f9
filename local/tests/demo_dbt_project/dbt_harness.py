"""Run the demo dbt project for real, isolated per test: own warehouse file, target and log folders.

Shared by the demo-project tests and the rerun-parser parity tests (and its fixture script): they all
need real dbt invocations whose artifacts land in a folder of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from include.eltml.load import load_raw_tables

REPO_ROOT = Path(__file__).resolve().parents[3]
PROJECT_DIR = REPO_ROOT / "local" / "demo_dbt_project"
DBT_EXECUTABLE = REPO_ROOT / ".venv-dbt" / "bin" / "dbt"
#: Switch variables that must not leak from the developer's shell into a test's dbt run.
FAILURE_SWITCHES = ("DBT_FAIL_MODEL", "DBT_FAIL_TEST")
#: Every warehouse has this file name, in a folder of its own, and dbt runs from that folder with a
#: relative DBT_DUCKDB_PATH: the rendered profile is then identical for every run, so dbt can reuse
#: one partial-parse file instead of parsing the project again (about 3 s per invocation).
WAREHOUSE_FILE_NAME = "warehouse.duckdb"
_parse_cache: dict[str, Path] = {}


@dataclass(frozen=True)
class DbtInvocation:
    """One finished dbt command: its exit code, console output and the folder it wrote artifacts to."""

    returncode: int
    output: str
    target_path: Path

    def run_results(self) -> dict:
        return json.loads((self.target_path / "run_results.json").read_text())

    def statuses(self) -> dict[str, str]:
        """``{unique_id: status}`` of every node the command executed (or skipped)."""
        return {result["unique_id"]: result["status"] for result in self.run_results()["results"]}


@dataclass(frozen=True)
class DemoWarehouse:
    """A DuckDB file (``<folder>/warehouse.duckdb``) that dbt builds into; dbt runs from its folder."""

    folder: Path

    @property
    def path(self) -> Path:
        return self.folder / WAREHOUSE_FILE_NAME

    @classmethod
    def create(cls, folder: Path) -> DemoWarehouse:
        """A new warehouse holding the demo raw data (``include.eltml.raw_data``)."""
        folder.mkdir(parents=True, exist_ok=True)
        load_raw_tables(folder / WAREHOUSE_FILE_NAME)
        return cls(folder)

    def copy_to(self, folder: Path) -> DemoWarehouse:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, folder / WAREHOUSE_FILE_NAME)
        return DemoWarehouse(folder)

    def query(self, sql: str) -> list[tuple]:
        import duckdb

        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql).fetchall()


def prepare_project(work_dir: Path) -> None:
    """``dbt deps`` (offline: the package is local) and one ``dbt parse`` whose partial-parse file
    later runs start from. Once per process; call it before ``run_dbt``."""
    if "partial_parse" in _parse_cache:
        return
    for args in (["deps"], ["parse"]):
        invocation = run_dbt(args, DemoWarehouse(work_dir), work_dir / "parse-target")
        if invocation.returncode != 0:
            raise RuntimeError(f"dbt {args[0]} failed:\n{invocation.output}")
    _parse_cache["partial_parse"] = work_dir / "parse-target" / "partial_parse.msgpack"


def run_dbt(
    args: list[str],
    warehouse: DemoWarehouse,
    target_path: Path,
    switches: dict[str, str] | None = None,
) -> DbtInvocation:
    """Run ``dbt <args>`` on the demo project into ``target_path``; never raises on a dbt failure."""
    target_path.mkdir(parents=True, exist_ok=True)
    cached_parse = _parse_cache.get("partial_parse")
    if cached_parse and not (target_path / cached_parse.name).exists():
        shutil.copyfile(cached_parse, target_path / cached_parse.name)
    command = [str(DBT_EXECUTABLE), *args, *_project_args(), "--log-path", str(target_path / "logs")]
    if args[0] != "deps":
        command += ["--target-path", str(target_path)]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=_dbt_env(switches or {}),
        check=False,
        cwd=warehouse.folder,
    )
    return DbtInvocation(result.returncode, result.stdout + result.stderr, target_path)


def _project_args() -> list[str]:
    return ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]


def _dbt_env(switches: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in FAILURE_SWITCHES}
    env["DBT_DUCKDB_PATH"] = WAREHOUSE_FILE_NAME  # relative to the warehouse's folder, the cwd
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["DBT_USE_COLORS"] = "false"
    env.update(switches)
    return env
