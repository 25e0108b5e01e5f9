"""
What routes declare with ``Depends``: the server context, the token, and the objects a path names.

Authentication follows dbt Cloud: ``Authorization: Token <token>`` or ``Bearer <token>`` on every API
route, 401 otherwise. Tokens are compared in constant time and never logged. A token belongs to the
accounts the config gives it: another account's routes answer 403 (before anything else about the
account is looked at), an unknown account 404, and the account list shows only the token's accounts.

A path id is a positive integer within 64 bits (:data:`Id`; beyond that it cannot exist: 400, not 404).
Look-ups answer 404 for an id the account does not hold; deleted jobs (state 2) count as unknown.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi import Path as PathParam

from dbt_cloud_local.api.errors import ApiError
from dbt_cloud_local.config.settings import Config
from dbt_cloud_local.model.fields import MAX_INT64
from dbt_cloud_local.model.resources import Account, Job, Project
from dbt_cloud_local.runs.manager import RunManager
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.jobs import JobRepository, repository_of

#: A path id: dbt Cloud ids are positive; larger than 64 bits cannot exist (400, not 404).
Id = Annotated[int, PathParam(ge=1, le=MAX_INT64)]


@dataclass
class ServerContext:
    config: Config
    store: Store
    runner: RunManager
    data_dir: Path
    #: Base of the links the server hands out (run ``href``). None: the address the client used.
    public_url: str | None = None

    @property
    def jobs(self) -> JobRepository:
        return repository_of(self.config)


async def server_context(request: Request) -> ServerContext:
    return request.app.state.ctx


Context = Annotated[ServerContext, Depends(server_context)]


async def base_url(request: Request, ctx: Context) -> str:
    """Where run links point. In containers the API is reached as ``dbt-cloud-local:8443`` while a
    person opens links on the host (``localhost:8443``), so a configured public URL wins."""
    if ctx.public_url:
        return ctx.public_url
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"https://{host}"


BaseUrl = Annotated[str, Depends(base_url)]


# The token ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """The accounts the request's token may use; ``accounts`` None: every account."""

    accounts: frozenset[int] | None

    def allows(self, account_id: int) -> bool:
        return self.accounts is None or account_id in self.accounts

    def visible(self, config: Config) -> list[Account]:
        """The configured accounts the token may use, in config order."""
        return [account for account in config.accounts.values() if self.allows(account.id)]


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("token", "bearer") and token.strip():
        return token.strip()
    return None


def _matching_token(token: str | None, accepted: tuple[str, ...]) -> str | None:
    """The configured token equal to ``token``, or None."""
    if token is None:
        return None
    # Compare against every token so the time taken does not reveal which one matched.
    presented = token.encode()
    matches = [hmac.compare_digest(presented, candidate.encode()) for candidate in accepted]
    return next((candidate for candidate, match in zip(accepted, matches, strict=True) if match), None)


async def authenticated(request: Request, ctx: Context) -> Grant:
    """401 without a valid token; else the accounts it may use."""
    token = _matching_token(_presented_token(request), ctx.config.api_tokens)
    if token is None:
        raise ApiError(
            401,
            "Invalid token.",
            "Send 'Authorization: Token <api token>' with a token configured for the local server.",
            headers={"WWW-Authenticate": "Token"},
        )
    return Grant(ctx.config.accounts_for(token))


Granted = Annotated[Grant, Depends(authenticated)]


# What a path names --------------------------------------------------------------------------------


async def path_account(account_id: Id, grant: Granted, ctx: Context) -> Account:
    """The account of the path: 403 when the token may not use it, 404 when it does not exist."""
    if not grant.allows(account_id):
        raise ApiError(
            403,
            f"This token may not access account {account_id}.",
            "Fix: use a token listed for this account under `api_tokens` in the local server's config.",
        )
    account = ctx.config.accounts.get(account_id)
    if account is None:
        raise ApiError(404, f"Account {account_id} not found", "Check the connection's login (account id).")
    return account


PathAccount = Annotated[Account, Depends(path_account)]


async def path_project(project_id: Id, account: PathAccount, ctx: Context) -> Project:
    project = ctx.config.projects.get(project_id)
    if project is None or project.account_id != account.id:
        raise ApiError(404, f"Project {project_id} not found in account {account.id}")
    return project


PathProject = Annotated[Project, Depends(path_project)]


def active_job(job_id: Id, account: PathAccount, ctx: Context) -> Job:
    """An active job of the account; deleted jobs (state 2) answer 404 like unknown ones."""
    job = ctx.jobs.find(account.id, job_id)
    if job is None:
        raise ApiError(404, f"Job {job_id} not found in account {account.id}")
    return job


ActiveJob = Annotated[Job, Depends(active_job)]


def path_run(run_id: Id, account: PathAccount, ctx: Context) -> dict[str, Any]:
    run = ctx.store.get_run(run_id)
    if run is None or run["account_id"] != account.id:
        raise ApiError(404, f"Run {run_id} not found in account {account.id}")
    return run


PathRun = Annotated[dict[str, Any], Depends(path_run)]
