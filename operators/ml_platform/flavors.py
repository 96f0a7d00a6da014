"""The flavor catalog: named resource shapes (cpu, memory, gpu, placement) every job chooses from.

Airflow-free on purpose: the build side validates pipelines against it without importing Airflow.
"""

from __future__ import annotations

import difflib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import CatalogFileError, FlavorError, PlatformConfigError
from .quantities import cpu_millicores, memory_bytes
from .yamlsafe import YamlFileError, load_file

ENV_CATALOG = "ML_PLATFORM_FLAVORS"
ENV_ALLOWED = "ML_PLATFORM_ALLOWED_FLAVORS"
_REPO_CATALOG = Path(__file__).resolve().parents[2] / "flavors.yaml"
_REPO_CATALOG_STR = str(_REPO_CATALOG)
# What one pod of a flavor may ask for. Kubernetes itself accepts quantities up to 2^63-1 (quantities.py);
# these bounds catch typos (10^20 GPUs, 10^26 cores) long before that, yet sit above the largest nodes
# sold today (896 vCPUs / 32 TiB of memory, 16 GPUs).
MAX_CPU_CORES = 1024
MAX_MEMORY = 64 * 2**40  # 64Ti
MAX_EPHEMERAL = 2**50  # 1Pi
MAX_GPUS = 64
# An Airflow pool name as the platform accepts it: Airflow's API refuses an empty name or one longer than 256
# characters (PoolBody.pool max_length), and its metrics rename a name with other characters than these.
POOL_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,256}$"


def pool_name_problem(name: object) -> str | None:
    """Why `name` is not a pool name the platform declares, or None."""
    import re

    if not isinstance(name, str):
        return f"{name!r} is not a pool name (text: letters, digits, _ . -)"
    if not name:
        return "a pool name must not be empty (Airflow refuses it)"
    if len(name) > 256:
        return f"pool name '{name[:40]}...' is {len(name)} characters long: Airflow refuses more than 256"
    if not re.match(POOL_NAME_PATTERN, name):
        return (f"pool name {name!r} may hold only letters, digits, _ . - (Airflow's metrics rename other "
                "characters)")
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Model):
    """A request and a limit of one kind of quantity; each kind says how to read one, the most one pod can get,
    and what to say of a value that is no quantity of its kind or too large."""

    request: str = Field(description="What the scheduler reserves.")
    limit: str = Field(description="The hard cap; must be >= request.")

    _amount: ClassVar[Callable[[str], int]]
    _most: ClassVar[int]
    _not_one: ClassVar[str]
    _too_much: ClassVar[str]

    @field_validator("request", "limit", mode="before")
    @classmethod
    def _quantity(cls, v):
        if isinstance(v, bool):
            raise ValueError(f"{v} {cls._not_one}")
        v = str(v)
        if cls._amount(v) > cls._most:
            raise ValueError(f"'{v}' {cls._too_much}")
        return v

    @model_validator(mode="after")
    def _order(self):
        if self._amount(self.limit) < self._amount(self.request):
            raise ValueError(f"limit '{self.limit}' is below the request '{self.request}' "
                             "(raise the limit or lower the request)")
        return self


class CpuRange(Range):
    _amount = staticmethod(cpu_millicores)
    _most = MAX_CPU_CORES * 1000
    _not_one = "is not a CPU quantity (use cores like 2 or 0.5, or millicores like 500m)"
    _too_much = f"is more than one pod can get (at most {MAX_CPU_CORES} cores)"


class MemoryRange(Range):
    _amount = staticmethod(memory_bytes)
    _most = MAX_MEMORY
    _not_one = "is not a memory quantity (use e.g. 512Mi, 4Gi, 2G)"
    _too_much = f"is more memory than one pod can get (at most {MAX_MEMORY >> 40}Ti)"


