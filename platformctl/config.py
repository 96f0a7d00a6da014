"""The root configuration: platform.yaml, a validated model with a JSON Schema.

Layers, highest first: `--set dotted.key=value` on the CLI > the environment variables in
ENV_OVERRIDES (make passes its command-line variables, so `make build PYTHON=3.11` works) > what this
machine resolved (`.platform/local.yaml`, see machine.py) > platform.yaml > the model's defaults.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import machine
from .errors import ConfigError
from .validation import matching
from .yamlfile import line_of, read_yaml

CONFIG_FILE = "platform.yaml"

_PY_RE = re.compile(r"^3\.\d{1,2}$")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+([a-z0-9.+-]*)?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryConfig(_Model):
    repository: str = Field(
        "127.0.0.1:5000/ml-platform/airflow",
        description="OCI repository the image is pushed to (host[:port]/path).",
    )
    latest: bool = Field(False, description="Also move a floating 'latest' tag to the newest release.")
    insecure_hosts: list[str] = Field(
        default_factory=list,
        description="Registries reached over plain HTTP (localhost and 127.x always are).",
    )
    attempts: int = Field(4, ge=1, le=10, description="Tries per registry operation on transient errors.")


class ImageConfig(_Model):
    base_mode: Literal["python", "extend"] = Field(
        "python",
        description="python: install Airflow from the lock on a Debian Python base; "
        "extend: install the locks on top of a vendor Airflow image.",
    )
    base_image: str | None = Field(
        None,
        description="Base image. Default: python:<python>-slim-bookworm (python mode) "
        "or apache/airflow:<airflow_version>-python<python> (extend mode).",
    )
    python: str = Field("3.12", description="Python version inside the image; must be one of python_versions.")
    engine: Literal["auto", "buildx", "docker-buildkit", "podman"] = Field(
        "auto", description="How to build: docker buildx, or DOCKER_BUILDKIT=1 docker build (auto detects "
        "which); podman: without a Docker daemon, buildah builds (reproducibly) and podman runs the image checks."
    )
    docker: str | None = Field(None, description="Docker CLI to use (default: first one on PATH with BuildKit).")
    build_cache: Literal["off", "registry"] = Field(
        "off", description="registry: keep BuildKit's layer cache in the registry between machines (CI runs). "
        "make build reads it from <registry.repository>:buildcache (credentials REGISTRY_USERNAME/PASSWORD) "
        "and builds the image with its cache inline; make push moves that tag to the pushed image. "
        "off: this machine's builder cache only.")
    name: str = Field("ml-platform-airflow", description="Local image name (org.opencontainers.image.title).")
    version: str | None = Field(
        None, description="Image version; default: from git (vX.Y.Z tag, else X.Y.Z-dev.N+g<sha>).",
        pattern=r"^\d+\.\d+\.\d+([-.][0-9A-Za-z.-]+)?$",
    )
    source: str = Field("", description="org.opencontainers.image.source (repository URL); empty: git's "
                        "remote.origin.url as https, without credentials.")
    uv_image: str | None = Field(
        None,
        description="Image holding the uv binary at /uv, mounted by the build and in no layer of the result "
        "(e.g. ghcr.io/astral-sh/uv:<version> or a mirror of it; its uv must be the tools lock's pin). "
        "Default: a local image made once per uv version from the hashed tools lock (ml-platform-uv:<version>-<id>).",
    )
    build_secrets: dict[str, str] = Field(
        default_factory=dict,
        description="BuildKit secrets: id -> file path. Known ids: ca_bundle (extra CA certificates), "
        "index_url (a file holding a private index URL with credentials).",
    )

    _py = matching("python", _PY_RE, "'{}' is not a Python version like 3.12")

    def resolved_base_image(self, airflow_version: str) -> str:
        if self.base_image:
            return self.base_image
        if self.base_mode == "extend":
            return f"apache/airflow:{airflow_version}-python{self.python}"
        return f"python:{self.python}-slim-bookworm"


class StackConfig(_Model):
    """The local Airflow stack (make up / make run / make down)."""

    compose_file: str = Field("stack/compose.yaml", description="Compose file of the local stack.")
    port: int | None = Field(None, ge=1, le=65535, description="Host port of the API server (default: a free port).")
    job_images: dict[str, str] = Field(
        default_factory=lambda: {"ml-platform/etl-job:0.1.0": "examples/jobs/etl"},
        description="Job images built by make up: image tag -> build context (a directory with a Dockerfile).",
    )
    postgres_image: str = Field("ml-platform/postgres:15", description="Metadata database image, built locally.")
    redis_image: str = Field("ml-platform/redis:7", description="Celery broker image (Debian's redis-server), built "
                                                                "locally when the stack runs CeleryExecutor.")
    support_base_image: str | None = Field(
        None,
        description="Debian base for the postgres and job images (default: the platform's python base image).",
    )


class SetupConfig(_Model):
    """What `make build` / `make test` may do to prepare this host (see `make doctor`)."""

    install: bool = Field(
        True, description="As root on a Debian/Ubuntu host, install missing tools with apt and start the Docker "
        "engine. false (or PLATFORM_NO_INSTALL=1): only print the commands to run.")
    ca_bundle: str = Field(
        "auto", description="CA certificates passed to the build as the ca_bundle secret when "
        "image.build_secrets.ca_bundle is not set: auto (the host's bundle, e.g. "
        "/etc/ssl/certs/ca-certificates.crt, when there is one), none, or a path.")


class UpgradeConfig(_Model):
    """The upgrade rehearsal (make upgrade-test AIRFLOW=<version>, issue #36)."""

    smoke_pipelines: list[str] = Field(
        default_factory=lambda: ["example_etl"],
        description="Pipelines run on a stack of the current image and of the candidate (states and durations "
        "compared); the current stack's database, after these runs, is the one the candidate migrates.")
class SigningConfig(_Model):
    """Image signatures (issue 37): GPG simple signing with skopeo, signatures in a lookaside store."""

    key: str | None = Field(
        None, description="Fingerprint of the GPG key make push signs the pushed digest with (PLATFORM_SIGNING_KEY "
        "overrides it; the key is the keyring's at GNUPGHOME, or the armored secret key in "
        "PLATFORM_SIGNING_KEY_FILE, passphrase in PLATFORM_SIGNING_PASSPHRASE_FILE). null: push does not sign.")
    lookaside: str = Field(
        ".platform/signatures", description="Lookaside signature store: a folder (relative to the repository, or "
        "absolute) where make push writes signatures and release/promote/deploy/status read them. Share it "
        "(a bucket synced to it, a web server's folder) between the machines that push and promote.")


class SbomConfig(_Model):
    """The image's SBOM (issue 37)."""

    on_build: bool = Field(False, description="make build makes the SBOM of a tested image (~10-40 s for the "
                           "Airflow image); false: make push makes it once per image (make sbom any time).")


class AuditConfig(_Model):
    """make audit (issue 37): pip-audit over every lock against an OSV service."""

    osv_url: str = Field("https://api.osv.dev", description="OSV-compatible service (its /v1/query is asked per "
                         "pin); AUDIT_OSV_URL overrides it.")
    policy: str = Field("audit.yaml", description="The audit policy (fail_at severity, allowlist with id, reason, "
                        "expires), relative to the repository.")
    on_build: bool = Field(False, description="make build runs make audit first (and fails with it).")
    timeout: int = Field(15, ge=1, le=300, description="Seconds per request to the OSV service.")


class PlatformConfig(_Model):
    airflow_version: str = Field("3.3.2", description="Apache Airflow version the whole platform is pinned to.")
    python_versions: list[str] = Field(
        default_factory=lambda: ["3.12", "3.11"],
        description="Target Pythons: one lock per dependency set and Python.",
        min_length=1,
    )
    platform: Literal["linux/amd64", "linux/arm64"] = Field("linux/amd64", description="Target image platform.")
    glibc: str = Field("2.36", description="glibc of the image base (Debian bookworm: 2.36); bounds manylinux wheels.")
    constraints: str | None = Field(
        None,
        description="Optional extra constraints (path relative to the repo, or URL), e.g. Airflow's "
        "constraints-<version>/constraints-<python>.txt; {airflow_version} and {python} are substituted.",
    )
    resolver: Literal["uv", "pip-tools"] = Field("uv", description="Which resolver compiles the locks.")
    lock_sets: dict[str, list[str]] = Field(
        default_factory=lambda: {"airflow": [], "team": ["airflow"], "dev": ["airflow", "team"], "tools": []},
        description="Dependency sets (requirements/<name>.in) and the sets each is layered on (constrained by).",
    )
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    stack: StackConfig = Field(default_factory=StackConfig)
    setup: SetupConfig = Field(default_factory=SetupConfig)
    upgrade: UpgradeConfig = Field(default_factory=UpgradeConfig)
    signing: SigningConfig = Field(default_factory=SigningConfig)
    sbom: SbomConfig = Field(default_factory=SbomConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)

    _af = matching("airflow_version", _VERSION_RE, "'{}' is not an Airflow version like 3.3.2")

    @field_validator("python_versions")
    @classmethod
    def _pys(cls, v: list[str]) -> list[str]:
        for p in v:
            if not _PY_RE.match(p):
                raise ValueError(f"'{p}' is not a Python version like 3.12")
        if len(set(v)) != len(v):
            raise ValueError("duplicate Python versions")
        return v

    @field_validator("lock_sets")
    @classmethod
    def _sets(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if "airflow" not in v:
            raise ValueError("the 'airflow' set is required: it pins apache-airflow for every other set")
        seen: set[str] = set()
        for name, parents in v.items():
            if not re.match(r"^[a-z][a-z0-9_-]*$", name):
                raise ValueError(f"set name '{name}' must be lowercase letters, digits, - or _")
            for p in parents:
                if p not in v:
                    raise ValueError(f"set '{name}' is layered on unknown set '{p}'")
                if p not in seen:
                    raise ValueError(f"set '{name}' is layered on '{p}', which must be listed before it")
            seen.add(name)
        return v

    @model_validator(mode="after")
    def _image_python_is_locked(self) -> PlatformConfig:
        if self.image.python not in self.python_versions:
            raise ValueError(
                f"image.python {self.image.python} has no lock: add it to python_versions "
                f"({', '.join(self.python_versions)}) and run make lock"
            )
        return self


# Environment variables a user can pass as `make <target> NAME=value`.
ENV_OVERRIDES: dict[str, str] = {
    "AIRFLOW_VERSION": "airflow_version",
    "PYTHON": "image.python",
    "PYTHONS": "python_versions",
    "BASE_MODE": "image.base_mode",
    "BASE_IMAGE": "image.base_image",
    "ENGINE": "image.engine",
    "DOCKER": "image.docker",
    "RESOLVER": "resolver",
    "REGISTRY": "registry.repository",
    "CONSTRAINTS": "constraints",
    "CA_BUNDLE": "image.build_secrets.ca_bundle",
    "IMAGE_VERSION": "image.version",
    "INDEX_URL_FILE": "image.build_secrets.index_url",
    "UV_IMAGE": "image.uv_image",
    "BUILD_CACHE": "image.build_cache",
    "PLATFORM_SIGNING_KEY": "signing.key",
    "SIGNATURES": "signing.lookaside",
    "AUDIT_OSV_URL": "audit.osv_url",
}


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = data
    for k in keys[:-1]:
        nxt = cur.get(k)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[k] = nxt
        cur = nxt
    cur[keys[-1]] = value


def _parse_value(dotted: str, raw: str) -> Any:
    if dotted == "python_versions":
        return [p for p in re.split(r"[ ,]+", raw.strip()) if p]
    if dotted.endswith("build_secrets"):
        out = {}
        for item in re.split(r"[ ,]+", raw.strip()):
            if item:
                k, _, v = item.partition("=")
                out[k] = v
        return out
    return raw


def collect_overrides(sets: list[str] | None = None, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Overrides from the environment (ENV_OVERRIDES) then `--set key=value` (which wins)."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for var, dotted in ENV_OVERRIDES.items():
        val = env.get(var)
        if val:
            out[dotted] = (_parse_value(dotted, val), f"environment variable {var}")
    for item in sets or []:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r} is not key=value", "e.g. --set image.python=3.11")
        out[key.strip()] = (_parse_value(key.strip(), val), f"--set {key.strip()}")
    return out


def load_config(root: Path, overrides: dict[str, Any] | None = None) -> PlatformConfig:
    return load_config_with_sources(root, overrides)[0]


def load_config_with_sources(root: Path, overrides: dict[str, Any] | None = None
                             ) -> tuple[PlatformConfig, dict[str, str]]:
    """The configuration and, for every value not from platform.yaml or the defaults, where it came from
    ({dotted key: source})."""
    path = root / CONFIG_FILE
    data: dict[str, Any] = {}
    text = ""
    if path.exists():
        data, text = read_yaml(path, CONFIG_FILE)  # bounded, UTF-8, one line naming the file
    sources: dict[str, str] = {}
    for dotted, value in machine.load(root).items():
        _set_dotted(data, dotted, value)
        sources[dotted] = machine.SOURCE
    for dotted, (value, source) in (overrides or {}).items():
        _set_dotted(data, dotted, value)
        sources[dotted] = source
    try:
        return PlatformConfig.model_validate(data), sources
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(root)"
        # the layer that set the field (or, for a cross-field check, the key its message names)
        source = sources.get(field) or next(
            (s for k, s in reversed(sources.items()) if field.startswith(k + ".") or k.startswith(field + ".")
             or k in err["msg"]), None)
        if source == machine.SOURCE:
            where, extra = source, f"; or delete {machine.SOURCE} to start over"
        elif source:
            where, extra = source, ""
        else:
            line = line_of(text, loc) if text else None
            where, extra = (f"{CONFIG_FILE}:{line}" if line else CONFIG_FILE), ""
        msg = err["msg"].removeprefix("Value error, ")
        hint = None
        if err["type"] == "extra_forbidden":
            known = sorted(_known_fields(loc[:-1]))
            hint = f"known keys: {', '.join(known)}"
        elif err["type"] == "literal_error":
            hint = "see schemas/platform.schema.json"
        if extra:
            hint = (hint or "fix the value") + extra
        raise ConfigError(f"{field}: {msg}", hint, where=where) from None


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = PlatformConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            break
    return list(model.model_fields)
