"""
Configuration errors: unknown keys get a did-you-mean suggestion, and ``serve`` refuses to start
(exit code 2, one line naming the key or path and the fix, no traceback) when the dbt project, the
dbt executable or the data dir is unusable. ``env`` and ``env-var`` still work without dbt.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import cli, write_config

from dbt_cloud_local.config.loader import load_config
from dbt_cloud_local.config.settings import ENV_API_TOKEN, ENV_DBT_EXECUTABLE, ConfigError
from dbt_cloud_local.testing import free_port


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _no_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_API_TOKEN, raising=False)
    monkeypatch.delenv(ENV_DBT_EXECUTABLE, raising=False)


# Unknown keys -----------------------------------------------------------------------------------


def _rename(section: str | None, old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(raw: dict[str, Any]) -> None:
        mapping = raw if section is None else raw[section]
        mapping = mapping[0] if isinstance(mapping, list) else mapping
        mapping[new] = mapping.pop(old)

    return change


@pytest.mark.parametrize(
    ("change", "key", "suggestion"),
    [
        (_rename(None, "server", "servr"), "`servr`", "`server`"),
        (_rename("server", "run_slots", "run_slot"), "`server.run_slot`", "`run_slots`"),
        (
            _rename("projects", "dbt_project_dir", "dbt_projct_dir"),
            "`projects[0].dbt_projct_dir`",
            "`dbt_project_dir`",
        ),
        (
            _rename("environments", "dbt_executable", "dbt_exectuable"),
            "`environments[0].dbt_exectuable`",
            "`dbt_executable`",
        ),
        (_rename("jobs", "generate_docs", "generate_doc"), "`jobs[0].generate_doc`", "`generate_docs`"),
        (_rename("accounts", "name", "nmae"), "`accounts[0].nmae`", "`name`"),
        (
            lambda raw: raw["environments"][0]["env"].update({"DBT_X": {"value": "1", "is_pth": True}}),
            "`environments[0].env.DBT_X.is_pth`",
            "`is_path`",
        ),
        (lambda raw: raw.update({"faults": {"latncy_ms": 5}}), "`faults.latncy_ms`", "`latency_ms`"),
        (
            lambda raw: raw.update({"api_tokens": [{"token": "a-long-token", "acounts": [1]}]}),
            "`api_tokens[0].acounts`",
            "`accounts`",
        ),
    ],
)
def test_unknown_keys_get_a_did_you_mean(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], key: str, suggestion: str
) -> None:
    path = _edit(write_config(tmp_path), change)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    message = str(excinfo.value)
    assert f"config key {key}: is not a known key (did you mean {suggestion}?)" in message
    assert "Fix: rename it to" in message
    assert "\n" not in message


def test_an_unknown_key_without_a_close_match_lists_the_known_keys(tmp_path: Path) -> None:
    path = _edit(write_config(tmp_path), lambda raw: raw["server"].update({"zzz": 1}))
    with pytest.raises(
        ConfigError, match=r"`server.zzz`: is not a known key. Fix: remove it; known keys here: "
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda raw: raw["environments"][0]["env"].update({"DBT_PROFILES_DIR": "/tmp"}),
            "`environments[0].env.DBT_PROFILES_DIR`: is reserved",
        ),
        (
            lambda raw: raw["environments"][1]["env"].update({"DBT_TARGET": "prod"}),
            "`environments[1].env.DBT_TARGET`: is reserved",
        ),
        (
            lambda raw: raw.update({"api_tokens": [{"token": "a-long-token", "accounts": [7]}]}),
            "`api_tokens[0].accounts`: must list account ids from `accounts`",
        ),
        (
            lambda raw: raw.update({"api_tokens": ["short"]}),
            "`api_tokens[0]`: must be a token of 8+ characters",
        ),
        (lambda raw: raw["jobs"][0]["execute_steps"].append("dbt run\x00"), "`jobs[0].execute_steps[2]`"),
    ],
)
def test_invalid_values_name_the_key(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = _edit(write_config(tmp_path), change)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert message in str(excinfo.value)


def test_broken_yaml_is_one_line_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("server:\n  run_slots: [1\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert "is not valid YAML at line" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_token_mappings_limit_accounts_and_plain_strings_allow_any(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        accounts=[{"id": 1, "name": "one"}, {"id": 2, "name": "two"}],
        api_tokens=["plain-token-123", {"token": "scoped-token-123", "accounts": [2]}],
    )
    config = load_config(path)
    assert config.api_tokens == ("plain-token-123", "scoped-token-123")
    assert config.accounts_for("plain-token-123") is None
    assert config.accounts_for("scoped-token-123") == frozenset({2})


# serve refuses to start -------------------------------------------------------------------------


def _serve(
    config: Path, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``serve`` must fail fast; if it started instead, the timeout fails the test."""
    args = ("serve", "--config", str(config), "--data-dir", str(data_dir), "--port", str(free_port()))
    return cli(*args, env={ENV_API_TOKEN: "", ENV_DBT_EXECUTABLE: "", **(env or {})}, timeout=30)


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *mentions: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Fix:" in lines[0]
    for mention in mentions:
        assert mention in lines[0], (mention, lines[0])