class Gpu(_Model):
    count: int = Field(ge=1, le=MAX_GPUS, description="Whole GPUs (no fractions); set in limits only.")
    resource: str | None = Field(None, description="Extended resource name, e.g. nvidia.com/gpu.")
    type: str | None = Field(None, description="GPU model, e.g. a100 (informational / node selection).")

    @field_validator("count", mode="before")
    @classmethod
    def _whole(cls, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{v!r} is not a number of GPUs (a whole number, 1 to {MAX_GPUS})")
        if isinstance(v, float) and not v.is_integer():
            raise ValueError(f"{v} GPUs: GPUs cannot be shared, use a whole number")
        return v

    @model_validator(mode="after")
    def _resource(self):
        if not self.resource:
            raise ValueError("a GPU flavor needs gpu.resource (e.g. nvidia.com/gpu)")
        return self


class Toleration(_Model):
    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Flavor(_Model):
    description: str
    cpu: CpuRange
    memory: MemoryRange
    gpu: Gpu | None = None
    ephemeral_storage: str | None = Field(None, description="Scratch disk limit, e.g. 20Gi.")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    priority_class: str | None = None
    pool: str | None = Field(None, description="Airflow pool this flavor's jobs run in unless they name their own "
                             "(bounds how many run at once: declare it in environments/<env>.yaml pools).",
                             json_schema_extra={"pattern": POOL_NAME_PATTERN}, examples=["gpu-a100"])

    @field_validator("pool")
    @classmethod
    def _pool(cls, v):
        problem = pool_name_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("ephemeral_storage", mode="before")
    @classmethod
    def _disk(cls, v):
        if v is not None:
            if isinstance(v, bool):
                raise ValueError(f"{v} is not a disk quantity (use e.g. 20Gi)")
            v = str(v)
            if memory_bytes(v) > MAX_EPHEMERAL:
                raise ValueError(f"'{v}' is more scratch disk than one pod can get (at most 1Pi)")
        return v


class FlavorCatalog(_Model):
    flavors: dict[str, Flavor] = Field(min_length=1)

    @field_validator("flavors")
    @classmethod
    def _names(cls, v: dict[str, Flavor]) -> dict[str, Flavor]:
        import re

        for name in v:
            if not re.match(r"^[a-z][a-z0-9-]{0,40}$", name):
                raise ValueError(f"flavor name '{name}' must be lowercase letters, digits and -")
        return v

    def names(self) -> list[str]:
        return sorted(self.flavors)

    def get(self, name: str, *, allowed: set[str] | None = None) -> Flavor:
        if name in self.flavors and (allowed is None or name in allowed):  # every job of every DAG parse
            return self.flavors[name]
        usable = sorted(n for n in self.flavors if allowed is None or n in allowed)
        if name not in self.flavors:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise FlavorError(f"resource_flavor '{name}' is not in the flavor catalog "
                              f"({hint}allowed: {', '.join(usable) or 'none'})")
        if allowed is not None and name not in allowed:
            raise FlavorError(f"resource_flavor '{name}' is not allowed in this environment "
                              f"(allowed: {', '.join(usable) or 'none'})")
        return self.flavors[name]


def allowed_flavors() -> set[str] | None:
    """The environment's allowed flavors (ML_PLATFORM_ALLOWED_FLAVORS, comma separated); None = all."""
    raw = os.environ.get(ENV_ALLOWED)
    if raw is None or not raw.strip():
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def catalog_path(path: str | Path | None = None) -> Path:
    if path:
        return Path(path)
    if os.environ.get(ENV_CATALOG):
        return Path(os.environ[ENV_CATALOG])
    return _REPO_CATALOG


def _line_of(text: str, loc: tuple) -> int | None:
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if k.value == str(key)), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


_CACHE: dict[tuple[str, int, int], FlavorCatalog] = {}


def load_catalog(path: str | Path | None = None) -> FlavorCatalog:
    """Load and validate the catalog; errors name the file, line and field in one line. Each job of a DAG
    parse calls this: a catalog already validated costs one stat (a changed file is read again)."""
    # The hot path (every job of every DAG file) is one stat of the path as given: no Path object is built
    # unless the catalog has to be read (about 2 us a job instead of 6).
    where = str(path) if path else (os.environ.get(ENV_CATALOG) or _REPO_CATALOG_STR)  # as catalog_path()
    try:
        st = os.stat(where)
    except OSError:
        st = None
    if st is not None and (key := (where, st.st_mtime_ns, st.st_size)) in _CACHE:
        return _CACHE[key]  # DAG files parse it once per process, not once per task
    p = Path(where)
    if st is None or not stat.S_ISREG(st.st_mode):
        raise CatalogFileError(f"{p}: flavor catalog not found (set {ENV_CATALOG} to its path)")
    try:
        data, text = load_file(p)  # bounded, strict UTF-8, safe types only
    except YamlFileError as exc:
        raise CatalogFileError(f"{p}:{exc.line or '?'}: {exc.message}") from None
    try:
        catalog = FlavorCatalog.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(x) for x in err["loc"] if not str(x).startswith("function-"))
        field = ".".join(loc)
        line = _line_of(text, loc)
        at = f"{p.name}:{line}" if line else p.name
        raise PlatformConfigError(f"{at}: {field} {err['msg'].removeprefix('Value error, ')}") from None
    _CACHE[key] = catalog
    return catalog


def catalog_json_schema() -> str:
    return json.dumps(FlavorCatalog.model_json_schema(), indent=2, sort_keys=True) + "\n"
