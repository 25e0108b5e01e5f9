"""``python -m include.rerun_parser``: the command on stdout, problems on stderr, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.rerun_parser", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )


def test_prints_one_exact_command_line():
    folder = FIXTURES / "package_model_same_name"
    result = cli(folder / "run_results.json", "--manifest", folder / "manifest.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "dbt build --select fqn:jaffle_utils.stg_payments+ --indirect-selection empty\n"
    assert result.stderr == ""


def test_nothing_to_rerun_exits_zero_with_empty_stdout_and_a_reason():
    folder = FIXTURES / "nothing_to_rerun"
    result = cli(folder / "run_results.json", "--manifest", folder / "manifest.json")
    assert (result.returncode, result.stdout) == (0, "")
    assert "nothing to rerun" in result.stderr


def test_bad_input_exits_two_naming_the_file(tmp_path):
    broken = tmp_path / "run_results.json"
    broken.write_text('{"metadata": {')
    result = cli(broken)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{broken}: is not valid JSON" in result.stderr


def test_without_manifest_warns_that_selection_is_not_proven_exact():
    result = cli(FIXTURES / "versioned_model" / "run_results.json")
    assert result.returncode == 0
    assert "fqn:dim_customers.v1,package:jaffle_shop,resource_type:model" in result.stdout
    assert "warning" in result.stderr


def test_statuses_option_narrows_the_rerun():
    folder = FIXTURES / "model_error_skips_downstream"
    result = cli(folder / "run_results.json", "--manifest", folder / "manifest.json", "--statuses", "error")
    assert (
        result.stdout == "dbt build --select fqn:jaffle_shop.staging.stg_orders --indirect-selection empty\n"
    )
