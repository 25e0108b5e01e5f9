"""How every DAG here talks to dbt Cloud: one connection, one account, one set of hook settings.

Kept in one place so that pointing the project at another dbt Cloud connection, or tuning how
patiently the provider retries the API, is one edit. Operators and sensors get these through
``default_args`` (see ``include.dag_defaults``); Python tasks call :func:`dbt_cloud_hook`.

The provider's synchronous calls do not retry transient errors: its ``HttpHook`` turns a 429/5xx
answer into a bare ``AirflowException`` that its retry policy does not recognise, and it ignores
``Retry-After``. :class:`ResilientDbtCloudHook` fixes that for Python tasks and for
``include.dbt_cloud.operator``; the deferred wait (the triggerer's async hook) already retries.
"""

from __future__ import annotations

import email.utils
import time
from typing import TYPE_CHECKING, Any

import requests
import tenacity
from airflow.providers.common.compat.sdk import AirflowException
from airflow.providers.dbt.cloud.hooks.dbt import DbtCloudHook

if TYPE_CHECKING:
    from requests import Response

#: The Airflow connection seeded from airflow_settings.yaml (or AIRFLOW_CONN_DBT_CLOUD in .env).
DBT_CLOUD_CONN_ID = "dbt_cloud"

#: Passed to DbtCloudHook: retry transient API errors (429/5xx, connection resets) with backoff.
#: ``retry_limit`` counts attempts: 8 survives a dbt Cloud answering 30 % of requests with errors
#: (0.3**8: one call in 15,000 fails) and, with the backoff, about two minutes of outage.
HOOK_PARAMS = {"retry_limit": 8, "retry_delay": 2.0, "timeout_seconds": 30}
#: Longest wait between two attempts, whatever ``Retry-After`` asks for.
MAX_RETRY_WAIT_SECONDS = 60.0
#: Statuses that say "try again later"; every other error is the caller's to fix.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def dbt_cloud_args(account_id: int | None = None) -> dict[str, Any]:
    """``default_args`` that every dbt Cloud operator and sensor accepts. Without ``account_id`` the
    provider uses the connection's login, which is the account id."""
    args: dict[str, Any] = {"dbt_cloud_conn_id": DBT_CLOUD_CONN_ID, "hook_params": HOOK_PARAMS}
    if account_id is not None:
        args["account_id"] = account_id
    return args


def dbt_cloud_hook() -> ResilientDbtCloudHook:
    """The hook for Python tasks, with the same connection and retry settings as the operators."""
    return ResilientDbtCloudHook(DBT_CLOUD_CONN_ID, **HOOK_PARAMS)


class DbtCloudApiError(AirflowException, requests.HTTPError):
    """An error answer of the dbt Cloud API, with its response (status, ``Retry-After``, body).

    Still an ``AirflowException`` (what the provider raises, so its callers' handling is unchanged),
    and an ``HTTPError`` carrying the response, so retry policies and callers can read the status.
    """

    def __init__(self, response: Response) -> None:
        detail = (response.text or "")[:500]
        super().__init__(f"{response.status_code}:{response.reason} {detail}".strip(), response=response)
        self.response = response

    @property
    def status_code(self) -> int:
        return self.response.status_code


def is_transient(exception: BaseException) -> bool:
    """A 429/5xx answer, or a connection that failed or timed out: worth another attempt."""
    if isinstance(exception, requests.HTTPError) and exception.response is not None:
        return exception.response.status_code in TRANSIENT_STATUSES
    return isinstance(exception, (requests.ConnectionError, requests.Timeout))


def retry_after_seconds(exception: BaseException | None) -> float | None:
    """The ``Retry-After`` of an error answer, in seconds (delta-seconds or an HTTP date), or None."""
    response = getattr(exception, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class WaitRetryAfter(tenacity.wait.wait_base):
    """Wait what the server's ``Retry-After`` asks (capped), else exponential backoff with jitter."""

    def __init__(self, initial: float, maximum: float = MAX_RETRY_WAIT_SECONDS) -> None:
        self.maximum = maximum
        self.fallback = tenacity.wait_exponential(multiplier=initial, max=maximum) + tenacity.wait_random(
            0, initial
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        asked = retry_after_seconds(outcome.exception() if outcome is not None else None)
        return min(asked, self.maximum) if asked is not None else self.fallback(retry_state)


def transient_retry_args(attempts: int, initial_wait: float, log: Any, retry: Any = None) -> dict[str, Any]:
    """tenacity arguments: retry transient errors ``attempts`` times in all, honouring ``Retry-After``."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        log.warning(
            "dbt Cloud API call failed (attempt %d of %d): %s; trying again in %.1f s.",
            state.attempt_number,
            attempts,
            state.outcome.exception() if state.outcome else "?",
            state.next_action.sleep if state.next_action else 0,
        )

    return {
        "stop": tenacity.stop_after_attempt(attempts),
        "wait": WaitRetryAfter(initial_wait),
        "retry": retry or tenacity.retry_if_exception(is_transient),
        "before_sleep": before_sleep,
        "reraise": True,
    }


class ResilientDbtCloudHook(DbtCloudHook):
    """The provider's hook, whose synchronous calls retry transient errors and honour ``Retry-After``.

    Reads (GET) and cancels (idempotent) are retried ``retry_limit`` attempts in all. Other writes
    (POST: trigger, retry) are retried here only after a 429, which dbt Cloud answers before doing
    anything; after a 5xx or a reset connection the write may have happened, so it is the caller's
    to look before writing again (``include.dbt_cloud.operator`` does).
    """

    _endpoint = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_args = transient_retry_args(
            self.retry_limit, self.retry_delay, self.log, tenacity.retry_if_exception(self._may_retry)
        )

    def run(self, endpoint: str | None = None, *args: Any, **kwargs: Any) -> Any:
        self._endpoint = endpoint or ""  # what _may_retry needs to know, besides the method
        return super().run(endpoint, *args, **kwargs)

    def _may_retry(self, exception: BaseException) -> bool:
        if not is_transient(exception):
            return False
        if self.method == "GET" or self._endpoint.endswith("/cancel/"):
            return True
        response = getattr(exception, "response", None)
        return response is not None and response.status_code == 429

    def check_response(self, response: Response) -> None:
        if response.status_code >= 400:
            raise DbtCloudApiError(response)
