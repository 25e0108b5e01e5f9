"""How long each DAG file takes to parse, as a ratio to a one-task DAG parsed in the same process.

Every DAG file is parsed again and again by the dag-processor, so its parse time is paid all day long.
Absolute times depend on the machine; the ratio to a trivial one-task DAG (same imports of Airflow
itself, already warm) shows what a file adds on its own: heavy imports, top-level work, many tasks.

    .venv/bin/python bench/bench_dag_parse.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ONE_TASK_DAG = """
import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False)
def one_task():
    @task
    def noop():
        return None

    noop()


one_task()
"""


def parse_seconds(path: Path, repeat: int) -> float:
    """Median wall time of DagBag parsing ``path`` (module cache cleared each time, as a fresh parse)."""
    from airflow.dag_processing.dagbag import DagBag

    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(path), safe_mode=False)
        samples.append(time.perf_counter() - started)
        if bag.import_errors:
            raise SystemExit(f"{path.name} does not import: {bag.import_errors}")
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-parse-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    sys.path.insert(0, str(PROJECT_ROOT))

    with tempfile.TemporaryDirectory() as scratch:
        baseline_file = Path(scratch) / "one_task_dag.py"
        baseline_file.write_text(ONE_TASK_DAG)
        parse_seconds(baseline_file, 1)  # warm Airflow's own imports once, for every file alike
        baseline = parse_seconds(baseline_file, args.repeat)
        rows = [(p.name, parse_seconds(p, args.repeat)) for p in sorted((PROJECT_ROOT / "dags").glob("*.py"))]

    print(f"one-task DAG baseline: {baseline * 1000:.1f} ms (median of {args.repeat})")
    print(f"{'DAG file':<36} {'parse ms':>9} {'x baseline':>11}")
    for name, seconds in rows:
        print(f"{name:<36} {seconds * 1000:>9.1f} {seconds / baseline:>11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
