"""The pipeline format: what users write, validated, with a JSON Schema for editors.

Version 1 (a file without `version` is read as version 1):

    version: 1
    dag: {name, schedule, owner, tags, start_date, catchup, retries, description}
    defaults: {docker_image, resource_flavor, env, retries, timeout, pool}
    jobs: {<name>: {command, arguments, docker_image, resource_flavor, env, retries, timeout,
                    trigger_rule, pool, depends_on}}

Version 2 (`version: 2` required) adds what ML pipelines need, and moves `dag.retries` to
`defaults.retries` (v1 had both; `dag.retries` did nothing once `defaults.retries` was set):

    dag: + schedule {assets | any | all}, end_date, max_active_runs, dagrun_timeout, doc_md, params, notify
    defaults: + retry_delay, secrets_from_connections
    jobs.<name>: + map {over, as}, outlets, group, retry_delay, secrets_from_connections

The models validate the input as written (durations like '30m', dates) and hold the resolved values
(seconds, date objects); their JSON Schema is the input's (see `Duration`, `EnvValues`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, WithJsonSchema,
                      field_validator, model_validator)

from ..validation import matching

ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")
GROUP_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Airflow's own rule for connection ids (airflow.models.connection.RE_SANITIZE_CONN_ID, at most 250).
CONN_ID_RE = re.compile(r"^[\w#!()\-.:/\\]{1,250}$")
TIMEOUT_RE = re.compile(r"^(\d+)\s*(s|m|h|d)?$")
DURATION_PATTERN = r"^\d+\s*(s|m|h|d)?$"
# Airflow's TriggerRule values (kept in sync by a unit test against airflow's enum).
TRIGGER_RULES = ("all_success", "all_failed", "all_done", "all_done_min_one_success", "all_done_setup_success",
                 "all_skipped", "one_success", "one_failed", "one_done", "none_failed",
                 "none_failed_min_one_success", "none_skipped", "always")
PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually")
PARAM_TYPES = ("string", "integer", "number", "boolean", "array")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def parse_timeout(v) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError("must be seconds or a duration like 30m, 2h")
    if isinstance(v, int):
        if v <= 0:
            raise ValueError("must be positive")
        return v
    m = TIMEOUT_RE.match(str(v).strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"'{v}' is not a duration (use seconds, or 90s, 30m, 2h, 1d)")
    return int(m.group(1)) * {"s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _env_values(v):
    if isinstance(v, dict):
        for k, val in v.items():
            if not isinstance(k, str) or not ENV_NAME_RE.match(k):
                raise ValueError(f"env name {k!r} is not a valid variable name")
            if isinstance(val, (dict, list)) or val is None:
                raise ValueError(f"env {k} must be a string, number or boolean")
        return {k: (str(val).lower() if isinstance(val, bool) else str(val)) for k, val in v.items()}
    return v


def _conn_ids(v):
    if isinstance(v, dict):
        for k, conn in v.items():
            if not isinstance(k, str) or not ENV_NAME_RE.match(k):
                raise ValueError(f"{k!r} is not a valid variable name")
            if not isinstance(conn, str) or not CONN_ID_RE.match(conn):
                raise ValueError(f"{k}: {conn!r} is not a valid Airflow connection id "
                                 "(letters, digits, _ - . : / # ! ( ) \\, at most 250)")
    return v


def _duration_schema(description: str) -> dict:
    return {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": DURATION_PATTERN}],
            "description": description, "examples": ["30m", "2h", 600]}


# A duration as written (seconds, or 90s / 30m / 2h / 1d), held as seconds.
Duration = Annotated[int, BeforeValidator(parse_timeout),
                     WithJsonSchema(_duration_schema("Seconds, or a duration: 90s, 30m, 2h, 1d."))]
EnvValues = Annotated[dict[str, str], BeforeValidator(_env_values), WithJsonSchema({
    "type": "object", "propertyNames": {"pattern": ENV_NAME_RE.pattern},
    "additionalProperties": {"type": ["string", "number", "boolean"]},
    "description": "Environment variables of the container (values become strings; true -> 'true').",
    "examples": [{"TARGET": "warehouse", "EPOCHS": 10}]})]
SecretConns = Annotated[dict[str, str], BeforeValidator(_conn_ids), WithJsonSchema({
    "type": "object", "propertyNames": {"pattern": ENV_NAME_RE.pattern},
    "additionalProperties": {"type": "string", "pattern": CONN_ID_RE.pattern},
    "description": "Env var -> Airflow connection id; the container gets the connection's URI in that "
                   "variable, resolved when the job runs (never when the DAG is parsed).",
    "examples": [{"DB_URI": "warehouse"}]})]


def _dag_id(v: str) -> str:
    if not ID_RE.match(v):
        raise ValueError(f"'{v}' is not a valid DAG id (letters, digits, _ . - only, at most 250)")
    return v


def _trigger_rule(v):
    if v is not None and v not in TRIGGER_RULES:
        raise ValueError(f"'{v}' is not an Airflow trigger rule (one of: {', '.join(TRIGGER_RULES)})")
    return v


_NAME_DOC = Field(description="The DAG id: letters, digits, _ . -", examples=["churn_model"])
_SCHEDULE_DOC = "Cron expression (5 fields), a preset like @daily, or null (manual runs only)."
_START_DOC = Field(dt.date(2025, 1, 1), description="First date the schedule applies to.", examples=["2025-01-01"])


# ---------------------------------------------------------------------------------------------- version 1


class DagSpec(_Model):
    name: str = _NAME_DOC
    schedule: str | None = Field(None, description=_SCHEDULE_DOC, examples=["0 3 * * *", "@daily"])
    owner: str = Field("ml-team", description="Owner shown in Airflow.")
    tags: list[str] = Field(default_factory=list, description="Tags shown in Airflow.", examples=[["churn"]])
    start_date: dt.date = _START_DOC
    catchup: bool = Field(False, description="Run the missed intervals since start_date.")
    retries: int = Field(0, ge=0, le=20, description="Retries of every job (version 1; version 2: defaults.retries).")
    description: str | None = Field(None, description="One line shown in the DAG list.")

    _name = field_validator("name")(lambda cls, v: _dag_id(v))


class JobFields(_Model):
    docker_image: str | None = Field(None, description="Container image with a pinned tag or digest.",
                                     examples=["registry.local/ml/churn:1.4.2"])
    resource_flavor: str | None = Field(None, description="A flavor name from flavors.yaml.", examples=["cpu-small"])
    env: EnvValues = Field(default_factory=dict)
    retries: int | None = Field(None, ge=0, le=20, description="Times a failed job is retried.")
    timeout: Duration | None = None
    pool: str | None = Field(None, description="Airflow pool the job runs in.")


class Defaults(JobFields):
    """Applied to every job that does not set the field."""


class Job(JobFields):
    command: list[str] | None = Field(None, description="The container's command.",
                                      examples=[["python", "-m", "churn.train"]])
    arguments: list[str] | None = Field(None, description="Arguments after the command (Airflow templates "
                                        "such as {{ params.epochs }} are rendered when the job runs).")
    trigger_rule: str | None = Field(None, description="Airflow trigger rule, e.g. all_success, all_done.",
                                     json_schema_extra={"enum": [*TRIGGER_RULES, None]})
    depends_on: list[str] = Field(default_factory=list, description="Jobs that must finish first.",
                                  examples=[["extract"]])

    _rule = field_validator("trigger_rule")(lambda cls, v: _trigger_rule(v))


class PipelineV1(_Model):
    """A pipeline, format version 1."""

    version: Literal[1] = Field(1, description="Format version; a file without it is read as version 1.")
    dag: DagSpec
    defaults: Defaults = Field(default_factory=Defaults)
    jobs: dict[str, Job] = Field(min_length=1, description="The jobs, by task id.")


# ---------------------------------------------------------------------------------------------- version 2

AssetName = Annotated[str, Field(min_length=1, max_length=1500, pattern=r"^\S+$",
                                 description="An Airflow asset name or URI.",
                                 examples=["warehouse.churn_features", "s3://ml/features/churn"])]


def _asset_kind(v) -> str | None:
    if isinstance(v, str):
        return "name"
    if isinstance(v, dict) and len(v) == 1:
        return {"any": "any", "all": "all"}.get(next(iter(v)))
    if isinstance(v, BaseModel):
        return "any" if isinstance(v, AssetAnyOf) else "all"
    return None


AssetItem = Annotated[Union[Annotated[AssetName, Tag("name")], Annotated["AssetAnyOf", Tag("any")],
                            Annotated["AssetAllOf", Tag("all")]],
                      Discriminator(_asset_kind, custom_error_type="asset_item",
                                    custom_error_message="must be an asset name, {any: [...]} or {all: [...]}")]


class AssetAnyOf(_Model):
    any: list[AssetItem] = Field(min_length=1, description="Run when any of these assets is updated.")


class AssetAllOf(_Model):
    all: list[AssetItem] = Field(min_length=1, description="Run when all of these assets were updated "
                                                           "since the last run.")


class AssetSchedule(_Model):
    assets: list[AssetItem] = Field(
        min_length=1, description="Run when all of these assets were updated since the last run "
                                  "(items may be {any: [...]} or {all: [...]}).",
        examples=[["warehouse.churn_features"]])


def _schedule_kind(v) -> str | None:
    if isinstance(v, str):
        return "cron"
    if isinstance(v, dict) and len(v) == 1:
        return {"assets": "assets", "any": "any", "all": "all"}.get(next(iter(v)))
    if isinstance(v, BaseModel):
        return {AssetSchedule: "assets", AssetAnyOf: "any", AssetAllOf: "all"}.get(type(v))
    return None


Schedule = Annotated[Union[Annotated[str, Tag("cron")], Annotated[AssetSchedule, Tag("assets")],
                           Annotated[AssetAnyOf, Tag("any")], Annotated[AssetAllOf, Tag("all")]],
                     Discriminator(_schedule_kind, custom_error_type="schedule",
                                   custom_error_message="must be a cron expression, a preset, null, "
                                                        "or one of {assets: [...]}, {any: [...]}, {all: [...]}")]


AssetAnyOf.model_rebuild()
AssetAllOf.model_rebuild()

ParamValue = Union[str, int, float, bool, list[Union[str, int, float, bool]], None]


class Param(_Model):
    type: Literal["string", "integer", "number", "boolean", "array"] = Field(
        description="JSON type of the value (the trigger form shows a matching input).")
    default: ParamValue = Field(None, description="Value used when the run does not set it "
                                                  "(scheduled and asset-triggered runs).")
    description: str | None = Field(None, description="Shown under the field in the trigger form.")
    enum: list[str | int | float] | None = Field(None, description="The allowed values (a drop-down).")
    minimum: int | float | None = Field(None, description="For integer and number: the smallest value.")
    maximum: int | float | None = Field(None, description="For integer and number: the largest value.")
    format: Literal["date", "date-time", "time"] | None = Field(
        None, description="For strings: a date / date-time / time picker.")

    @model_validator(mode="after")
    def _default_matches(self) -> Param:
        for what, value in [("default", self.default), *(("enum", v) for v in self.enum or [])]:
            if value is not None and not param_value_ok(self.type, value):
                raise ValueError(f"{what} {value!r} is not of type {self.type}")
        if self.format and self.type != "string":
            raise ValueError(f"format {self.format} needs type: string, not {self.type}")
        if (self.minimum is not None or self.maximum is not None) and self.type not in ("integer", "number"):
            raise ValueError(f"minimum/maximum need type integer or number, not {self.type}")
        return self


def param_value_ok(type_: str, value: Any) -> bool:
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, list)


class Notifier(_Model):
    connection: str = Field(description="Airflow HTTP connection id whose host is the webhook "
                                        "(e.g. AIRFLOW_CONN_ML_ALERTS='http://alerts.local:8080').",
                            examples=["ml_alerts"], json_schema_extra={"pattern": CONN_ID_RE.pattern})
    endpoint: str | None = Field(None, description="Path appended to the connection's host.",
                                 examples=["/hooks/airflow"])
    message: str | None = Field(None, description="Text sent as `message` in the JSON body (Airflow "
                                                  "templates allowed, e.g. {{ dag.dag_id }}).")

    _conn = matching("connection", CONN_ID_RE, "'{}' is not a valid Airflow connection id "
                                                "(letters, digits, _ - . : / # ! ( ) \\, at most 250)")


class Notify(_Model):
    on_failure: Notifier | None = Field(None, description="POSTed when a run fails.")
    on_success: Notifier | None = Field(None, description="POSTed when a run succeeds.")


class DagSpecV2(_Model):
    name: str = _NAME_DOC
    schedule: Schedule | None = Field(
        None, description=_SCHEDULE_DOC + " Or assets: {assets: [a, b]} (all of), {any: [a, b]}, {all: [...]}.",
        examples=["0 3 * * *", {"assets": ["warehouse.churn_features"]}])
    owner: str = Field("ml-team", description="Owner shown in Airflow.")
    tags: list[str] = Field(default_factory=list, description="Tags shown in Airflow.", examples=[["churn"]])
    start_date: dt.date = _START_DOC
    end_date: dt.date | None = Field(None, description="Last date the schedule applies to.",
                                     examples=["2026-12-31"])
    catchup: bool = Field(False, description="Run the missed intervals since start_date.")
    description: str | None = Field(None, description="One line shown in the DAG list.")
    doc_md: str | None = Field(None, description="Markdown shown on the DAG's page.")
    max_active_runs: int | None = Field(None, ge=1, le=1000, description="At most this many runs at once "
                                        "(1: no two trainings at the same time).")
    dagrun_timeout: Duration | None = Field(None, description="A run still going after this fails.")
    params: dict[str, Param] = Field(default_factory=dict, description="Run parameters: the trigger form's "
                                     "fields; jobs read them as {{ params.<name> }} in command, arguments, env.")
    notify: Notify = Field(default_factory=Notify, description="Webhook notifications on failure / success.")

    _name = field_validator("name")(lambda cls, v: _dag_id(v))


class JobFieldsV2(JobFields):
    retry_delay: Duration | None = Field(None, description="Wait between retries (Airflow's default: 5m).")
    secrets_from_connections: SecretConns = Field(default_factory=dict)


class DefaultsV2(JobFieldsV2):
    """Applied to every job that does not set the field."""

    retries: int | None = Field(None, ge=0, le=20, description="Times a failed job is retried.")


class MapOutput(_Model):
    output: str = Field(description="A job of this pipeline whose result (XCom) is a list.")


def _over_kind(v) -> str | None:
    if isinstance(v, list):
        return "items"
    if isinstance(v, (dict, MapOutput)):
        return "output"
    return None


class Map(_Model):
    over: Annotated[Union[Annotated[list[Union[str, int, float, bool]], Tag("items")],
                          Annotated[MapOutput, Tag("output")]],
                    Discriminator(_over_kind, custom_error_type="map_over",
                                  custom_error_message="must be a list of items or {output: <job>}")] = Field(
        description="The items: a list, or {output: <job>} (that job's result, a list).",
        examples=[["eu", "us", "apac"], {"output": "list_segments"}])
    as_: str = Field("ITEM", alias="as", description="Env var holding the item in each mapped job.",
                     examples=["SEGMENT"])
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    _as = matching("as_", ENV_NAME_RE, "'{}' is not a valid variable name")


class JobV2(JobFieldsV2):
    command: list[str] | None = Job.model_fields["command"]
    arguments: list[str] | None = Job.model_fields["arguments"]
    trigger_rule: str | None = Job.model_fields["trigger_rule"]
    depends_on: list[str] = Job.model_fields["depends_on"]
    map: Map | None = Field(None, description="Fan out: one job per item (dynamic task mapping).")
    outlets: list[AssetName] = Field(default_factory=list, description="Assets this job updates when it succeeds.")
    group: str | None = Field(None, description="Task group shown in the Airflow graph.", examples=["training"])

    _rule = field_validator("trigger_rule")(lambda cls, v: _trigger_rule(v))

    _group = matching("group", GROUP_RE, "'{}' is not a valid group id (letters, digits, _ -)", optional=True)

    @model_validator(mode="before")
    @classmethod
    def _output_is_upstream(cls, data):
        """A job mapped over another job's output runs after it (the dependency is implied)."""
        if isinstance(data, dict):
            m = data.get("map")
            src = m.get("over", {}).get("output") if isinstance(m, dict) and isinstance(m.get("over"), dict) else None
            deps = data.get("depends_on", [])
            if isinstance(src, str) and isinstance(deps, list) and src not in deps:
                data = {**data, "depends_on": [*deps, src]}
        return data


