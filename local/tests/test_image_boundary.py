"""The line between the image's tests (``tests/``) and the local ones (``local/tests/``) stays where it is.

``tests/test_image_suite.py`` names the local-only packages without being able to see them (in the image
``local/`` does not exist); here, where it does, that list is checked against what ``local/`` holds.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_image_suite import LOCAL_ONLY_PACKAGES

LOCAL = Path(__file__).resolve().parents[1]


def test_the_image_suite_knows_every_local_package() -> None:
    packages = {path.parent.name for path in LOCAL.glob("*/__init__.py")}
    assert packages == LOCAL_ONLY_PACKAGES


def test_the_image_does_not_receive_local_code() -> None:
    ignored = (LOCAL.parent / ".dockerignore").read_text().splitlines()
    assert "local/" in ignored
    assert not any(line.startswith("tests") for line in ignored), "astro dev pytest runs all of tests/"
