"""Benchmark: a dbt step started as a plain process against one forked by the warm dbt fork server.

    .venv/bin/python bench/bench_warm_dbt.py [--repeat 5]

What is measured: the wall time of one dbt invocation through the local dbt Cloud's real
``ProcessSupervisor``, from start to exit, for the commands a run of the demo project invokes
(``dbt deps`` on every run, ``dbt parse``, ``dbt build``), started two ways: ``popen`` (a fresh ``dbt``
process, as before) and ``WarmDbt`` (forked from a process that imported dbt once). The median of
``--repeat`` samples each, interleaved so machine load falls on both alike, and the difference.

Why: a dbt process spends about a second on imports before it reads a file; a run pays it for
``dbt deps`` and again for every command. The difference is what every step of every run saves.

How: a copy of ``local/demo_dbt_project`` in a temporary folder, its DuckDB warehouse there too,
its raw tables loaded once first (as the DAG's load task does), partial parsing left on as in a run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "local")]

from dbt_cloud_local.runs.supervisor import ProcessSupervisor  # noqa: E402
from dbt_cloud_local.runs.warm_dbt import WarmDbt, popen  # noqa: E402
from include.eltml.load import load_raw_tables  # noqa: E402

DBT = REPO_ROOT / ".venv-dbt" / "bin" / "dbt"
COMMANDS = (["deps"], ["parse"], ["build"])
IGNORED = shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb", "__pycache__")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per command and launcher")
    args = parser.parse_args()
    if not DBT.exists():
        print(f"No dbt at {DBT}: run `make venv` first.", file=sys.stderr)
        return 2
    warm = WarmDbt()
    with tempfile.TemporaryDirectory(prefix="bench-warm-dbt-") as tmp:
        project = Path(tmp) / "project"
        shutil.copytree(REPO_ROOT / "local" / "demo_dbt_project", project, ignore=IGNORED)
        env = {
            "PATH": os.environ["PATH"],
            "HOME": tmp,
            "DBT_PROFILES_DIR": str(project),
            "DBT_DUCKDB_PATH": str(Path(tmp) / "warehouse.duckdb"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PYTHONUNBUFFERED": "1",
        }
        launchers = {"plain process": popen, "warm fork": warm}
        invoke(popen, project, env, ["deps"], Path(tmp) / "setup.log")
        load_raw_tables(env["DBT_DUCKDB_PATH"])
        invoke(warm, project, env, ["--version"], Path(tmp) / "setup.log")  # the fork server's own start
        print(f"dbt invocation wall time, median of {args.repeat} (demo project, {os.cpu_count()} cores)\n")
        print(f"{'command':<12}{'plain process':>15}{'warm fork':>12}{'saved':>10}")
        for command in COMMANDS:
            samples: dict[str, list[float]] = {name: [] for name in launchers}
            for _ in range(args.repeat):
                for name, launcher in launchers.items():
                    samples[name].append(invoke(launcher, project, env, command, Path(tmp) / "step.log"))
            plain, forked = (statistics.median(samples[name]) for name in launchers)
            print(f"{'dbt ' + command[0]:<12}{plain:>14.2f}s{forked:>11.2f}s{plain - forked:>9.2f}s")
    warm.close()
    return 0


def invoke(launcher, project: Path, env: dict[str, str], command: list[str], output: Path) -> float:
    started = time.perf_counter()
    result = ProcessSupervisor(grace_seconds=5, launcher=launcher).run(
        [str(DBT), *command], cwd=project, env=env, output=output, interrupt=threading.Event()
    )
    elapsed = time.perf_counter() - started
    if result.exit_code != 0:
        log = output.read_text()[-2000:]
        raise SystemExit(f"dbt {' '.join(command)} exited with {result.exit_code}:\n{log}")
    return elapsed


if __name__ == "__main__":
    raise SystemExit(main())
