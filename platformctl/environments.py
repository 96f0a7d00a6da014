"""Environments: one Airflow instance each (dev, staging, prod, ...), one file each in environments/.

An environment says which image it runs (repository and tag policy), where its DAG bundle lives
(an S3 bucket and prefix, or a local folder), which flavors it allows, and the Airflow variables
and configuration overrides it needs. `local` is built in: its bundle store is a folder on disk,
so `make deploy` works on a fresh machine with no S3.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

ENV_DIR = "environments"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryTarget(_Model):
    repository: str | None = Field(None, description="OCI repository this environment pulls from "
                                                      "(default: platform.yaml registry.repository).")
    tag_policy: Literal["digest", "version"] = Field(
        "digest", description="digest: the instance runs the image by digest (immutable); version: by tag.")
    pull_policy: Literal["IfNotPresent", "Always"] = "IfNotPresent"


class BundleStoreConfig(_Model):
    kind: Literal["s3", "local"] = Field("s3", description="s3: an S3(-compatible) bucket; local: a folder.")
    bucket: str | None = Field(None, description="S3 bucket holding the DAG bundles.")
    prefix: str = Field("", description="Key prefix for this environment's bundles, e.g. airflow/dev.")
    endpoint_url: str | None = Field(None, description="For S3-compatible stores (MinIO, SeaweedFS, ...).")
    region: str | None = None
    path: str | None = Field(None, description="local kind: the folder (default .platform/bundles/<env>).")
    aws_conn_id: str = Field("aws_default", description="Airflow connection the S3DagBundle reads with.")
    refresh_interval: int = Field(300, ge=10, description="Seconds between bundle refreshes in Airflow.")

    @model_validator(mode="after")
    def _need_bucket(self) -> BundleStoreConfig:
        if self.kind == "s3" and not self.bucket:
            raise ValueError("bundle.bucket is required when bundle.kind is s3")
        return self


class ManagedAirflow(_Model):
    helm_values: str = Field("deploy/{env}/values.yaml", description="Where the Helm values are written.")
    env_file: str = Field("deploy/{env}/airflow.env", description="The same settings as environment variables.")


class EnvironmentFile(_Model):
    """What environments/<env>.yaml holds (its JSON Schema is the editors'): the name is the file's."""

    name: str | None = Field(None, description="Optional: the environment's name is its file name "
                                                "(environments/<name>.yaml); if given, it must match.")
    description: str = Field("", description="One line about this instance.", examples=["shared development instance"])
    registry: RegistryTarget = Field(default_factory=RegistryTarget)
    bundle: BundleStoreConfig
    allowed_flavors: list[str] | None = Field(None, description="Flavors DAGs may use here; null = all.",
                                              examples=[["cpu-small", "cpu-large"]])
    allowed_images: list[str] | None = Field(
        None, description="Image prefixes jobs may use here (e.g. registry.local/ml/); null = any.")
    variables: dict[str, str] = Field(default_factory=dict, description="Airflow variables (AIRFLOW_VAR_*).")
    airflow_config: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="airflow.cfg overrides: section -> key -> value.",
        examples=[{"core": {"load_examples": "False"}}])
    managed: ManagedAirflow = Field(default_factory=ManagedAirflow)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME.match(v):
            raise ValueError(f"'{v}' must be lowercase letters, digits and -")
        return v


class Environment(EnvironmentFile):
    """A resolved environment: the file's content and its name."""

    name: str


def local_environment() -> Environment:
    return Environment(name="local", description="this machine: bundles in a folder",
                       bundle=BundleStoreConfig(kind="local", path=".platform/bundles/local"))


def load_environment(root: Path, name: str) -> Environment:
    path = root / ENV_DIR / f"{name}.yaml"
    rel = f"{ENV_DIR}/{name}.yaml"
    if not path.exists():
        if name == "local":
            return local_environment()
        known = sorted(p.stem for p in (root / ENV_DIR).glob("*.yaml")) + ["local"]
        raise ConfigError(f"unknown environment '{name}'", f"known: {', '.join(sorted(set(known)))}; "
                          f"or create {rel}", where=rel)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}",
                          where=f"{rel}:{mark.line + 1}" if mark else rel) from None
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping", where=rel)
    data.setdefault("name", name)
    try:
        env = Environment.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        line = _line(path.read_text(), err["loc"])
        raise ConfigError(f"{field}: {err['msg'].removeprefix('Value error, ')}",
                          "see schemas/environment.schema.json", where=f"{rel}:{line}" if line else rel) from None
    if env.name != name:
        raise ConfigError(f"name '{env.name}' does not match the file name", f"rename the file or set name: {name}",
                          where=rel)
    return env


def _line(text: str, loc) -> int | None:
    node = yaml.compose(text)
    line = None
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line
