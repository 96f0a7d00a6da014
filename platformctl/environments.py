"""Environments: one Airflow instance each (dev, staging, prod, ...), one file each in environments/.

An environment says which image it runs (repository and tag policy), where its DAG bundle lives
(an S3 bucket and prefix, or a local folder), which flavors it allows, and the Airflow variables
and configuration overrides it needs. `local` is built in: its bundle store is a folder on disk,
so `make deploy` works on a fresh machine with no S3.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError, ExecutorError, SigningKeyError, UnsafePathError
from .executors import DEFAULT_EXECUTOR, EXECUTOR_PATTERN, executor_names, executor_problem
from .validation import matching
from .yamlfile import line_of, read_yaml

ENV_DIR = "environments"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# S3 general-purpose bucket naming rules (AWS "Bucket naming rules"): 3-63 characters, lowercase letters,
# digits, dots and hyphens, beginning and ending with a letter or digit, no two adjacent dots, not an
# IPv4 address, none of the reserved prefixes and suffixes.
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_BUCKET = re.compile(BUCKET_PATTERN)
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# A key prefix: segments of letters, digits, . _ - (never . or ..), separated by single slashes.
PREFIX_PATTERN = r"^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)?$"
_PREFIX = re.compile(PREFIX_PATTERN)
# Paths from configuration: relative, in the repository, with {env} (the environment's name) as the only
# placeholder. Not str.format: a user's string never reaches a formatting language.
PLACEHOLDER = "{env}"
_PATH_FIELDS = {("managed", "helm_values"), ("managed", "env_file"), ("bundle", "path")}


def bucket_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name, or None."""
    if not 3 <= len(name) <= 63:
        return f"bucket name {name!r} must be 3 to 63 characters long"
    if not _BUCKET.match(name):
        return (f"bucket name {name!r} may hold only lowercase letters, digits, dots and hyphens, "
                "and must begin and end with a letter or digit")
    if ".." in name:
        return f"bucket name {name!r} must not have two adjacent dots"
    try:
        ipaddress.IPv4Address(name)
        return f"bucket name {name!r} must not be an IP address"
    except ValueError:
        pass
    if name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        return f"bucket name {name!r} uses a prefix or suffix S3 reserves"
    return None


