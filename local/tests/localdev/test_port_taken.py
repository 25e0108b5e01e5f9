"""The local dbt Cloud's host port taken: one line that names the cause and the fix, nothing started.

``DBT_CLOUD_LOCAL_PORT`` moves the port on every path; when the port asked for is in use, ``make demo``
and ``make astro-rehearsal`` say so before starting anything (``make up`` has its own port report, in
test_stack.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dbt_cloud_local.client import PORT_ENV, host_port


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize(("module", "command"), [("localdev.demo", "make demo"),
                                                 ("astro_rehearsal", "make astro-rehearsal")])  # fmt: skip
def test_a_taken_port_is_one_line_naming_the_variable(
    taken_port: int, module: str, command: str, tmp_path
) -> None:
    env = {**os.environ, PORT_ENV: str(taken_port), "LOCALDEV_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run(
        [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    problem = [line for line in result.stderr.splitlines() if f"port {taken_port}" in line]
    assert len(problem) == 1, result.stderr
    assert "already in use" in problem[0]
    assert f"{PORT_ENV}={taken_port + 1} {command}" in problem[0]
    assert not (tmp_path / "state" / "dbt-cloud-local").exists(), "nothing may start on a taken port"


def test_a_port_that_is_not_a_number_is_refused_with_the_fix() -> None:
    assert host_port({}) == 8443
    assert host_port({PORT_ENV: " 9443 "}) == 9443
    with pytest.raises(ValueError, match=f"{PORT_ENV}='84x3' is not a port: set it to a number"):
        host_port({PORT_ENV: "84x3"})
