"""
The import contracts of pyproject.toml (``[tool.importlinter]``, run by ``make lint``) hold, and they bite.

The project's packages are copied with three offenders added: a module of the local dbt Cloud's model that
imports its API (a layer breach), two modules of its run engine that import each other (a circle, the
kind once held apart by function-level imports), and an ``include`` module that imports local-only code.
``lint-imports`` with the project's own configuration must refuse the copy, naming each offending
import, and accept the project itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
#: The root packages of ``[tool.importlinter]`` and where each lives.
PACKAGES = {
    "include": Path("include"),
    "dbt_cloud_local": Path("local/dbt_cloud_local"),
    "localdev": Path("local/localdev"),
    "astro_rehearsal": Path("local/astro_rehearsal"),
}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's configuration, on the packages found under ``root``."""
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'local'}", "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO_ROOT / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_project_keeps_its_import_contracts() -> None:
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture
def offending_copy(tmp_path: Path) -> Path:
    """The project's packages (sources only) plus a layer breach, a circle and an include breach."""
    for source in PACKAGES.values():
        shutil.copytree(REPO_ROOT / source, tmp_path / source, ignore=shutil.ignore_patterns("__pycache__"))
    package = tmp_path / "local" / "dbt_cloud_local"
    (package / "model" / "offender.py").write_text(
        "from dbt_cloud_local.api.errors import ApiError\n\nREFUSAL = ApiError\n"
    )
    (package / "runs" / "circle_a.py").write_text(
        "from dbt_cloud_local.runs import circle_b\n\nNEXT = circle_b\n"
    )
    (package / "runs" / "circle_b.py").write_text(
        "def previous():\n    from dbt_cloud_local.runs import circle_a  # avoid an import cycle\n\n"
        "    return circle_a\n"
    )
    (tmp_path / "include" / "offender.py").write_text("import localdev\n\nTOOLS = localdev\n")
    return tmp_path


def test_a_layer_breach_a_circle_and_local_code_in_include_are_refused(offending_copy: Path) -> None:
    result = lint_imports(offending_copy)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "The local dbt Cloud in layers: each imports only from those below it BROKEN" in report
    assert "dbt_cloud_local.model.offender -> dbt_cloud_local.api.errors" in report
    assert "No import cycles among the modules and packages of any project package BROKEN" in report
    assert "No cycles are allowed in dbt_cloud_local.runs" in report
    assert ".circle_a -> .circle_b" in report or ".circle_b -> .circle_a" in report
    assert "include (in the Airflow image) imports nothing that lives only in local/ BROKEN" in report
    assert "include.offender -> localdev" in report
    assert "The local tools build on the local dbt Cloud, which knows neither KEPT" in report
