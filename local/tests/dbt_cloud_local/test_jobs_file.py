"""
The dbt-jobs-as-code file the local dbt Cloud loads at start: read as the tool reads it, and every
problem refused at load time with one message naming the file, the job, the field and the fix, so
``serve`` exits with code 2 instead of starting with jobs that would fail later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import cli, write_config

from dbt_cloud_local.config.loader import load_config
from dbt_cloud_local.config.settings import ENV_API_TOKEN, ConfigError
from dbt_cloud_local.store.database import Store
from dbt_cloud_local.store.jobs import JobRepository

JOB = {
    "account_id": "{{ account_id }}",
    "project_id": "{{ project_id }}",
    "environment_id": "{{ environment_id }}",
    "name": "Nightly",
    "execute_steps": ["dbt build"],
    "generate_docs": False,
    "run_generate_sources": False,
    "settings": {"target_name": "default"},
    "triggers": {"github_webhook": False, "schedule": False},
    "schedule": {"cron": "0 2 * * *"},
}
VARS = {"account_id": 1, "project_id": 1, "environment_id": 2}


@pytest.fixture(autouse=True)
def _config_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_API_TOKEN, raising=False)


def config_with_file(
    tmp_path: Path, jobs_yaml: dict[str, Any] | str, variables: dict[str, Any] | None = VARS, **sections: Any
) -> Path:
    """write_config's config plus ``jobs_as_code`` naming a jobs file (and a vars file) in tmp_path."""
    text = jobs_yaml if isinstance(jobs_yaml, str) else yaml.safe_dump(jobs_yaml, sort_keys=False)
    # The tool's files hold unquoted Jinja: {{ account_id }} rather than the quoted string yaml writes.
    (tmp_path / "jobs.yml").write_text(text.replace("'{{", "{{").replace("}}'", "}}"))
    section = {"file": str(tmp_path / "jobs.yml")}
    if variables is not None:
        (tmp_path / "vars.yml").write_text(yaml.safe_dump(variables))
        section["vars"] = str(tmp_path / "vars.yml")
    return write_config(tmp_path, jobs_as_code=section, **sections)


def test_file_jobs_follow_the_config_jobs_with_the_tool_names_and_defaults(tmp_path: Path) -> None:
    config = load_config(
        config_with_file(tmp_path, {"jobs": {"nightly": JOB, "weekly-x": {**JOB, "name": "W"}}})
    )
    assert [job.id for job in config.jobs.values()] == [1, 2, 3, 4, 5, 6, 7]
    nightly = config.jobs[6]
    assert (nightly.name, nightly.environment_id, nightly.seed_key) == (
        "Nightly [[nightly]]",
        2,
        "jobs_as_code:nightly",
    )
    assert config.jobs[7].name == "W [[weekly-x]]"
    definition = nightly.definition
    assert (definition["job_type"], definition["errors_on_lint_failure"], definition["schedule"]["cron"]) == (
        "scheduled",  # dbt-jobs-as-code's defaults, which its plan compares against
        True,
        "0 2 * * *",
    )
    assert definition["schedule"]["date"] == {"type": "custom_cron", "days": None, "cron": "0 2 * * *"}


def test_only_a_file_no_jobs_section(tmp_path: Path) -> None:
    path = config_with_file(tmp_path, {"jobs": {"nightly": JOB}})
    raw = yaml.safe_load(path.read_text())
    del raw["jobs"]
    path.write_text(yaml.safe_dump(raw))
    assert [job.name for job in load_config(path).jobs.values()] == ["Nightly [[nightly]]"]


