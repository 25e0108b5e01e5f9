"""The rehearsal's copies of what astro-cli v1.45 does, checked against the CLI's own cases.

The expected values come from the CLI's source and its tests (``pkg/proxy/hostname_test.go``,
``pkg/fileutil.AddLineToFile``), not from the rehearsal's code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from astro_rehearsal.astro_cli import ASTRO_RUN_DAG_COMMENT, requirements_with_astro_run_dag, ui_address


@pytest.mark.parametrize(
    ("project_dir", "hostname"),
    [  # TestDeriveHostname in astro-cli's pkg/proxy/hostname_test.go
        ("my-project", "my-project.localhost"),
        ("My-Project", "my-project.localhost"),
        ("my project @v2", "my-project-v2.localhost"),
        ("my_project_v2", "my-project-v2.localhost"),
        ("---my-project", "my-project.localhost"),
        ("my-project---", "my-project.localhost"),
        ("my.project.v2", "my-project-v2.localhost"),
    ],
)
def test_the_ui_address_is_the_one_the_cli_prints(tmp_path: Path, project_dir: str, hostname: str) -> None:
    assert ui_address(tmp_path / project_dir) == f"http://{hostname}:6563"


def test_the_build_sees_astro_run_dag_appended_and_the_file_comes_back_unchanged(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    original = b"# pins\napache-airflow-providers-dbt-cloud==4.11.1\n"
    requirements.write_bytes(original)

    with requirements_with_astro_run_dag(tmp_path):
        during = requirements.read_text()

    # AddLineToFile writes "\n" + line + " " + comment at the end of the file.
    assert during == original.decode() + f"\nastro-run-dag {ASTRO_RUN_DAG_COMMENT}"
    assert requirements.read_bytes() == original


def test_the_file_is_restored_even_when_the_build_fails(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_bytes(b"duckdb==2.0.1")
    with pytest.raises(RuntimeError), requirements_with_astro_run_dag(tmp_path):
        raise RuntimeError("build failed")
    assert requirements.read_bytes() == b"duckdb==2.0.1"
