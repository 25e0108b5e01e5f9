"""Extract and load against a real DuckDB file: deterministic, idempotent, atomic."""

from __future__ import annotations

import duckdb
import pytest

from include.eltml.extract import write_landing_files
from include.eltml.load import load_files_into_warehouse
from include.eltml.raw_data import RAW_TABLES, generate_raw_data


def _raw_counts(warehouse) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in RAW_TABLES}  # noqa: S608


def test_source_data_is_deterministic_and_a_few_thousand_rows():
    first, second = generate_raw_data(), generate_raw_data()
    assert first == second
    assert len(first["customers"]) == 1000
    assert 2000 <= len(first["orders"]) <= 10000
    order_ids = {row[0] for row in first["orders"]}
    assert all(payment[1] in order_ids for payment in first["payments"]), "payments reference real orders"


def test_load_twice_replaces_instead_of_duplicating(tmp_path):
    rows = generate_raw_data(n_customers=50)
    files = write_landing_files(rows, tmp_path / "landing")
    warehouse = tmp_path / "warehouse.duckdb"

    first = load_files_into_warehouse(warehouse, files)
    second = load_files_into_warehouse(warehouse, files)

    expected = {table: len(rows[table]) for table in RAW_TABLES}
    assert first == second == expected
    assert _raw_counts(warehouse) == expected


def test_failed_load_leaves_previous_tables_untouched(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    good = write_landing_files(generate_raw_data(n_customers=20), tmp_path / "good")
    before = load_files_into_warehouse(warehouse, good)

    broken = write_landing_files(generate_raw_data(n_customers=40), tmp_path / "broken")
    with open(broken["payments"], "a", encoding="utf-8") as handle:
        handle.write("not-a-number,1,credit_card,100\n")  # the last table to load fails to parse
    with pytest.raises(duckdb.Error):
        load_files_into_warehouse(warehouse, broken)

    assert _raw_counts(warehouse) == before, "customers and orders were rolled back with payments"


def test_load_without_a_landed_file_names_the_fix(tmp_path):
    files = write_landing_files(generate_raw_data(n_customers=5), tmp_path)
    del files["orders"]
    with pytest.raises(ValueError, match=r"\['orders'\].*run the extract task first"):
        load_files_into_warehouse(tmp_path / "w.duckdb", files)


def test_landing_files_are_complete_csvs_with_no_leftover_temp_files(tmp_path):
    files = write_landing_files(generate_raw_data(n_customers=10), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{t}.csv" for t in RAW_TABLES)
    header = open(files["orders"], encoding="utf-8").readline().strip()
    assert header == ",".join(RAW_TABLES["orders"])
