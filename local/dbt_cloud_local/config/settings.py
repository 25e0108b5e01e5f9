"""
The loaded configuration: what config.yml declares (accounts, projects, environments, jobs, webhook
subscriptions) plus the server settings, API tokens and fault injection, validated by
:mod:`dbt_cloud_local.config.loader`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dbt_cloud_local.faults import FaultSettings
from dbt_cloud_local.model.resources import Account, Environment, Job, Project

#: The default config shipped with the package.
DEFAULT_CONFIG_PATH = Path(__file__).parents[1] / "config.yml"
#: Project root: base for ``dbt_executable`` and path-like environment values. This package lives in
#: ``local/dbt_cloud_local/config/``, three levels below it (``/usr/local/airflow`` in the containers).
DEFAULT_ROOT = Path(__file__).resolve().parents[3]

ENV_API_TOKEN = "DBT_CLOUD_LOCAL_API_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_DBT_EXECUTABLE = "DBT_CLOUD_LOCAL_DBT_EXECUTABLE"


class ConfigError(ValueError):
    """The configuration file is invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class ServerSettings:
    extra_hostnames: tuple[str, ...] = ()
    run_slots: int = 2
    page_size: int = 100
    cancel_grace_seconds: float = 10.0
    log_tail_lines: int = 1000


@dataclass(frozen=True)
class DeclaredWebhook:
    """A ``webhooks:`` entry: a subscription the server (re)creates at start, its secret read from
    the environment variable ``hmac_secret_env`` (never from the file)."""

    name: str
    account_id: int
    client_url: str
    client_url_env: str | None
    hmac_secret_env: str
    event_types: tuple[str, ...]
    job_ids: tuple[int, ...]
    active: bool


@dataclass(frozen=True)
class Config:
    """A validated configuration. Look-ups raise ``KeyError`` for unknown ids."""

    path: Path
    root: Path
    server: ServerSettings
    api_tokens: tuple[str, ...] = field(repr=False)
    accounts: dict[int, Account]
    projects: dict[int, Project]
    environments: dict[int, Environment]
    #: Loaded: the declared jobs (``jobs:`` and the ``jobs_as_code`` file). A serving server replaces
    #: this with the live ``store.jobs.JobRepository`` (declared + API-created jobs, from the store).
    jobs: Mapping[int, Job]
    faults: FaultSettings
    #: The accounts each token of ``api_tokens`` is limited to; None (a plain-string token): any account.
    token_accounts: dict[str, frozenset[int] | None] = field(default_factory=dict, repr=False)
    #: Webhook subscriptions declared under ``webhooks:`` (see webhooks.declared.seed_declared).
    webhooks: tuple[DeclaredWebhook, ...] = ()

    def accounts_for(self, token: str) -> frozenset[int] | None:
        """The accounts ``token`` is limited to, or None when it may use any account."""
        return self.token_accounts.get(token, frozenset())


def env_tokens(environ: Mapping[str, str]) -> list[str]:
    """The tokens ``DBT_CLOUD_LOCAL_API_TOKEN`` sets (comma-separated), in order; empty when unset."""
    return [token.strip() for token in environ.get(ENV_API_TOKEN, "").split(",") if token.strip()]
