"""What an environment declares its instance must have: pools (name -> slots ...) and connections (id, type).

The built-in `local` environment (no environments/local.yaml) derives its pools: every pool a flavor names
(flavors.yaml `pool:`) and every pool another environment declares, with the smallest slot count declared
anywhere (1 for a flavor pool nobody declares); so a pipeline that deploys to dev or prod runs locally too.
Its connections are the ones the pipelines name, checked (not required) by make up: a fresh local stack has none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..environments import ENV_DIR, Environment, load_environment
from ..yamlfile import line_of

DEFAULT_POOL = "default_pool"  # every Airflow instance has it; never created, deleted or reported as extra


@dataclass(frozen=True)
class DesiredPool:
    name: str
    slots: int | None  # None only when removed
    description: str = ""
    include_deferred: bool = False
    removed: bool = False
    where: str = ""  # file:line it is declared at (or how it was derived)


@dataclass(frozen=True)
class DesiredConnection:
    conn_id: str
    conn_type: str | None  # None: any type (derived for local)
    api_visible: bool = True
    required: bool = True  # False: reported, never refuses (the built-in local's)
    where: str = ""


@dataclass
class Declared:
    environment: str
    file: str | None  # environments/<env>.yaml, None for the built-in local
    pools: dict[str, DesiredPool] = field(default_factory=dict)
    connections: dict[str, DesiredConnection] = field(default_factory=dict)
    adopts_connections: bool = False  # built-in local: whatever the pipelines name
    manages_connections: bool = True  # False: the file has no `connections:` (not checked; render warns)

    @property
    def live_pools(self) -> list[str]:
        """Pools a job may use here (declared, not removed; default_pool always exists)."""
        return sorted({n for n, p in self.pools.items() if not p.removed} | {DEFAULT_POOL})

    def has_connection(self, conn_id: str) -> bool:
        return self.adopts_connections or not self.manages_connections or conn_id in self.connections


def env_file(root: Path, name: str) -> Path:
    return root / ENV_DIR / f"{name}.yaml"


def _lines(root: Path, name: str) -> str:
    p = env_file(root, name)
    return p.read_text(errors="replace") if p.exists() else ""


def declared(root: Path, env: Environment, others: list[Environment] | None = None,
             flavor_pools: dict[str, str] | None = None, needed_connections: dict[str, str] | None = None) -> Declared:
    """The environment's declared settings. others / flavor_pools feed the built-in local's derivation
    (loaded when not given); needed_connections (conn id -> where a pipeline names it) fills its connections."""
    rel = f"{ENV_DIR}/{env.name}.yaml"
    if env.name == "local" and not env_file(root, "local").exists():
        return _builtin_local(root, others, flavor_pools, needed_connections or {})
    text = _lines(root, env.name)

    def where(*loc: str) -> str:
        line = line_of(text, loc) if text else None
        return f"{rel}:{line}" if line else rel

    out = Declared(env.name, rel, manages_connections=env.connections is not None)
    for name, p in env.pools.items():
        out.pools[name] = DesiredPool(name, p.slots, p.description, p.include_deferred, p.removed,
                                      where("pools", name))
    for cid, c in (env.connections or {}).items():
        out.connections[cid] = DesiredConnection(cid, c.conn_type, c.api_visible, True, where("connections", cid))
    b = env.bundle
    if b.kind == "s3" and b.describe_connection and b.aws_conn_id not in out.connections and out.manages_connections:
        # the platform writes it into the instance's config (AIRFLOW_CONN_*): declared, and invisible to the API
        out.connections[b.aws_conn_id] = DesiredConnection(b.aws_conn_id, "aws", False, True,
                                                           where("bundle", "aws_conn_id"))
    return out


def _builtin_local(root: Path, others: list[Environment] | None, flavor_pools: dict[str, str] | None,
                   needed: dict[str, str]) -> Declared:
    from ..deploy.live import environment_names

    if others is None:
        others = [load_environment(root, n) for n in environment_names(root) if n != "local"]
    if flavor_pools is None:
        from ..pipelines.project import flavor_pools as catalog_pools

        flavor_pools = catalog_pools(root)
    slots: dict[str, tuple[int, str]] = {}
    for e in others:
        for name, p in e.pools.items():
            if not p.removed and p.slots and (name not in slots or p.slots < slots[name][0]):
                slots[name] = (p.slots, f"{ENV_DIR}/{e.name}.yaml")
    out = Declared("local", None, adopts_connections=True)
    for flavor, name in sorted(flavor_pools.items()):
        slots.setdefault(name, (1, f"flavors.yaml (flavor {flavor})"))
    for name, (n, src) in sorted(slots.items()):
        if name != DEFAULT_POOL:
            out.pools[name] = DesiredPool(name, n, f"local stack (from {src})", False, False, f"built in, from {src}")
    for cid, src in sorted(needed.items()):
        out.connections[cid] = DesiredConnection(cid, None, True, False, src)
    return out
