"""The supported Python range is one fact (the Makefile's PYTHON_MIN) that everything else agrees with.

The code needs 3.11 (``datetime.UTC``, ``tomllib``); the locks must install on it and on the newer
Python of the Astro Runtime image, so they are resolved for every Python from PYTHON_MIN on.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def python_min() -> str:
    match = re.search(r"^PYTHON_MIN := (\d+\.\d+)$", (PROJECT_ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match, "the Makefile declares PYTHON_MIN := X.Y"
    return match.group(1)


def test_readme_ruff_and_locks_agree_with_the_makefile() -> None:
    minimum = python_min()
    readme_head = "\n".join((PROJECT_ROOT / "README.md").read_text().splitlines()[:8])
    assert f"Python >= {minimum}" in readme_head
    ruff = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == "py" + minimum.replace(".", "")
    # --universal: one resolution valid for every Python from the minimum on (the Runtime's included).
    for lock in ("local.lock", "dbt.lock"):
        header = (PROJECT_ROOT / "constraints" / lock).read_text().splitlines()[1]
        assert f"--universal --python-version {minimum} " in header, f"{lock}: re-run `make lock`"


def test_this_interpreter_is_supported() -> None:
    assert sys.version_info >= tuple(int(part) for part in python_min().split("."))


def test_make_refuses_an_older_python_shim(tmp_path: Path) -> None:
    """No older CPython is installable here, so a shim reports 3.10 to the Makefile's check."""
    shim = tmp_path / "python3.10"
    shim.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "sys.version_info = (3, 10, 14, 'final', 0)\nsys.version = '3.10.14 (shim)'\n"
        "exec(sys.argv[2])\n"
    )
    shim.chmod(0o755)
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "--no-print-directory", f"PYTHON={shim}", f"VENV={venv}", f"{venv}/.synced"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert f"Python >= {python_min()} is required, found 3.10.14" in result.stderr
    assert not venv.exists(), "nothing is installed for an unsupported Python"
