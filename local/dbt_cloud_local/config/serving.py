"""
What only a serving server needs from its config, checked before it listens: each project folder holds
a dbt_project.yml, each dbt executable can run, the data dir is writable. ``env`` and ``env-var`` load
the config without these checks, since they need neither dbt nor the project folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dbt_cloud_local.config.keys import config_error
from dbt_cloud_local.config.settings import ENV_DBT_EXECUTABLE, Config, ConfigError
from dbt_cloud_local.model.resources import Environment, Project


def require_writable_dir(path: Path, option: str = "--data-dir") -> Path:
    """Create ``path`` if needed and prove a file can be written there; return it resolved."""
    resolved = path.expanduser().resolve()
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=resolved):
            pass
    except OSError as exc:
        raise ConfigError(
            f"{option} {resolved}: cannot write there ({exc.strerror or exc}). "
            f"Fix: pass a {option} that you can write to, e.g. {option} .state/dbt-cloud-local."
        ) from exc
    return resolved


def _check_project_dir(project: Project, key: str) -> None:
    folder = project.dbt_project_dir
    if not folder.is_dir():
        problem = f"{folder} is not a folder" if folder.exists() else f"{folder} does not exist"
    elif not (folder / "dbt_project.yml").is_file():
        problem = f"{folder} holds no dbt_project.yml"
    else:
        return
    raise config_error(
        key, problem, "point it at the dbt project's folder (relative paths start at the config file)"
    )


def _check_executable(environment: Environment, key: str) -> None:
    executable = environment.dbt_executable
    if executable.is_file() and os.access(executable, os.X_OK):
        return
    problem = f"{executable} is not executable" if executable.exists() else f"{executable} does not exist"
    if os.environ.get(ENV_DBT_EXECUTABLE):
        raise ConfigError(
            f"environment variable {ENV_DBT_EXECUTABLE}: {problem}. "
            "Fix: point it at an installed dbt executable, or unset it to use the config's dbt_executable."
        )
    raise config_error(
        key, problem, "run `make venv` (it installs .venv-dbt/bin/dbt) or set it to a dbt executable"
    )


def validate_for_serving(config: Config, data_dir: Path) -> Path:
    """
    Check what a serving server needs and :func:`load_config` leaves alone: each project folder holds
    a dbt_project.yml, each dbt executable can run, the data dir is writable. Otherwise the server
    would start and every run would fail later, far from the cause. Returns the resolved data dir.
    """
    for index, project in enumerate(config.projects.values()):
        _check_project_dir(project, f"projects[{index}].dbt_project_dir")
    for index, environment in enumerate(config.environments.values()):
        _check_executable(environment, f"environments[{index}].dbt_executable")
    return require_writable_dir(data_dir)
