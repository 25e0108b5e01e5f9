"""Fixtures for the browser tests: a real local stack (``make up``) and a headless Chromium driving its UI.

The stack is the one the stack tests use (localdev/testing.py): free ports, its own state
folder, Postgres database and files, started and stopped through the real ``make up`` / ``make down``.

Chromium: ``$CHROMIUM`` if set, else the system one (``/usr/bin/chromium``, Debian's package), else
Playwright's own download. ``make browser`` provides one of them.

Screenshots of the key moments go to ``$BROWSER_SCREENSHOTS_DIR`` when set (``make screenshots`` sets it
to docs/screenshots), else to the test's tmp_path (kept by pytest for the last few sessions).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_stack import CHROMIUM_ARGS, VIEWPORT, BrowserStack, chromium_executable

from localdev.testing import IsolatedStack


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    target = os.environ.get("BROWSER_SCREENSHOTS_DIR", "").strip()
    folder = Path(target).resolve() if target else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrowserStack]:
    # Only the run the test triggers: unpausing must not add the @daily run of the latest interval.
    # A test module may add Airflow settings of its own (STACK_ENV).
    extra_env = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", **getattr(request.module, "STACK_ENV", {})}
    stack = IsolatedStack(tmp_path, extra_env=extra_env)
    try:
        result = stack.make("up", timeout=300)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"make up failed (exit {result.returncode}):\n{output[-4000:]}"
        yield BrowserStack(stack)
    finally:
        stack.make("down", timeout=120)
        stack.drop_database()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import Error, sync_playwright

    executable = chromium_executable()
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
            )
        except Error as exc:
            which = executable or "Playwright's own"
            pytest.fail(
                f"Cannot start Chromium ({which}): {exc.message.splitlines()[0]}\n"
                "Run `make browser` (installs Debian's chromium as root, else `playwright install chromium`),"
                " or point $CHROMIUM at a Chromium binary."
            )
        # The local dbt Cloud's certificate comes from its own CA, which Chromium does not know.
        context = browser.new_context(viewport=VIEWPORT, ignore_https_errors=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        try:
            yield page
        finally:
            (tmp_path / "browser-console.log").write_text("\n".join(console))
            context.close()
            browser.close()