class PipelineV2(_Model):
    """A pipeline, format version 2."""

    version: Literal[2] = Field(description="Format version (2).")
    dag: DagSpecV2
    defaults: DefaultsV2 = Field(default_factory=DefaultsV2)
    jobs: dict[str, JobV2] = Field(min_length=1, description="The jobs, by task id.")


# The current format; `Pipeline` is what new code builds on.
Pipeline = PipelineV2
AnyPipeline = Union[PipelineV1, PipelineV2]
MODELS: dict[int, type[BaseModel]] = {1: PipelineV1, 2: PipelineV2}
PARTS: dict[int, dict[str, type[BaseModel]]] = {
    1: {"dag": DagSpec, "defaults": Defaults, "job": Job},
    2: {"dag": DagSpecV2, "defaults": DefaultsV2, "job": JobV2},
}


def pipeline_schema() -> dict[str, Any]:
    """One schema for both versions: `version: 2` selects version 2, anything else version 1."""
    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema([(PipelineV1, "validation"), (PipelineV2, "validation")],
                                ref_template="#/$defs/{model}")
    defs = top["$defs"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ML platform pipeline",
        "description": "pipelines/<name>.yaml: one Airflow DAG of container jobs (docs/pipelines.md).",
        "type": "object",
        "if": {"properties": {"version": {"const": 2}}, "required": ["version"]},
        "then": {"$ref": "#/$defs/PipelineV2"},
        "else": {"$ref": "#/$defs/PipelineV1"},
        "$defs": defs,
    }


def pipeline_json_schema() -> str:
    return json.dumps(pipeline_schema(), indent=2, sort_keys=True) + "\n"
