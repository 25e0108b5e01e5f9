"""``tests/`` is what the Astro image runs: nothing in it may import code that only exists locally.

``astro dev pytest`` (no argument) runs ``pytest tests/`` in the built image, where ``local/`` does not
exist (``.dockerignore``). A file under ``tests/`` that imports the local dbt Cloud, the no-Docker stack
or the container rehearsal fails there at collection, so the check runs on every file's imports, here
and in the image, before anything else would fail more obscurely.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS_ROOT = Path(__file__).resolve().parent

#: The packages under local/ (never in the image). local/tests/test_image_boundary.py keeps this list
#: equal to what local/ really holds.
LOCAL_ONLY_PACKAGES = frozenset({"astro_rehearsal", "dbt_cloud_local", "localdev"})


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def local_only_imports(root: Path = TESTS_ROOT) -> list[str]:
    """``path:line: module`` for each import under ``root`` that only resolves outside the image."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _imported_modules(tree):
            parts = module.split(".")
            local_package = parts[0] in LOCAL_ONLY_PACKAGES or parts[0] == "local"
            # `tests.<suite>` also resolves to local/tests/<suite> on a developer's machine (local/ is an
            # import root there): only the suites that exist under tests/ are in the image.
            local_suite = parts[0] == "tests" and len(parts) > 1 and not _exists_under(root, parts[1:])
            if local_package or local_suite:
                offenders.append(f"{path.relative_to(root.parent)}:{line}: {module}")
    return offenders


def _exists_under(root: Path, parts: list[str]) -> bool:
    target = root.joinpath(*parts[:-1])
    return (target / parts[-1]).is_dir() or (target / f"{parts[-1]}.py").is_file()


def test_no_file_under_tests_imports_local_only_code() -> None:
    offenders = local_only_imports()
    assert offenders == [], (
        "These imports exist only on a developer's machine, so `astro dev pytest` fails on them in the "
        "image. Move the test to local/tests/ (where local-only code is importable):\n" + "\n".join(offenders)
    )


def test_a_synthetic_offender_is_caught(tmp_path: Path) -> None:
    suite = tmp_path / "tests"
    (suite / "dags").mkdir(parents=True)
    (suite / "dags" / "helpers.py").write_text("VALUE = 1\n")
    (suite / "test_ok.py").write_text(
        "import json\nfrom include.paths import data_dir\nfrom tests.dags import helpers\n"
    )
    (suite / "test_offender.py").write_text(
        "import os\n\nfrom dbt_cloud_local.testing import LocalDbtCloud\nimport localdev.stack\n"
        "from tests.e2e.pipeline_harness import Pipeline\n"
    )
    assert local_only_imports(suite) == [
        "tests/test_offender.py:3: dbt_cloud_local.testing",
        "tests/test_offender.py:4: localdev.stack",
        "tests/test_offender.py:5: tests.e2e.pipeline_harness",
    ]
