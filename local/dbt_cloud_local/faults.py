"""
Fault injection: added latency and HTTP 429/5xx answers, to exercise clients' retry paths for real.

Settings come from the config's ``faults:`` section or CLI flags, and can be replaced at runtime
through the token-protected ``/_local/faults`` endpoint. Only API routes are affected (``/`` and
``/api/...``); the admin endpoint, health check and HTML pages never fail, so a test can always
switch faults off again.

Shape::

    faults:
      latency_ms: 0            # added to every API request
      error_rate: 0.0          # fraction of API requests answered with an error
      error_statuses: [503]    # statuses drawn from for error_rate
      seed: null               # fix the random sequence for reproducible runs
      step_delay_ms: 0         # wait before each step of a run starts: holds runs in flight (slow warehouse)
      rules:                   # targeted faults, checked before error_rate
        - method: GET          # optional; any method when absent
          path: "^/api/v2/accounts/\\d+/runs/\\d+/$"   # regular expression on the path
          status: 503
          rate: 1.0            # probability for each matching request
          times: 2             # optional: only the first N matching requests
          after: false         # true: carry the request out, then answer the error instead (the
                               # answer to a write that dbt Cloud made is lost: proxy timeout, reset)
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field, replace
from typing import Any

ALLOWED_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FaultRule:
    path: re.Pattern[str]
    status: int
    method: str | None = None
    rate: float = 1.0
    times: int | None = None
    after: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.path.search(path))

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path.pattern,
            "status": self.status,
            "rate": self.rate,
            "times": self.times,
            "after": self.after,
        }


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: int = 0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (503,)
    seed: int | None = None
    rules: tuple[FaultRule, ...] = field(default=())
    step_delay_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "step_delay_ms": self.step_delay_ms,
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "error_statuses": list(self.error_statuses),
            "seed": self.seed,
            "rules": [rule.as_dict() for rule in self.rules],
        }


def _status(value: Any, where: str) -> int:
    if not isinstance(value, int) or value not in ALLOWED_STATUSES:
        raise ValueError(f"{where} must be one of {sorted(ALLOWED_STATUSES)}, got {value!r}")
    return value


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where} must be a number between 0 and 1, got {value!r}")
    return float(value)


def parse_fault_settings(raw: dict[str, Any]) -> FaultSettings:
    """Validate a ``faults`` mapping; raises ``ValueError`` naming the bad key."""
    if not isinstance(raw, dict):
        raise ValueError("must be a mapping")
    unknown = set(raw) - {"latency_ms", "error_rate", "error_statuses", "seed", "rules", "step_delay_ms"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    latency = raw.get("latency_ms") or 0
    if isinstance(latency, bool) or not isinstance(latency, int) or not 0 <= latency <= 60_000:
        raise ValueError(f"latency_ms must be an integer between 0 and 60000, got {latency!r}")
    step_delay = raw.get("step_delay_ms") or 0
    if isinstance(step_delay, bool) or not isinstance(step_delay, int) or not 0 <= step_delay <= 600_000:
        raise ValueError(f"step_delay_ms must be an integer between 0 and 600000, got {step_delay!r}")
    statuses = raw.get("error_statuses") or [503]
    if not isinstance(statuses, list):
        raise ValueError("error_statuses must be a list")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    rules = []
    for index, rule in enumerate(raw.get("rules") or []):
        where = f"rules[{index}]"
        if not isinstance(rule, dict) or "path" not in rule or "status" not in rule:
            raise ValueError(f"{where} needs `path` (a regular expression) and `status`")
        try:
            pattern = re.compile(str(rule["path"]))
        except re.error as exc:
            raise ValueError(f"{where}.path is not a valid regular expression: {exc}") from exc
        method = rule.get("method")
        times = rule.get("times")
        after = rule.get("after", False)
        if not isinstance(after, bool):
            raise ValueError(f"{where}.after must be true or false, got {after!r}")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"{where}.times must be a positive integer")
        rules.append(
            FaultRule(
                path=pattern,
                status=_status(rule["status"], f"{where}.status"),
                method=str(method).upper() if method else None,
                rate=_rate(rule.get("rate", 1.0), f"{where}.rate"),
                times=times,
                after=after,
            )
        )
    return FaultSettings(
        latency_ms=latency,
        error_rate=_rate(raw.get("error_rate") or 0.0, "error_rate"),
        error_statuses=tuple(_status(s, "error_statuses[]") for s in statuses),
        seed=seed,
        rules=tuple(rules),
        step_delay_ms=step_delay,
    )


@dataclass(frozen=True)
class FaultDecision:
    latency_seconds: float
    status: int | None
    #: The request is carried out first and only its answer is replaced (a lost answer to a write).
    after: bool = False


class FaultInjector:
    """Thread-safe holder of the current settings; decides the fate of each API request."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._random = random.Random()  # noqa: S311 - fault injection, not cryptography
        self._remaining: dict[int, int | None] = {}
        self.injected = 0
        self.update(settings or FaultSettings())

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def update(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings
            self._random = random.Random(settings.seed)  # noqa: S311
            self._remaining = {index: rule.times for index, rule in enumerate(settings.rules)}
            self.injected = 0

    def with_overrides(self, **changes: Any) -> None:
        self.update(replace(self._settings, **changes))

    def decide(self, method: str, path: str) -> FaultDecision:
        with self._lock:
            settings = self._settings
            status, after = None, False
            for index, rule in enumerate(settings.rules):
                remaining = self._remaining.get(index)
                if remaining == 0 or not rule.matches(method, path):
                    continue
                if self._random.random() < rule.rate:
                    if remaining is not None:
                        self._remaining[index] = remaining - 1
                    status, after = rule.status, rule.after
                    break
            if status is None and settings.error_rate and self._random.random() < settings.error_rate:
                status = self._random.choice(settings.error_statuses)
            if status is not None:
                self.injected += 1
            return FaultDecision(latency_seconds=settings.latency_ms / 1000.0, status=status, after=after)
