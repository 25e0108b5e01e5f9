"""The README is the front door: its map names every DAG and every shared module, its links lead somewhere.

A module added without a line in the map is a module a newcomer cannot find; a page under docs/ that the
README does not link is a page nobody reads.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def map_rows() -> list[tuple[str, str]]:
    """``(path cell, description)`` of each row of the "Map of the repo" table."""
    section = README.split("## Map of the repo", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and not set(cells[0]) <= {"-", " "}:
            rows.append((cells[0], cells[1]))
    return rows


def missing_from_map(paths: list[Path], rows: list[tuple[str, str]]) -> list[str]:
    """The paths that no row names: by full path, or by file name in the row of their folder."""
    missing = []
    for path in paths:
        relative = path.relative_to(ROOT).as_posix()
        folder = f"`{path.parent.relative_to(ROOT).as_posix()}/`"
        named = any(f"`{relative}`" in cell for cell, _ in rows) or any(
            folder in cell and f"`{path.name}`" in description for cell, description in rows
        )
        if not named:
            missing.append(relative)
    return missing


def shared_modules() -> list[Path]:
    return sorted(
        path for path in (ROOT / "include").rglob("*.py") if path.name not in ("__init__.py", "__main__.py")
    )


def test_every_dag_and_include_module_is_on_the_map() -> None:
    dags = sorted((ROOT / "dags").glob("*.py"))
    assert missing_from_map([*dags, *shared_modules()], map_rows()) == []


def test_a_module_left_off_the_map_is_named(tmp_path: Path) -> None:
    rows = [("`include/dbt_cloud/`", "`hook.py` (the hook)"), ("`dags/a.py`", "a DAG")]
    paths = [ROOT / "dags/a.py", ROOT / "include/dbt_cloud/hook.py", ROOT / "include/dbt_cloud/new.py"]
    assert missing_from_map(paths, rows) == ["include/dbt_cloud/new.py"]


def test_every_page_under_docs_is_linked_and_every_link_resolves() -> None:
    links = set(re.findall(r"\]\(((?:docs|local)/[^)#]+)", README))
    assert {page.relative_to(ROOT).as_posix() for page in (ROOT / "docs").glob("*.md")} <= links
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\((?!https?://)([^)#]+)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"


def test_the_front_page_stays_short() -> None:
    assert len(README.splitlines()) <= 220, "the depth belongs on a page under docs/"