@pytest.mark.parametrize(
    ("jobs_yaml", "variables", "mentions"),
    [
        (
            {"jobs": {"nightly": {**JOB, "exectue_steps": []}}},
            VARS,
            ["jobs.nightly", "unknown field 'exectue_steps'"],
        ),
        (
            {"jobs": {"nightly": {k: v for k, v in JOB.items() if k != "triggers"}}},
            VARS,
            ["`triggers` is missing"],
        ),
        (
            {"jobs": {"nightly": {k: v for k, v in JOB.items() if k != "schedule"}}},
            VARS,
            ["`schedule` is missing"],
        ),
        (
            {"jobs": {"nightly": JOB}},
            {"account_id": 1, "environment_id": 1},
            ["'project_id' is undefined", "vars.yml"],
        ),
        ({"jobs": {"nightly": JOB}}, None, ["is templated", "jobs_as_code.vars"]),
        (
            {"jobs": {"nightly": JOB}},
            {**VARS, "environment_id": 9},
            ["environment_id", "unknown environment 9"],
        ),
        ({"jobs": {"nightly": JOB}}, {**VARS, "project_id": 3}, ["project_id is 3", "belongs to project 1"]),
        ({"jobs": {"nightly": {**JOB, "execute_steps": ["ls"]}}}, VARS, ["jobs.nightly.execute_steps[0]"]),
        ({"jobs": {"nightly": {**JOB, "schedule": {"cron": "daily"}}}}, VARS, ["schedule.cron", "cron"]),
        ({"jobs": {"has space": JOB}}, VARS, ["jobs.has space", "letters, digits"]),
        (
            {"jobs": {"nightly": {**JOB, "custom_environment_variables": [{"DBT_X": 1}]}}},
            VARS,
            ["jobs.nightly.custom_environment_variables[0]", "must be text", "quote it"],
        ),
        (
            {"jobs": {"nightly": {**JOB, "custom_environment_variables": [{"DBT_TARGET": "x"}]}}},
            VARS,
            ["custom_environment_variables[0]", "DBT_TARGET is reserved"],
        ),
        (
            {"jobs": {"nightly": {**JOB, "custom_environment_variables": {"DBT_X": "1"}}}},
            VARS,
            ["custom_environment_variables must be a list"],
        ),
        (
            {"jobs": {"nightly": {**JOB, "custom_environment_variables": [{"DBT_X": "1"}, {"DBT_X": "2"}]}}},
            VARS,
            ["custom_environment_variables names a variable twice"],
        ),
        ({"jobs": {}}, VARS, ["declares no jobs"]),
        ("jobs: [unclosed", VARS, ["not valid YAML"]),
    ],
)
def test_problems_in_the_file_name_the_job_and_field(
    tmp_path: Path, jobs_yaml: Any, variables: dict[str, Any] | None, mentions: list[str]
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(config_with_file(tmp_path, jobs_yaml, variables))
    message = str(excinfo.value)
    assert message.startswith("config key `jobs_as_code`:"), message
    for mention in mentions:
        assert mention in message, (mention, message)


def test_serve_refuses_a_broken_jobs_file_in_one_line(tmp_path: Path) -> None:
    path = config_with_file(tmp_path, {"jobs": {"nightly": {**JOB, "execute_steps": ["rm -rf /"]}}})
    result = cli("serve", "--config", str(path), "--data-dir", str(tmp_path / "data"), "--port", "1")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "jobs.nightly.execute_steps[0]" in result.stderr


def test_a_config_job_id_taken_through_the_api_is_refused_at_start(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    store = Store(tmp_path / "state.sqlite3")
    try:
        repository = JobRepository(config, store)
        repository.seed(config.jobs)
        created = repository.create(
            1, {"name": "API job", "environment_id": 1, "execute_steps": ["dbt seed"]}
        )
        assert created.id == 6
        raw = yaml.safe_load(config.path.read_text())
        raw["jobs"].append(
            {"id": 6, "name": "Late config job", "environment": 1, "execute_steps": ["dbt seed"]}
        )
        config.path.write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match="job id 6 is already used by job 'API job'"):
            repository.seed(load_config(config.path).jobs)
    finally:
        store.close()
