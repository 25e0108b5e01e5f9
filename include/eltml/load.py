"""Load: replace the warehouse's ``raw`` tables with the landed files, atomically.

Every table is rebuilt with ``CREATE OR REPLACE`` inside one transaction, so rerunning the task (or
the whole DAG run) replaces the raw data instead of appending a second copy, and a failure halfway
leaves the previous tables untouched.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from include.eltml.extract import write_landing_files
from include.eltml.raw_data import RAW_SCHEMA, RAW_TABLES, generate_raw_data


def load_files_into_warehouse(warehouse_path: str | Path, files: dict[str, str]) -> dict[str, int]:
    """Load ``{table: csv_path}`` into ``raw.<table>``; return the row count of each table."""
    missing = sorted(set(RAW_TABLES) - set(files))
    if missing:
        raise ValueError(f"No landed file for raw table(s) {missing}: run the extract task first.")
    warehouse = Path(warehouse_path)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with duckdb.connect(str(warehouse)) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
            for table, columns in RAW_TABLES.items():
                # Identifiers come from RAW_TABLES, never from input; file paths are bound parameters.
                qualified = f"{RAW_SCHEMA}.{table}"
                con.execute(
                    f"CREATE OR REPLACE TABLE {qualified} AS "  # noqa: S608
                    "SELECT * FROM read_csv(?, header = true, columns = ?)",
                    [files[table], columns],
                )
                counts[table] = con.execute(f"SELECT count(*) FROM {qualified}").fetchone()[0]  # noqa: S608
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return counts


def load_rows_into_warehouse(
    warehouse_path: str | Path, rows_by_table: dict[str, list[tuple]]
) -> dict[str, int]:
    """Land ``rows_by_table`` in a scratch folder and load it: extract and load in one call."""
    with tempfile.TemporaryDirectory(prefix="eltml-landing-") as landing:
        return load_files_into_warehouse(warehouse_path, write_landing_files(rows_by_table, landing))


def load_raw_tables(warehouse_path: str | Path, n_customers: int = 1000, seed: int = 42) -> dict[str, int]:
    """Generate the demo rows and (re)load them into ``raw.*`` of a DuckDB file; return row counts.

    A shortcut for tests and tools that need a ready warehouse without running the DAG's extract and
    load tasks (which do the same through files).
    """
    return load_rows_into_warehouse(warehouse_path, generate_raw_data(n_customers, seed))
