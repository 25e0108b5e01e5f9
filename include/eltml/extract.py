"""Extract: land the source rows as CSV files, one per raw table.

Landing files first (instead of writing straight into the warehouse) is the usual ELT shape: the
files are the replayable record of what was extracted, and the load step can be retried on its own.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

from include.eltml.raw_data import RAW_TABLES


def write_landing_files(rows_by_table: dict[str, list[tuple]], landing_dir: str | Path) -> dict[str, str]:
    """Write one CSV per table into ``landing_dir``; return ``{table: path}``.

    Each file is written to a temporary name and renamed into place, so a crash never leaves a
    half-written file where the load step would read it.
    """
    landing = Path(landing_dir)
    landing.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for table, columns in RAW_TABLES.items():
        target = landing / f"{table}.csv"
        fd, tmp_name = tempfile.mkstemp(prefix=f".{table}.", suffix=".csv.tmp", dir=landing)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(columns)
                writer.writerows(rows_by_table[table])
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        paths[table] = str(target)
    return paths
