"""The pipeline format (version 1): a validated model with a JSON Schema for editors.

    version: 1
    dag: {name, schedule, owner, tags, start_date, catchup, retries, description}
    defaults: {docker_image, resource_flavor, env, retries, timeout, pool}
    jobs: {<name>: {command, arguments, docker_image, resource_flavor, env, retries, timeout,
                    trigger_rule, pool, depends_on}}
"""

from __future__ import annotations

import datetime as dt
import json
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")
TIMEOUT_RE = re.compile(r"^(\d+)\s*(s|m|h|d)?$")
# Airflow's TriggerRule values (kept in sync by a unit test against airflow's enum).
TRIGGER_RULES = ("all_success", "all_failed", "all_done", "all_done_min_one_success", "all_done_setup_success",
                 "all_skipped", "one_success", "one_failed", "one_done", "none_failed",
                 "none_failed_min_one_success", "none_skipped", "always")
PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def parse_timeout(v) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool):
        raise ValueError("timeout must be seconds or a duration like 30m, 2h")
    if isinstance(v, int):
        if v <= 0:
            raise ValueError("timeout must be positive")
        return v
    m = TIMEOUT_RE.match(str(v).strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"'{v}' is not a duration (use seconds, or 90s, 30m, 2h, 1d)")
    return int(m.group(1)) * {"s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


class DagSpec(_Model):
    name: str = Field(description="The DAG id: letters, digits, _ . -")
    schedule: str | None = Field(None, description="Cron expression, a preset like @daily, or null (manual).")
    owner: str = "ml-team"
    tags: list[str] = Field(default_factory=list)
    start_date: dt.date = Field(dt.date(2025, 1, 1))
    catchup: bool = False
    retries: int = Field(0, ge=0, le=20)
    description: str | None = None

    @field_validator("name")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError(f"'{v}' is not a valid DAG id (letters, digits, _ . - only, at most 250)")
        return v


class JobFields(_Model):
    docker_image: str | None = None
    resource_flavor: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    retries: int | None = Field(None, ge=0, le=20)
    timeout: int | None = Field(None, description="Seconds, or a duration: 90s, 30m, 2h, 1d.")
    pool: str | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v):
        return parse_timeout(v)

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, v):
        if isinstance(v, dict):
            for k, val in v.items():
                if not isinstance(k, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k):
                    raise ValueError(f"env name {k!r} is not a valid variable name")
                if isinstance(val, (dict, list)) or val is None:
                    raise ValueError(f"env {k} must be a string, number or boolean")
            return {k: (str(val).lower() if isinstance(val, bool) else str(val)) for k, val in v.items()}
        return v


class Defaults(JobFields):
    pass


class Job(JobFields):
    command: list[str] | None = None
    arguments: list[str] | None = None
    trigger_rule: str | None = Field(None, description="Airflow trigger rule, e.g. all_success, all_done.")
    depends_on: list[str] = Field(default_factory=list, description="Jobs that must finish first.")

    @field_validator("trigger_rule")
    @classmethod
    def _rule(cls, v):
        if v is not None and v not in TRIGGER_RULES:
            raise ValueError(f"'{v}' is not an Airflow trigger rule (one of: {', '.join(TRIGGER_RULES)})")
        return v


class Pipeline(_Model):
    version: int = Field(1, description="Format version; files without it are read as the current version.")
    dag: DagSpec
    defaults: Defaults = Field(default_factory=Defaults)
    jobs: dict[str, Job] = Field(min_length=1)


def pipeline_json_schema() -> str:
    return json.dumps(Pipeline.model_json_schema(), indent=2, sort_keys=True) + "\n"
