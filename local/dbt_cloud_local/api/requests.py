"""
The request bodies the API accepts, declared as pydantic models whose fields are checked by the shared
rules of :mod:`dbt_cloud_local.model.fields` (each rule written once, for the API, the config file and
the jobs file alike).

A field is declared as ``Annotated[<type>, checked(<rule>)]``: the rule sees the raw JSON value (no
coercion: ``"5"`` is no integer, ``1`` no boolean) and the field name, and either returns the value or
raises :class:`~dbt_cloud_local.model.fields.FieldError`. Absent fields are checked too (as None), so
"is required" is a rule like any other. Unknown fields are ignored, as dbt Cloud ignores them. The
first refused field becomes a 400 naming it (``threads_override must be an integer from 1 to 64``).

A job's fields are not declared here: a job's definition is checked by the model
(:func:`~dbt_cloud_local.model.job_definition.merge_definition`), where the jobs file is checked too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Self

from fastapi import Depends
from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError, ValidationInfo

from dbt_cloud_local.api.body import JsonBody
from dbt_cloud_local.api.errors import ApiError, invalid_field
from dbt_cloud_local.model import env_vars, fields
from dbt_cloud_local.model.commands import CommandError, Step, parse_steps_override
from dbt_cloud_local.model.fields import FieldError
from dbt_cloud_local.model.webhook_events import EVENT_TYPES

Rule = Callable[[Any, str], Any]


def checked(rule: Rule) -> PlainValidator:
    """Validate a field with ``rule(value, field_name)`` instead of pydantic's own coercion."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        return rule(value, info.field_name or "")

    return PlainValidator(validate)


class RequestBody(BaseModel):
    """A JSON object body; ``parse`` turns the first refused field into a 400 naming it."""

    model_config = ConfigDict(extra="ignore", frozen=True, validate_default=True)

    #: How refusals read: ``Invalid <subject> field <field>: <problem>``, or ``<field> <problem>``.
    subject: ClassVar[str | None] = None
    #: A valid body, for the message that answers a body that is no JSON object.
    example: ClassVar[str]

    @classmethod
    def parse(cls, body: Any) -> Self:
        if not isinstance(body, dict):
            raise ApiError(
                400, "The request body must be a JSON object", f"Fix: send a JSON object, e.g. {cls.example}"
            )
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, FieldError):
                raise invalid_field(cause, cls.subject) from None
            # Every field has a rule: this is pydantic refusing something no rule saw.
            where = ".".join(str(part) for part in error["loc"])
            raise ApiError(400, f"{where}: {error['msg']}") from None

    @classmethod
    def dependency(cls) -> Any:
        """``Depends`` on the route's checked JSON body, validated into this model."""

        async def parsed(body: JsonBody) -> Self:
            return cls.parse(body)

        return Depends(parsed)


# Rules only requests have (the shared ones are model.fields') ------------------------------------

MAX_CAUSE_LENGTH = 255
MAX_BRANCH_LENGTH = 255
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_GIT_SHA = re.compile(r"[0-9a-fA-F]{4,64}")
#: Characters git refuses in branch names (``git check-ref-format``), plus ``..``, ``@{`` and ``//``.
_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$")


def _optional(kind: type) -> Rule:
    return lambda value, field: None if value is None else fields.of_type(value, field, kind)


def _optional_id(value: Any, field: str) -> int | None:
    return fields.integer(value, field, minimum=1, nullable=True)


def _required_id(value: Any, field: str) -> int:
    return fields.integer(fields.required(value, field, f"send {field}"), field, minimum=1)


