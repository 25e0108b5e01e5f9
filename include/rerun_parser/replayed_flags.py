"""The previous command's flags that a rerun must repeat, as ``dbt retry`` replays them.

dbt 1.11 ``RetryTask`` rebuilds the previous invocation's flags from run_results ``args`` minus
``IGNORE_PARENT_FLAGS`` (paths, ``warn_error``, ``defer_state``); the node selection flags
(``select``, ``exclude``, ``selector``, ``resource_types``…) are replayed too but have no effect,
because retry swaps the selection for the failed unique_ids. So the rerun repeats the flags that
change *how* nodes run (vars, full refresh, target, threads, defer/state, …), never the selection,
and never a path (the caller knows where its project and target live).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

#: run_results ``args`` key -> how to turn its value into CLI arguments (empty: default, omit).
FlagRenderer = Callable[[Any], list[str]]


def _switch(flag: str) -> FlagRenderer:
    return lambda value: [flag] if value is True else []


def _switch_off(flag: str) -> FlagRenderer:
    return lambda value: [flag] if value is False else []


def _option(flag: str) -> FlagRenderer:
    return lambda value: [flag, str(value)] if value not in (None, "") else []


def _json_option(flag: str, default: Any) -> FlagRenderer:
    return lambda value: [flag, json.dumps(value, default=str)] if value not in (None, default) else []


def _warn_error_options(value: Any) -> list[str]:
    if not isinstance(value, dict) or not any(value.values()):
        return []
    return ["--warn-error-options", json.dumps(value, default=str)]


REPLAYED_FLAGS: dict[str, FlagRenderer] = {
    "target": _option("--target"),
    "profile": _option("--profile"),
    "threads": _option("--threads"),
    "vars": _json_option("--vars", {}),
    "full_refresh": _switch("--full-refresh"),
    "fail_fast": _switch("--fail-fast"),
    "empty": _switch("--empty"),
    "store_failures": _switch("--store-failures"),
    "defer": _switch("--defer"),
    "state": _option("--state"),
    "favor_state": _switch("--favor-state"),
    "sample": _option("--sample"),
    "event_time_start": _option("--event-time-start"),
    "event_time_end": _option("--event-time-end"),
    "warn_error_options": _warn_error_options,
    "introspect": _switch_off("--no-introspect"),
}


def replayed_flags(args: Mapping[str, Any]) -> list[str]:
    """CLI flags reproducing the non-default, behaviour-changing settings of a previous invocation."""
    rendered: list[str] = []
    for key, render in REPLAYED_FLAGS.items():
        if key in args:
            rendered += render(args[key])
    return rendered