def _set_environment(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    return lambda raw: raw["environments"][0].update({key: value})


def test_serve_refuses_a_missing_project_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-project"
    config = _edit(
        write_config(tmp_path), lambda raw: raw["projects"][0].update({"dbt_project_dir": str(missing)})
    )
    _assert_one_line_error(_serve(config, tmp_path / "data"), "projects[0].dbt_project_dir", str(missing))


def test_serve_refuses_a_folder_without_dbt_project_yml(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    config = _edit(
        write_config(tmp_path), lambda raw: raw["projects"][0].update({"dbt_project_dir": str(empty)})
    )
    _assert_one_line_error(
        _serve(config, tmp_path / "data"), "projects[0].dbt_project_dir", "dbt_project.yml"
    )


def test_serve_refuses_a_missing_dbt_executable(tmp_path: Path) -> None:
    missing = tmp_path / "no-venv" / "bin" / "dbt"
    config = _edit(write_config(tmp_path), _set_environment("dbt_executable", str(missing)))
    _assert_one_line_error(
        _serve(config, tmp_path / "data"), "environments[0].dbt_executable", str(missing), "does not exist"
    )


def test_serve_refuses_a_dbt_executable_that_cannot_run(tmp_path: Path) -> None:
    not_executable = tmp_path / "dbt"
    not_executable.write_text("#!/bin/sh\n")
    not_executable.chmod(0o644)
    config = _edit(write_config(tmp_path), _set_environment("dbt_executable", str(not_executable)))
    _assert_one_line_error(
        _serve(config, tmp_path / "data"), "environments[0].dbt_executable", "not executable"
    )


def test_serve_names_the_environment_variable_that_points_at_a_missing_dbt(tmp_path: Path) -> None:
    missing = "/opt/dbt-cloud-local/no-such-venv/bin/dbt"
    result = _serve(write_config(tmp_path), tmp_path / "data", env={ENV_DBT_EXECUTABLE: missing})
    _assert_one_line_error(result, ENV_DBT_EXECUTABLE, missing)


def test_serve_refuses_a_data_dir_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _assert_one_line_error(
        _serve(write_config(tmp_path), blocker / "data"), "--data-dir", str(blocker / "data")
    )


def test_serve_reports_unknown_keys_in_one_line(tmp_path: Path) -> None:
    config = _edit(write_config(tmp_path), _rename("jobs", "execute_steps", "execute_step"))
    _assert_one_line_error(
        _serve(config, tmp_path / "data"), "jobs[0].execute_step", "did you mean `execute_steps`"
    )


def test_env_works_without_dbt_or_the_project(tmp_path: Path) -> None:
    """Only serving needs dbt: `env` on a machine without .venv-dbt still prints the trust settings."""

    def without_dbt(raw: dict[str, Any]) -> None:
        raw["projects"][0]["dbt_project_dir"] = str(tmp_path / "not-here")
        for environment in raw["environments"]:
            environment["dbt_executable"] = str(tmp_path / "no-venv" / "bin" / "dbt")

    config = _edit(write_config(tmp_path), without_dbt)
    result = cli(
        "env", "--config", str(config), "--data-dir", str(tmp_path / "data"), env={ENV_DBT_EXECUTABLE: ""}
    )
    assert result.returncode == 0, result.stderr
    assert "export SSL_CERT_FILE=" in result.stdout
