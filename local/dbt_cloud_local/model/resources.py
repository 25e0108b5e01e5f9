"""
The resources a dbt Cloud account holds, as the server reads them: accounts, projects, environments
and jobs. ``config`` declares them, the store keeps the jobs, and the API and the runs read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Account:
    id: int
    name: str


@dataclass(frozen=True)
class Project:
    id: int
    account_id: int
    name: str
    dbt_project_dir: Path


@dataclass(frozen=True)
class Environment:
    id: int
    account_id: int
    project_id: int
    name: str
    deployment_type: str
    dbt_executable: Path
    dbt_version: str
    env: dict[str, str]
    warehouse_env_var: str
    custom_branch: str


@dataclass(frozen=True)
class Job:
    """
    A dbt Cloud job. The typed fields are what runs read; ``definition`` holds every writable field of
    dbt Cloud's job object (``settings``, ``triggers``, ``schedule``, ``job_type``...) as the API or a
    declaration last wrote it (empty: the defaults of ``job_definition.definition_of``). ``seed_key``
    names the declaration a declared job comes from (``config:<id>``, ``jobs_as_code:<identifier>``);
    see store/jobs.py.
    """

    id: int
    account_id: int
    project_id: int
    environment_id: int
    name: str
    description: str
    execute_steps: tuple[str, ...]
    generate_docs: bool
    run_generate_sources: bool
    threads: int | None
    target_name: str | None
    timeout_seconds: int
    created_at: str
    updated_at: str | None = None
    #: 1 active, 2 deleted (dbt Cloud soft-deletes jobs: their runs stay readable).
    state: int = 1
    definition: Mapping[str, Any] = field(default_factory=dict, hash=False)
    seed_key: str | None = None
    #: A declared job's environment variable overrides (jobs file ``custom_environment_variables``),
    #: seeded into the store's job scope; runs read the store (store/env_vars.py), not this field.
    env_overrides: Mapping[str, str] = field(default_factory=dict, hash=False)