def _cause(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError(field, "is required", "describe why the job is triggered")
    if len(value) > MAX_CAUSE_LENGTH:
        raise FieldError(
            field, f"may be at most {MAX_CAUSE_LENGTH} characters long, got {len(value)}", "shorten the cause"
        )
    return value


def _identifier(value: Any, field: str) -> str | None:
    name = _optional(str)(value, field)
    if name is not None and not _IDENTIFIER.fullmatch(name):
        raise FieldError(
            field,
            f"must be a plain identifier (letters, digits, _), got {fields.shown(name)}",
            "e.g. analytics",
        )
    return name


def _git_sha(value: Any, field: str) -> str | None:
    sha = _optional(str)(value, field)
    if sha is not None and not _GIT_SHA.fullmatch(sha):
        raise FieldError(field, "must be a hexadecimal commit id", "send 4 to 64 hex digits")
    return sha


def _git_branch(value: Any, field: str) -> str | None:
    branch = _optional(str)(value, field)
    if branch is not None and (len(branch) > MAX_BRANCH_LENGTH or _BAD_BRANCH.search(branch)):
        raise FieldError(
            field,
            f"is not a valid branch name: {fields.shown(branch)}",
            f"use a git branch name of at most {MAX_BRANCH_LENGTH} characters, e.g. main or feature/x",
        )
    return branch


def _dbt_version(value: Any, field: str) -> str | None:
    return fields.dbt_version(value, field, nullable=True)


def _threads(value: Any, field: str) -> int | None:
    return fields.integer(value, field, minimum=1, maximum=64, nullable=True)


def _seconds(value: Any, field: str) -> int | None:
    return fields.integer(value, field, nullable=True)


def _steps_override(value: Any, field: str) -> list[Step] | None:
    try:
        return parse_steps_override(value)
    except CommandError as exc:
        raise FieldError(
            field, f"is invalid: {str(exc)[:300]}", "send a list of dbt commands, or null"
        ) from None


# Runs ---------------------------------------------------------------------------------------------


class TriggerRunRequest(RequestBody):
    """``POST .../jobs/{id}/run/`` (the spec's ``TriggerRunRequest``)."""

    example: ClassVar[str] = '{"cause": "Triggered by Airflow"}'

    cause: Annotated[str, checked(_cause)]
    git_sha: Annotated[str | None, checked(_git_sha)] = None
    git_branch: Annotated[str | None, checked(_git_branch)] = None
    schema_override: Annotated[str | None, checked(_identifier)] = None
    dbt_version_override: Annotated[str | None, checked(_dbt_version)] = None
    threads_override: Annotated[int | None, checked(_threads)] = None
    target_name_override: Annotated[str | None, checked(_identifier)] = None
    generate_docs_override: Annotated[bool | None, checked(_optional(bool))] = None
    timeout_seconds_override: Annotated[int | None, checked(_seconds)] = None
    # Pull request ids: accepted, type-checked and ignored.
    azure_pull_request_id: Annotated[int | None, checked(_optional(int))] = None
    github_pull_request_id: Annotated[int | None, checked(_optional(int))] = None
    gitlab_merge_request_id: Annotated[int | None, checked(_optional(int))] = None
    non_native_pull_request_id: Annotated[int | None, checked(_optional(int))] = None
    steps_override: Annotated[list[Step] | None, checked(_steps_override)] = None

    def overrides(self) -> dict[str, Any]:
        """What the run manager reads: the cause and the overrides (not the steps, passed apart)."""
        return self.model_dump(exclude={"steps_override"})


# Environment variables (v3) -----------------------------------------------------------------------


def _object_list(fix: str) -> Rule:
    def rule(value: Any, field: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            raise FieldError(field, "must be a non-empty list", fix)
        return value

    return rule


class BulkCreateRequest(RequestBody):
    """``POST .../environment-variables/bulk/``: ``{"env_var": [{"new_name": "DBT_X", "<scope>": "v"}]}``."""

    example: ClassVar[str] = '{"env_var": [{"new_name": "DBT_NAME", "project": "value"}]}'

    env_var: Annotated[list[Any], checked(_object_list(f"send {example}"))]


def _bulk_update(value: Any, field: str) -> dict[str, Any]:
    spec = fields.mapping(value, field)
    fields.required(
        spec.get("name"), f"{field}.name", 'send {"env_vars": {"name": "DBT_NAME", "project": "value"}}'
    )
    if "new_name" in spec:
        raise FieldError(
            f"{field}.new_name",
            "is not supported: the local dbt Cloud server does not rename variables",
            "remove it",
        )
    return spec


class BulkUpdateRequest(RequestBody):
    """``PUT .../environment-variables/bulk/``: ``{"env_vars": {"name": "DBT_X", "<scope>": "v"}}`` (a null
    value deletes that scope)."""

    example: ClassVar[str] = '{"env_vars": {"name": "DBT_NAME", "project": "value"}}'

    env_vars: Annotated[dict[str, Any], checked(_bulk_update)]


class BulkDeleteRequest(RequestBody):
    """``DELETE .../environment-variables/bulk/``: ``{"env_var_names": ["DBT_X", ...]}``."""

    example: ClassVar[str] = '{"env_var_names": ["DBT_NAME"]}'

    env_var_names: Annotated[list[Any], checked(_object_list(f"send {example}"))]


def _variable_name(value: Any, field: str) -> str:
    fields.required(value, field, "send the variable's name (dbt Cloud's CustomEnvironmentVariableRequest)")
    try:
        return env_vars.validate_name(value)
    except env_vars.EnvVarError as exc:
        raise FieldError(field, f"is refused: {exc}", "use a DBT_ name that is not reserved") from None


def _value_type(value: Any, field: str) -> str:
    fields.required(
        value,
        field,
        f"send one of {', '.join(env_vars.TYPES)} (dbt Cloud's CustomEnvironmentVariableRequest)",
    )
    return fields.choice(value, field, env_vars.TYPES)


def _raw_value(value: Any, field: str) -> str:
    if value is None or value == "":
        raise FieldError(field, "is required", "send the variable's value as raw_value")
    try:
        return env_vars.validate_value(field, value)
    except env_vars.EnvVarError as exc:
        raise FieldError(
            field, f"is refused: {exc}", f"send text of at most {env_vars.MAX_VALUE_LENGTH} characters"
        ) from None


class EnvVarValueRequest(RequestBody):
    """
    ``POST .../environment-variables/``: one value for the project, an environment (``environment_id``)
    or a job (``job_definition_id``: the job override dbt-jobs-as-code writes), dbt Cloud's
    ``CustomEnvironmentVariableRequest``.
    """

    example: ClassVar[str] = '{"name": "DBT_X", "type": "job", "job_definition_id": 1, "raw_value": "v", ...}'

    account_id: Annotated[int, checked(_required_id)]
    project_id: Annotated[int, checked(_required_id)]
    name: Annotated[str, checked(_variable_name)]
    type: Annotated[str, checked(_value_type)]
    environment_id: Annotated[int | None, checked(_optional_id)] = None
    job_definition_id: Annotated[int | None, checked(_optional_id)] = None
    raw_value: Annotated[str, checked(_raw_value)]


class EnvVarValueUpdate(RequestBody):
    """``POST .../environment-variables/{id}/``: a new ``raw_value``; the other fields, when sent, must
    be the value's own (its name and scope are its identity)."""

    example: ClassVar[str] = '{"name": "DBT_X", "raw_value": "..."}'

    account_id: Annotated[int | None, checked(_optional_id)] = None
    project_id: Annotated[int | None, checked(_optional_id)] = None
    name: Annotated[str | None, checked(_optional(str))] = None
    type: Annotated[str | None, checked(_optional(str))] = None
    environment_id: Annotated[int | None, checked(_optional_id)] = None
    job_definition_id: Annotated[int | None, checked(_optional_id)] = None
    raw_value: Annotated[str, checked(_raw_value)]


# Webhook subscriptions (v3) -----------------------------------------------------------------------

MAX_SUBSCRIPTION_TEXT = 255
MAX_DESCRIPTION = 1024


def _job_ids(value: Any, field: str) -> list[int] | None:
    """Job ids, as numbers or digit strings (empty: every job of the account)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise FieldError(field, "must be a list of job ids", "send [] to listen to every job")
    ids = [
        fields.integer(
            int(item) if isinstance(item, str) and item.isdigit() else item, f"{field}[{index}]", minimum=1
        )
        for index, item in enumerate(value)
    ]
    return list(dict.fromkeys(ids))


def _name(required: bool) -> Rule:
    return lambda value, field: fields.text(
        value, field, maximum=MAX_SUBSCRIPTION_TEXT, allow_empty=False, nullable=not required
    )


def _events(value: Any, field: str) -> list[str]:
    return fields.choices(value, field, EVENT_TYPES)


def _optional_events(value: Any, field: str) -> list[str] | None:
    return None if value is None else _events(value, field)


def _optional_url(value: Any, field: str) -> str | None:
    return None if value is None else fields.http_url(value, field)


def _optional_boolean(value: Any, field: str) -> bool | None:
    return fields.boolean(value, field, nullable=True)


def _description(value: Any, field: str) -> str | None:
    return fields.text(value, field, maximum=MAX_DESCRIPTION, allow_empty=False, nullable=True)


class SubscriptionUpdate(RequestBody):
    """``PUT .../webhooks/subscription/{id}``: the fields that change (``SubscriptionRequest``)."""

    subject: ClassVar[str | None] = "subscription"
    example: ClassVar[str] = '{"active": false}'

    name: Annotated[str | None, checked(_name(required=False))] = None
    description: Annotated[str | None, checked(_description)] = None
    client_url: Annotated[str | None, checked(_optional_url)] = None
    event_types: Annotated[list[str] | None, checked(_optional_events)] = None
    job_ids: Annotated[list[int] | None, checked(_job_ids)] = None
    active: Annotated[bool | None, checked(_optional_boolean)] = None

    def changes(self) -> dict[str, Any]:
        """The fields sent, as the store's columns."""
        return self.model_dump(exclude_none=True)


class SubscriptionCreate(SubscriptionUpdate):
    """``POST .../webhooks/subscriptions``: ``name``, ``client_url``, ``event_types`` and ``active`` are
    required; ``description`` and ``job_ids`` (empty: every job) are optional."""

    example: ClassVar[str] = (
        '{"name": "Airflow", "client_url": "https://...", "event_types": ["job.run.completed"], '
        '"active": true}'
    )

    name: Annotated[str, checked(_name(required=True))]
    client_url: Annotated[str, checked(fields.http_url)]
    event_types: Annotated[list[str], checked(_events)]
    active: Annotated[bool, checked(fields.boolean)]

    def changes(self) -> dict[str, Any]:
        return {**super().changes(), "description": self.description or "", "job_ids": self.job_ids or []}
