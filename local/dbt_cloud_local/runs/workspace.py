"""
The files of one run under ``<data-dir>/runs/<run_id>/``.

Layout::

    project/              isolated working copy of the dbt project (no target/, logs/, dbt_packages/):
                          step 1 (``Clone git repository``) makes it
    profile/profiles.yml  the run's profile, written by step 2 (``Create profile from connection``)
    steps/<n>/target/     dbt's target path for step n (manifest.json, run_results.json, ...)
    steps/<n>/logs/       dbt's log path for step n (dbt.log: the debug log)
    steps/<n>/console.log the output of step n (the run step's ``logs``): dbt's console, or what the
                          clone and profile steps did

Artifact paths from clients are resolved strictly inside ``steps/<n>/target``.
"""

from __future__ import annotations

import shutil
from collections import deque
from pathlib import Path, PurePosixPath

#: Directories never copied into a run's working copy (dbt Cloud starts from a clean checkout).
COPY_IGNORE = ("target", "logs", "dbt_packages", ".git", "__pycache__", ".venv", "*.duckdb", "*.duckdb.wal")
#: Files in a target directory that are dbt internals, not artifacts.
HIDDEN_ARTIFACTS = frozenset({"partial_parse.msgpack", "graph.gpickle"})


class ArtifactPathError(ValueError):
    """An artifact path is not a plain relative path inside the step's target directory."""


def tail_text(path: Path, lines: int) -> tuple[str, bool]:
    """Return the last ``lines`` lines of a text file and whether anything was cut."""
    if not path.exists():
        return "", False
    with path.open("rb") as handle:
        kept = deque(handle, maxlen=lines)
        size = handle.seek(0, 2)
    data = b"".join(kept)
    return data.decode("utf-8", errors="replace"), size > len(data)


class RunWorkspace:
    def __init__(self, data_dir: Path, run_id: int) -> None:
        self.root = data_dir / "runs" / str(run_id)
        self.project = self.root / "project"

    @property
    def profile_dir(self) -> Path:
        """Where the run's ``profiles.yml`` is (``DBT_PROFILES_DIR`` of its dbt processes)."""
        return self.root / "profile"

    def step_dir(self, index: int) -> Path:
        return self.root / "steps" / str(index)

    def target(self, index: int) -> Path:
        return self.step_dir(index) / "target"

    def logs(self, index: int) -> Path:
        return self.step_dir(index) / "logs"

    def console(self, index: int) -> Path:
        return self.step_dir(index) / "console.log"

    def debug_log(self, index: int) -> Path:
        return self.logs(index) / "dbt.log"

    def prepare(self, source: Path) -> list[str]:
        """
        Copy the dbt project into ``project/`` (symlinks are copied as links, never followed); return
        what was done, as log lines for the run's clone step.
        """
        if self.project.exists():
            shutil.rmtree(self.project)
        self.root.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, self.project, symlinks=True, ignore=shutil.ignore_patterns(*COPY_IGNORE))
        files = [path for path in self.project.rglob("*") if path.is_file() and not path.is_symlink()]
        size = sum(path.stat().st_size for path in files)
        return [
            f"Cloning the dbt project {source}",
            "  (the local dbt Cloud copies the project folder as it is: no git remote, no commit)",
            f"  into the run's working copy {self.project}",
            f"  without {', '.join(COPY_IGNORE)}, as a fresh checkout has none",
            f"Copied {len(files)} files ({size / 1024:.1f} KiB)",
        ]

    def prepare_step(self, index: int) -> None:
        self.target(index).mkdir(parents=True, exist_ok=True)
        self.logs(index).mkdir(parents=True, exist_ok=True)

    def carry_partial_parse(self, index: int) -> None:
        """Seed step ``index`` with the latest earlier step's parse cache, so only the first step that
        parses the project does it from scratch."""
        for earlier in range(index - 1, 0, -1):
            cache = self.target(earlier) / "partial_parse.msgpack"
            if cache.exists():
                shutil.copyfile(cache, self.target(index) / "partial_parse.msgpack")
                return

    def list_artifacts(self, index: int) -> list[str]:
        target = self.target(index)
        if not target.is_dir():
            return []
        return sorted(
            path.relative_to(target).as_posix()
            for path in target.rglob("*")
            if path.is_file() and not path.is_symlink() and path.name not in HIDDEN_ARTIFACTS
        )

    def resolve_artifact(self, index: int, relative: str) -> Path:
        """
        Map a client-supplied artifact path to a file inside the step's target directory.

        :raises ArtifactPathError: the path is absolute, climbs out, or names a hidden file.
        """
        if not relative or "\x00" in relative or "\\" in relative:
            raise ArtifactPathError("artifact paths are plain relative paths such as 'manifest.json'")
        pure = PurePosixPath(relative)
        if pure.is_absolute() or ".." in pure.parts or relative.startswith("~"):
            raise ArtifactPathError(f"artifact path {relative!r} must stay inside the run's target directory")
        if pure.name in HIDDEN_ARTIFACTS:
            raise ArtifactPathError(f"{pure.name} is not an artifact")
        target = self.target(index).resolve()
        candidate = (target / pure).resolve()
        if not candidate.is_relative_to(target):
            raise ArtifactPathError(f"artifact path {relative!r} must stay inside the run's target directory")
        return candidate