def path_template_problem(template: str) -> str | None:
    """Why a configured path template is unsafe, or None. Checked without the repository at hand."""
    rest = template.replace(PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        return f"'{template}' may use only {PLACEHOLDER} as a placeholder"
    if not template.strip() or "\x00" in template or "\\" in template:
        return f"'{template}' is not a plain relative path"
    pure = PurePosixPath(template)
    if pure.is_absolute() or template.startswith("~"):
        return f"'{template}' is absolute: use a path relative to the repository"
    if ".." in pure.parts:
        return f"'{template}' has a '..' component: use a path inside the repository"
    if pure.parts and pure.parts[0] == ".git":
        return f"'{template}' is inside .git"
    return None


def confined_path(root: Path, template: str, env_name: str, field: str, *, directory: bool = False) -> Path:
    """The absolute path `template` names for env_name, resolved (symlinks too) and inside root;
    UnsafePathError otherwise. Nothing is created."""
    problem = path_template_problem(template)
    if problem:
        raise UnsafePathError(f"{field}: {problem}", "e.g. deploy/{env}/values.yaml")
    base = root.resolve()
    path = (base / template.replace(PLACEHOLDER, env_name)).resolve()
    if not path.is_relative_to(base) or path == base:
        raise UnsafePathError(f"{field}: '{template}' resolves to {path}, outside the repository {base} "
                              "(a symlink on the way?)", "use a path inside the repository")
    if path.is_dir() and not directory:
        raise UnsafePathError(f"{field}: '{template}' is a directory", "name a file, e.g. deploy/{env}/values.yaml")
    return path


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
    bucket: str | None = Field(None, description="S3 bucket holding the DAG bundles.",
                               json_schema_extra={"pattern": BUCKET_PATTERN, "minLength": 3, "maxLength": 63})
    prefix: str = Field("", description="Key prefix for this environment's bundles, e.g. airflow/dev.",
                        json_schema_extra={"pattern": PREFIX_PATTERN})
    endpoint_url: str | None = Field(None, description="For S3-compatible stores (MinIO, SeaweedFS, ...).")
    region: str | None = None
    path: str | None = Field(None, description="local kind: the folder (default .platform/bundles/<env>).")
    aws_conn_id: str = Field("aws_default", description="Airflow connection the DAG bundle reads S3 with.")
    describe_connection: bool = Field(
        True, description="Write the aws_conn_id connection (type, endpoint, region; never credentials) into the "
                          "instance's config; false when a secrets backend already defines it.")
    credentials_secret: str | None = Field(
        None, description="Kubernetes secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the bundle's "
                          "connection (referenced in the Helm values, never copied); null: the usual AWS chain "
                          "(instance role, IRSA, ...).")
    refresh_interval: int = Field(30, ge=10, description="Seconds between bundle refreshes in Airflow: a deploy "
                                                         "or rollback is live in Airflow within this time.")
    keep_versions: int = Field(20, ge=1, description="make gc keeps this many newest versions (plus the live "
                                                     "one, the rollback target and those running DAG runs use).")

    @field_validator("bucket", "path")
    @classmethod
    def _named_rule(cls, v: str | None, info: ValidationInfo) -> str | None:
        """bucket: S3's naming rules; path: a confined path template ({env} the only placeholder)."""
        rule = bucket_problem if info.field_name == "bucket" else path_template_problem
        problem = rule(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip("/")
        if not _PREFIX.match(v) or any(seg in (".", "..") for seg in v.split("/")):
            raise ValueError(f"prefix {v!r} must be segments of letters, digits, . _ - separated by '/', "
                             "without . or .. segments (e.g. airflow/dev)")
        return v

    @model_validator(mode="after")
    def _need_bucket(self) -> BundleStoreConfig:
        if self.kind == "s3" and not self.bucket:
            raise ValueError("bundle.bucket is required when bundle.kind is s3")
        return self


CHART_BUNDLE_LIST = (1, 19, 0)  # first chart release with dagProcessor.dagBundleConfigList (apache/airflow#60645)


class ManagedAirflow(_Model):
    helm_values: str = Field("deploy/{env}/values.yaml", description="Where the Helm values are written: a path "
                             "inside the repository; {env} (the only placeholder) is the environment's name.")
    env_file: str = Field("deploy/{env}/airflow.env", description="The same settings as environment variables "
                          "(a path inside the repository; {env} is the only placeholder).")
    api_url: str | None = Field(
        None, description="The instance's Airflow API (e.g. https://airflow.dev.example/), optional: make deploy "
                          "asks it for an immediate bundle refresh and make gc asks which versions running DAG "
                          "runs use. Token from AIRFLOW_API_TOKEN.")
    chart_version: str = Field(
        "1.22.0", pattern=r"^\d+\.\d+\.\d+$",
        description="The official Airflow Helm chart release the values are for. From 1.19.0 on the bundle "
                    "list is written as the chart's own dagProcessor.dagBundleConfigList; for older charts as "
                    "the config.dag_processor.dag_bundle_config_list override.")

    @property
    def chart_has_bundle_list(self) -> bool:
        return tuple(int(x) for x in self.chart_version.split(".")) >= CHART_BUNDLE_LIST

    @field_validator("helm_values", "env_file")
    @classmethod
    def _relative(cls, v: str) -> str:
        problem = path_template_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    def paths(self, root: Path, env_name: str) -> tuple[Path, Path]:
        """(helm values, env file): absolute, resolved, inside root; UnsafePathError otherwise."""
        return (confined_path(root, self.helm_values, env_name, "managed.helm_values"),
                confined_path(root, self.env_file, env_name, "managed.env_file"))


def _allowed_key(v: str) -> str:
    from ml_platform.bundle_format import key_problem

    problem = key_problem(v)
    if problem:
        raise ValueError(f"{str(v)[:20]!r} {problem}")
    return v.strip().lower()


class SigningConfig(_Model):
    """Bundle signatures (issue 38): who may publish a version here, and whether unsigned ones are served."""

    require_signatures: bool = Field(
        False, description="Serve only versions signed by an allowed key (make deploy / make rollback sign with "
                           "ML_PLATFORM_SIGNING_KEY or ML_PLATFORM_SIGNING_KEY_FILE). false: unsigned versions "
                           "are served; a signed one must still verify against allowed_keys.")
    allowed_keys: list[Annotated[str, AfterValidator(_allowed_key)]] = Field(
        default_factory=list, max_length=4,
        description="Public keys allowed to sign this environment's bundles: 64 hex digits of a raw ed25519 "
                    "public key each (make signing-key prints one). Two during a key rotation.")

    @model_validator(mode="after")
    def _need_keys(self) -> SigningConfig:
        if self.require_signatures and not self.allowed_keys:
            raise ValueError("require_signatures is true but allowed_keys is empty: list the public key(s) "
                             "that sign this environment's bundles")
        return self


# ---- instance settings as code (#35): the pools and connections the instance must have
class PoolSpec(_Model):
    """One Airflow pool as this environment's instance must have it (make deploy creates or updates it)."""

    slots: int | None = Field(None, description="Task slots: at most this many tasks of the pool run at once "
                              "(a positive whole number; required unless removed).", examples=[4])
    description: str = Field("", description="Shown in Airflow's pool list.")
    include_deferred: bool = Field(False, description="Deferred tasks occupy slots too.")
    removed: bool = Field(False, description="Delete the pool from the instance on the next deploy (only then is "
                                             "a pool deleted; never while queued or running tasks use it).")

    @field_validator("slots", mode="before")
    @classmethod
    def _slots(cls, v):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"slots {v!r} is not a positive whole number (e.g. slots: 4)")
        return v

    @model_validator(mode="after")
    def _need_slots(self) -> PoolSpec:
        if self.slots is None and not self.removed:
            raise ValueError("slots is required (a positive whole number), or removed: true")
        return self


class ConnectionSpec(_Model):
    """A connection the instance must have: its id and type only, never a secret (created by hand, by a
    secrets backend or CI; make deploy checks it exists)."""

    conn_type: str = Field(description="Airflow connection type, e.g. aws, http, postgres.",
                           json_schema_extra={"pattern": r"^[A-Za-z0-9_.-]{1,500}$"}, examples=["postgres"])
    description: str = Field("", description="What uses it (for the people creating it).")
    api_visible: bool = Field(True, description="false when a secrets backend or an AIRFLOW_CONN_* variable "
                                                "provides it: the REST API sees only connections in Airflow's "
                                                "database, so make deploy/plan/status do not ask for it.")

    @field_validator("conn_type")
    @classmethod
    def _type(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.-]{1,500}$", v):
            raise ValueError(f"conn_type {v!r} must be letters, digits, _ . - (e.g. postgres, aws, http)")
        return v


def _pool_names(v: dict) -> dict:
    from ml_platform.flavors import pool_name_problem

    for name, spec in v.items():
        problem = pool_name_problem(name)
        if problem:
            raise ValueError(problem)
        if name == "default_pool" and spec.removed:
            raise ValueError("default_pool cannot be removed (Airflow refuses to delete it); set its slots instead")
    return v


def _connection_ids(v: dict | None) -> dict | None:
    from .pipelines.model import CONN_ID_RE

    for cid in v or {}:
        if not isinstance(cid, str) or not CONN_ID_RE.match(cid):
            raise ValueError(f"{cid!r} is not a valid Airflow connection id (letters, digits, _ - . : / # ! ( ) \\, "
                             "at most 250)")
    return v


class SignaturePolicy(_Model):
    """Image signatures this environment requires (issue 37): checked by skopeo with a generated policy.json."""

    required: bool = Field(False, description="release, promote and deploy refuse an image digest without a valid "
                           "signature from one of `keys`.")
    keys: list[str] = Field(default_factory=list, description="Armored GPG public keys allowed to sign images for "
                            "this environment (paths in the repository, e.g. keys/prod/release-2026.asc); two "
                            "while a key is rotated.", max_length=8)

    @field_validator("keys")
    @classmethod
    def _key_paths(cls, v: list[str]) -> list[str]:
        for k in v:
            problem = path_template_problem(k)
            if problem:
                raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _need_keys(self) -> SignaturePolicy:
        if self.required and not self.keys:
            raise ValueError("signatures.required needs at least one public key in signatures.keys")
        return self


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
    pools: dict[str, PoolSpec] = Field(
        default_factory=dict, description="Airflow pools the instance must have: name -> slots, description, "
        "include_deferred (removed: true deletes one). make deploy applies them before the bundle switch.",
        examples=[{"gpu-a100": {"slots": 4, "description": "the cluster's four A100s"}}],
        json_schema_extra={"propertyNames": {"pattern": r"^[A-Za-z0-9_.-]{1,256}$"}})
    connections: dict[str, ConnectionSpec] | None = Field(
        None, description="Connections the instance must have (ids and types; never secrets): make render refuses "
        "a pipeline naming one not listed, make deploy refuses when one is missing on the instance. Absent: "
        "connections are not managed here (make render warns about those the pipelines name).",
        examples=[{"warehouse": {"conn_type": "postgres"}}])

    _pools_ok = field_validator("pools")(lambda cls, v: _pool_names(v))
    _conns_ok = field_validator("connections")(lambda cls, v: _connection_ids(v))
    executor: str = Field(
        DEFAULT_EXECUTOR, json_schema_extra={"pattern": EXECUTOR_PATTERN},
        examples=["CeleryExecutor", "KubernetesExecutor", "LocalExecutor", "CeleryExecutor,KubernetesExecutor"],
        description="The Airflow executor this instance runs (the Helm values' `executor`): CeleryExecutor (the "
                    "official chart's default), KubernetesExecutor, LocalExecutor, or several comma-separated "
                    "(the first is the default), e.g. CeleryExecutor,KubernetesExecutor. The image must carry "
                    "its provider: make lock-check, build and deploy refuse one that is not in the locks.")

    @field_validator("executor")
    @classmethod
    def _executor(cls, v: str) -> str:
        v = ",".join(executor_names(v))
        problem = executor_problem(v)
        if problem:
            raise ValueError(problem)
        return v
    signing: SigningConfig = Field(default_factory=SigningConfig,
                                   description="Bundle signatures: allowed public keys, required or not.")

    signatures: SignaturePolicy = Field(default_factory=SignaturePolicy)

    _name = matching("name", _NAME, "'{}' must be lowercase letters, digits and -", optional=True)


class Environment(EnvironmentFile):
    """A resolved environment: the file's content and its name."""

    name: str


def local_environment() -> Environment:
    return Environment(name="local", description="this machine: bundles in a folder",
                       bundle=BundleStoreConfig(kind="local", path=".platform/bundles/local", refresh_interval=10),
                       executor=DEFAULT_EXECUTOR)


def environment_file(root: Path, name: str) -> tuple[Path, str]:
    """(path, repository-relative path) of environment `name`'s file; ConfigError for a name that is not one
    (before it becomes part of a path) and for an environment without a file, the built-in `local` excepted
    (its path is returned, whether the file exists or not)."""
    if not _NAME.match(name):
        raise ConfigError(f"'{name}' is not an environment name (lowercase letters, digits and -)",
                          f"known: {', '.join(known_environments(root))}")
    path = root / ENV_DIR / f"{name}.yaml"
    rel = f"{ENV_DIR}/{name}.yaml"
    if not path.exists() and name != "local":
        raise ConfigError(f"unknown environment '{name}'", f"known: {', '.join(known_environments(root))}; "
                          f"or create {rel}", where=rel)
    return path, rel


def load_environment(root: Path, name: str) -> Environment:
    path, rel = environment_file(root, name)
    if not path.exists():  # local, built in
        return _confined(root, local_environment(), rel, "")
    data, text = read_yaml(path, rel, hint="see schemas/environment.schema.json")
    data.setdefault("name", name)
    try:
        env = Environment.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        line = line_of(text, err["loc"])
        kind = (UnsafePathError if tuple(err["loc"]) in _PATH_FIELDS
                else ExecutorError if tuple(err["loc"]) == ("executor",) else ConfigError)
        if err["loc"] and err["loc"][0] == "signing":  # a malformed allowed key: a signing-key error
            kind = SigningKeyError
        raise kind(f"{field}: {err['msg'].removeprefix('Value error, ')}",
                   "see schemas/environment.schema.json", where=f"{rel}:{line}" if line else rel) from None
    if env.name != name:
        raise ConfigError(f"name '{env.name}' does not match the file name", f"rename the file or set name: {name}",
                          where=rel)
    return _confined(root, env, rel, text)


def local_bundle_dir(env: Environment) -> str:
    return env.bundle.path or f".platform/bundles/{env.name}"


def known_environments(root: Path) -> list[str]:
    return sorted({p.stem for p in (root / ENV_DIR).glob("*.yaml")} | {"local"})


def _confined(root: Path, env: Environment, rel: str, text: str) -> Environment:
    """Refuse, at load time (before any deploy step), paths that would write outside the repository."""
    checks = [(("managed", "helm_values"), env.managed.helm_values, False),
              (("managed", "env_file"), env.managed.env_file, False)]
    if env.bundle.kind == "local":
        checks.append((("bundle", "path"), local_bundle_dir(env), True))
    for loc, template, directory in checks:
        try:
            confined_path(root, template, env.name, ".".join(loc), directory=directory)
        except UnsafePathError as exc:
            line = line_of(text, loc) if text else None
            exc.where = f"{rel}:{line}" if line else rel
            raise
    return env


