"""Unit tests of the pure parts: step validation, config validation, fault settings, artifact paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import RESERVED_NAME_EXAMPLES

from dbt_cloud_local.config.loader import load_config
from dbt_cloud_local.config.settings import ConfigError
from dbt_cloud_local.faults import FaultInjector, parse_fault_settings
from dbt_cloud_local.model import env_vars
from dbt_cloud_local.model.commands import CommandError, parse_step
from dbt_cloud_local.model.env_vars import PROJECT_SCOPE
from dbt_cloud_local.runs.workspace import ArtifactPathError, RunWorkspace
from dbt_cloud_local.store.env_vars import RunEnvStore, set_values


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("dbt build", ("build",)),
        ("dbt build --select tag:hourly", ("build", "--select", "tag:hourly")),
        ("dbt docs generate", ("docs", "generate")),
        ("dbt source freshness", ("source", "freshness")),
        ("dbt run --vars '{\"a\": 1}'", ("run", "--vars", '{"a": 1}')),
        ("dbt retry --state target_old", ("retry", "--state", "target_old")),
        ("dbt run-operation my_macro", ("run-operation", "my_macro")),
    ],
)
def test_allowed_steps(command: str, args: tuple[str, ...]) -> None:
    step = parse_step(command)
    assert step.args == args
    assert step.name == f"Invoke dbt with `{command}`"


def test_threads_are_appended_only_where_dbt_accepts_them() -> None:
    assert parse_step("dbt build").with_threads(3).args == ("build", "--threads", "3")
    assert parse_step("dbt build --threads 1").with_threads(3).args == ("build", "--threads", "1")
    assert parse_step("dbt ls").with_threads(3).args == ("ls",)


@pytest.mark.parametrize(
    "command", ["dbt", "dbt docs", "dbt source snapshot-freshness", "dbtx run", "dbt 'run"]
)
def test_refused_steps(command: str) -> None:
    with pytest.raises(CommandError):
        parse_step(command)


def _config(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(Path(__file__).parents[3].joinpath("local/dbt_cloud_local/config.yml").read_text())
    raw["projects"][0]["dbt_project_dir"] = str(tmp_path)
    raw.update(changes)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_default_config_matches_the_brief(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_CLOUD_LOCAL_API_TOKEN", raising=False)
    monkeypatch.delenv("DBT_CLOUD_LOCAL_DBT_EXECUTABLE", raising=False)
    monkeypatch.setenv("JAFFLE_SHOP_WAREHOUSE", "/data/override.duckdb")
    config = load_config()
    assert config.accounts[1].name == "Local dbt Cloud"
    assert config.projects[1].name == "jaffle_shop"
    assert config.projects[1].dbt_project_dir == config.root / "local" / "demo_dbt_project"
    assert config.environments[1].name == "Production"
    assert config.environments[1].dbt_executable == config.root / ".venv-dbt/bin/dbt"
    assert config.environments[1].env["DBT_DUCKDB_PATH"] == "/data/override.duckdb"
    assert {job.id: (job.name, job.execute_steps, job.generate_docs) for job in config.jobs.values()} == {
        1: ("eltml build [[eltml_build]]", ("dbt seed", "dbt build"), True),
        2: ("Hourly Run [[hourly_run]]", ("dbt build --select tag:hourly",), False),
        3: ("Daily Run [[daily_run]]", ("dbt build --select tag:daily",), False),
    }
    assert config.api_tokens == ("dbtc_local_dev_token",)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBT_CLOUD_LOCAL_API_TOKEN", "real-token-1234")
    monkeypatch.setenv("DBT_CLOUD_LOCAL_DBT_EXECUTABLE", "/opt/dbt-cloud-local/venv/bin/dbt")
    monkeypatch.delenv("JAFFLE_SHOP_WAREHOUSE", raising=False)
    config = load_config()
    assert config.api_tokens == ("real-token-1234",)
    assert str(config.environments[1].dbt_executable) == "/opt/dbt-cloud-local/venv/bin/dbt"
    assert config.environments[1].env["DBT_DUCKDB_PATH"] == str(
        config.root / ".state/data/warehouse/jaffle_shop.duckdb"
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"accounts": []}, "config key `accounts`: must be a non-empty list"),
        (
            {"jobs": [{"id": 1, "name": "x", "environment": 9, "execute_steps": ["dbt build"]}]},
            "unknown environment 9",
        ),
        (
            {"jobs": [{"id": 1, "name": "x", "environment": 1, "execute_steps": ["ls -la"]}]},
            "jobs[0].execute_steps[0]",
        ),
        (
            {"jobs": [{"id": 1, "environment": 1, "execute_steps": ["dbt build"]}]},
            "config key `jobs[0].name`: is missing",
        ),
        ({"server": {"page_size": 500}}, "server.page_size"),
        ({"faults": {"error_rate": 2}}, "config key `faults`"),
        ({"api_tokens": []}, "no API token configured"),
    ],
)
def test_config_errors_name_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, object], message: str
) -> None:
    monkeypatch.delenv("DBT_CLOUD_LOCAL_API_TOKEN", raising=False)
    with pytest.raises(ConfigError) as excinfo:
        load_config(_config(tmp_path, **changes))
    assert message in str(excinfo.value)
    assert "Fix:" in str(excinfo.value) or "faults" in message


def test_fault_rules_count_down_and_are_reproducible() -> None:
    injector = FaultInjector(parse_fault_settings({"rules": [{"path": "^/api/", "status": 503, "times": 2}]}))
    decisions = [injector.decide("GET", "/api/v2/accounts/1/").status for _ in range(4)]
    assert decisions == [503, 503, None, None]
    injectors = [FaultInjector(parse_fault_settings({"error_rate": 0.5, "seed": 3})) for _ in range(2)]
    sequences = [[injector.decide("GET", "/").status for _ in range(20)] for injector in injectors]
    assert sequences[0] == sequences[1]
    assert 503 in sequences[0]
    assert None in sequences[0]
    with pytest.raises(ValueError, match="error_statuses"):
        parse_fault_settings({"error_statuses": [404]})


@pytest.mark.parametrize(
    "path", ["../x", "/etc/passwd", "a/../../b", "~/x", "a\\b", "partial_parse.msgpack", ""]
)
def test_artifact_paths_are_confined(tmp_path: Path, path: str) -> None:
    workspace = RunWorkspace(tmp_path, 1)
    workspace.prepare_step(1)
    with pytest.raises(ArtifactPathError):
        workspace.resolve_artifact(1, path)


def test_symlinks_out_of_the_target_are_not_followed(tmp_path: Path) -> None:
    workspace = RunWorkspace(tmp_path, 1)
    workspace.prepare_step(1)
    (tmp_path / "secret.txt").write_text("secret")
    (workspace.target(1) / "link.json").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ArtifactPathError):
        workspace.resolve_artifact(1, "link.json")
    assert workspace.list_artifacts(1) == []


@pytest.mark.parametrize("name", RESERVED_NAME_EXAMPLES)
def test_names_that_steer_dbt_are_reserved(name: str) -> None:
    assert env_vars.reserved_reason(name)
    with pytest.raises(env_vars.EnvVarError, match=f"{name} is reserved: "):
        env_vars.validate_name(name)
    assert env_vars.validate_name(name, allow_reserved=True) == name  # deleting stays possible


@pytest.mark.parametrize(
    "name",
    ["DBT_FAIL_MODEL", "DBT_DUCKDB_PATH", "DBT_SLOW_SECONDS", "DBT_ENV_SECRET_TOKEN", "DBT_ENV_CUSTOM_ENV_X"],
)
def test_project_variables_stay_allowed(name: str) -> None:
    assert env_vars.reserved_reason(name) is None
    assert env_vars.validate_name(name) == name


@pytest.mark.parametrize("name", ["PATH", "dbt_x", "DBT_", "DBT_X\n", "DBT_" + "X" * 200, None, 7])
def test_malformed_names_are_refused(name: object) -> None:
    with pytest.raises(env_vars.EnvVarError, match="start it with DBT_"):
        env_vars.validate_name(name)


def test_runs_never_see_reserved_variables_from_the_state(tmp_path: Path) -> None:
    """Rows written before a name was reserved stay listed (so they can be deleted) but reach no run."""
    store = RunEnvStore(tmp_path / "state.sqlite3")
    store.set_env_var(1, "DBT_PROJECT_DIR", PROJECT_SCOPE, "/elsewhere")
    store.set_env_var(1, "DBT_ENGINE_STATE", 2, "/elsewhere")
    store.set_env_var(1, "DBT_FAIL_MODEL", 2, "stg_orders")
    try:
        assert store.resolved_env_vars(1, 2) == {"DBT_FAIL_MODEL": "stg_orders"}
        assert {row["name"] for row in store.env_vars(1)} == {
            "DBT_PROJECT_DIR",
            "DBT_ENGINE_STATE",
            "DBT_FAIL_MODEL",
        }
    finally:
        store.close()


def test_a_change_with_one_bad_scope_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_CLOUD_LOCAL_API_TOKEN", raising=False)
    config = load_config(_config(tmp_path))
    store = RunEnvStore(tmp_path / "state.sqlite3")
    try:
        with pytest.raises(env_vars.EnvVarError, match="unknown environment 'Nope'"):
            set_values(config, store, 1, "DBT_ATOMIC", {"project": "1", "Nope": "2"})
        with pytest.raises(env_vars.EnvVarError, match="without NUL"):
            set_values(config, store, 1, "DBT_ATOMIC", {"project": "1", "Production": "a\x00b"})
        assert store.env_vars(1) == []
    finally:
        store.close()
