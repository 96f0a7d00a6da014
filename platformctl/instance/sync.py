"""Read an instance's pools and connections, diff them against the declaration, apply the pool changes.

Order on deploy (before the bundle switch): read everything first (pools, each connection), refuse when a
required connection is missing, then write pool by pool. An unreachable or refusing API stops the deploy
before the switch; a write failing midway names what was applied and what was not. A pool is deleted only
when its declaration says `removed: true`, and never while tasks are queued, scheduled, running or deferred
in it (asked again just before the delete): it is kept and reported, and the next deploy deletes it.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ..environments import Environment
from ..errors import InstanceSettingsError, PlatformError
from .api import LivePool, SettingsAPI
from .settings import DEFAULT_POOL, Declared, DesiredPool, declared

Action = Literal["create", "update", "delete", "keep", "ensure"]


@dataclass(frozen=True)
class PoolChange:
    name: str
    action: Action  # keep: marked removed but tasks use it; ensure: the instance was not read
    before: dict | None
    after: dict | None
    differs: tuple[str, ...] = ()
    note: str = ""

    def line(self) -> str:
        a, b = self.after or {}, self.before or {}
        if self.action == "create":
            return f"+ pool {self.name}: {a['slots']} slots" + (f" ({a['description']})" if a.get("description") else "")
        if self.action == "ensure":
            return f"? pool {self.name}: {a['slots']} slots (create or update; the instance was not read)"
        if self.action == "update":
            what = "; ".join(f"{k} {b.get(k)!r} -> {a.get(k)!r}" for k in self.differs)
            return f"~ pool {self.name}: {what}"
        if self.action == "delete":
            return f"- pool {self.name} ({b.get('slots')} slots; marked removed)"
        return f"! pool {self.name}: marked removed but kept: {self.note}"


@dataclass(frozen=True)
class ConnectionCheck:
    conn_id: str
    declared_type: str | None
    found: bool | None  # None: not asked (not API-visible, or the instance was not read)
    found_type: str | None = None
    required: bool = True
    where: str = ""

    def line(self) -> str | None:
        if self.found is False:
            return (f"{'MISSING' if self.required else 'missing'} connection {self.conn_id}"
                    + (f" ({self.declared_type})" if self.declared_type else "") + f", declared at {self.where}"
                    + ("" if self.required else " (the local stack: create it to run what uses it)"))
        if self.found and self.declared_type and self.found_type and self.found_type != self.declared_type:
            return f"connection {self.conn_id} is of type {self.found_type}, declared {self.declared_type}"
        return None


@dataclass
class SettingsState:
    """The instance's settings against the declaration: what deploy would change, and the drift."""

    environment: str
    api_url: str | None
    read: bool
    reason: str = ""  # why the instance was not read
    changes: list[PoolChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    only_on_instance: list[dict] = field(default_factory=list)
    connections: list[ConnectionCheck] = field(default_factory=list)

    @property
    def missing(self) -> list[ConnectionCheck]:
        return [c for c in self.connections if c.required and c.found is False]

    @property
    def refused(self) -> bool:
        return bool(self.missing)

    @property
    def has_changes(self) -> bool:
        return any(c.action != "keep" for c in self.changes)

    def to_json(self) -> dict:
        return {**asdict(self), "missing": [c.conn_id for c in self.missing], "refused": self.refused}

    def plan_lines(self) -> list[str]:
        """For make plan: the pool changes deploy makes and the connections it would refuse on."""
        head = "instance settings (pools, connections)"
        if not self.read:
            head += f": instance not read ({self.reason}); make deploy does not apply them, apply by hand:"
        out = [head]
        out += [f"  {c.line()}" for c in self.changes]
        if self.read and not self.changes:
            out.append(f"  pools: no changes ({len(self.unchanged)} as declared)")
        out += [f"  {ln}" for c in self.connections if (ln := c.line())]
        if not self.read:
            out += [f"  ? connection {c.conn_id} ({c.declared_type or 'any type'}) must exist"
                    for c in self.connections if c.required and c.found is None and c.declared_type]
        elif not any(c.line() for c in self.connections):
            asked = sum(1 for c in self.connections if c.found)
            out.append(f"  connections: {asked} found" + (", others not visible to the API" if asked <
                                                          len(self.connections) else ""))
        return out

    def drift_lines(self) -> list[str]:
        """For make status: how the instance differs from environments/<env>.yaml."""
        if not self.read:
            return [f"  settings: not read ({self.reason})"]
        out = []
        for c in self.changes:
            b, a = c.before or {}, c.after or {}
            if c.action == "update":
                what = ", ".join(f"{k} {b.get(k)!r} on the instance, {a.get(k)!r} declared" for k in c.differs)
                out.append(f"  DRIFT pool {c.name}: {what}")
            elif c.action == "create":
                out.append(f"  DRIFT pool {c.name}: declared ({a['slots']} slots), not on the instance")
            elif c.action == "delete":
                out.append(f"  DRIFT pool {c.name}: marked removed, still on the instance ({b.get('slots')} slots)")
            else:
                out.append(f"  DRIFT pool {c.name}: marked removed, kept ({c.note})")
        for p in self.only_on_instance:
            out.append(f"  DRIFT pool {p['name']}: only on the instance ({p['slots']} slots), not declared")
        out += [f"  DRIFT {ln}" for c in self.connections if (ln := c.line())]
        if not out:
            out.append(f"  settings: as declared ({len(self.unchanged)} pool(s), "
                       f"{sum(1 for c in self.connections if c.found)} connection(s) found)")
        return out


@dataclass(frozen=True)
class ApplyResult:
    environment: str
    applied: list[PoolChange]
    kept: list[PoolChange]
    state: SettingsState


# ------------------------------------------------------------------------------ where the instance is
def api_for(root: Path, env: Environment, url: str | None = None) -> tuple[SettingsAPI | None, str]:
    """The instance's API (or None and why not): --airflow-url, the environment's managed.api_url, and for
    the built-in local environment the running local stack (STACK_PROJECT, default ml-platform)."""
    if url:
        return SettingsAPI.for_url(url, "--airflow-url"), ""
    if env.managed.api_url:
        return SettingsAPI.for_url(env.managed.api_url, f"managed.api_url in environments/{env.name}.yaml"), ""
    if env.name == "local":
        from ..stack.compose import Stack

        project = os.environ.get("STACK_PROJECT") or "ml-platform"
        stack = Stack(root, project, "stack/compose.yaml")
        port = stack.state().get("AIRFLOW_PORT")
        if port and _answers(f"http://127.0.0.1:{port}"):
            return SettingsAPI.for_url(f"http://127.0.0.1:{port}", f"the local stack '{project}'"), ""
        return None, f"the local stack '{project}' is not up (make up applies them)"
    return None, f"no managed.api_url in environments/{env.name}.yaml"


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/api/v2/monitor/health", timeout=15).status_code == 200  # refused at once if down
    except requests.RequestException:
        return False


def _want(p: DesiredPool) -> dict:
    return {"slots": p.slots, "description": p.description, "include_deferred": p.include_deferred}


def _have(p: LivePool) -> dict:
    return {"slots": p.slots, "description": p.description, "include_deferred": p.include_deferred}


def unread(decl: Declared, reason: str) -> SettingsState:
    st = SettingsState(decl.environment, None, False, reason)
    st.changes = [PoolChange(p.name, "ensure", None, _want(p)) for p in decl.pools.values() if not p.removed]
    st.connections = [ConnectionCheck(c.conn_id, c.conn_type, None, None, c.required, c.where)
                      for c in decl.connections.values()]
    return st


def read_state(api: SettingsAPI, decl: Declared) -> SettingsState:
    """Every read deploy needs, before any write: the pools (with their use) and each declared connection."""
    live = api.pools()
    st = SettingsState(decl.environment, api.base_url, True)
    for name, p in sorted(decl.pools.items()):
        have = live.get(name)
        if p.removed:
            if have is None:
                continue
            if have.in_use:
                st.changes.append(PoolChange(name, "keep", _have(have), None, note=_use(have)))
            else:
                st.changes.append(PoolChange(name, "delete", _have(have), None))
        elif have is None:
            st.changes.append(PoolChange(name, "create", None, _want(p)))
        else:
            keys = ("slots", "include_deferred") if name == DEFAULT_POOL else ("slots", "description",
                                                                                "include_deferred")
            differs = tuple(k for k in keys if _have(have)[k] != _want(p)[k])
            if differs:
                st.changes.append(PoolChange(name, "update", _have(have), _want(p), differs))
            else:
                st.unchanged.append(name)
    st.only_on_instance = [{"name": n, "slots": p.slots, "in_use": p.in_use} for n, p in sorted(live.items())
                           if n not in decl.pools and n != DEFAULT_POOL]
    for c in decl.connections.values():
        if not c.api_visible:
            st.connections.append(ConnectionCheck(c.conn_id, c.conn_type, None, None, c.required, c.where))
            continue
        t = api.connection_type(c.conn_id)
        st.connections.append(ConnectionCheck(c.conn_id, c.conn_type, t is not None, t, c.required, c.where))
    return st


def _use(p: LivePool) -> str:
    parts = [f"{n} {k}" for k, n in (("running", p.running), ("queued", p.queued), ("scheduled", p.scheduled),
                                     ("deferred", p.deferred)) if n]
    return f"{', '.join(parts)} task(s) use it; the next deploy deletes it"


def settings_state(root: Path, env: Environment, url: str | None = None,
                   needed_connections: dict[str, str] | None = None) -> SettingsState:
    """Declared vs the instance (read-only): for make plan and make status. Raises the API's errors."""
    if env.name == "local" and needed_connections is None:
        from .check import needed_connections as needed

        needed_connections = needed(root)
    decl = declared(root, env, needed_connections=needed_connections)
    api, why = api_for(root, env, url)
    if api is None:
        return unread(decl, why)
    return read_state(api, decl)


def apply(api: SettingsAPI, decl: Declared) -> ApplyResult:
    """Read, refuse on a missing required connection, then apply the pool changes one by one."""
    st = read_state(api, decl)  # unreachable / 401 / 403 here: nothing was written
    if st.missing:
        m = st.missing
        raise InstanceSettingsError(
            f"{decl.environment}: connection {', '.join(c.conn_id for c in m)} declared at {m[0].where} is not on "
            f"the instance at {api.base_url}", "create it there (with its secret) or through the secrets backend, "
            "then deploy again; nothing was applied, the bundle was not switched")
    done: list[PoolChange] = []
    kept = [c for c in st.changes if c.action == "keep"]
    for c in st.changes:
        try:
            if c.action == "create":
                api.create_pool(c.name, **c.after)  # type: ignore[arg-type]
            elif c.action == "update":
                api.update_pool(c.name, **c.after)  # type: ignore[arg-type]
            elif c.action == "delete":
                now = api.pool(c.name)  # asked again: a task may have started since the read
                if now is not None and now.in_use:
                    kept.append(PoolChange(c.name, "keep", c.before, None, note=_use(now)))
                    continue
                api.delete_pool(c.name)
            else:
                continue
        except PlatformError as exc:
            left = [x.name for x in st.changes if x not in done and x.action != "keep"]
            raise type(exc)(f"{decl.environment}: pool {c.name} not applied: {exc.message}",
                            f"applied: {', '.join(x.name for x in done) or 'nothing'}; not applied: "
                            f"{', '.join(left)}; the bundle was not switched"
                            + (f" ({exc.hint})" if exc.hint else "")) from None
        done.append(c)
    return ApplyResult(decl.environment, done, kept, st)


# ------------------------------------------------------------------------------ make deploy / make up
@dataclass(frozen=True)
class DeploySettings:
    """What make deploy did with the instance's settings: applied (result) or not (state: what must be)."""

    environment: str
    result: ApplyResult | None
    not_applied: SettingsState | None

    def lines(self) -> list[str]:
        if self.result is None:
            st = self.not_applied
            assert st is not None
            n = sum(1 for c in st.changes)
            return [f"  instance settings NOT applied ({st.reason}): {n} pool(s) and "
                    f"{sum(1 for c in st.connections if c.required)} connection(s) declared; make plan "
                    f"ENV={self.environment} lists them"]
        r = self.result
        out = [f"  instance settings: {len(r.applied)} pool change(s) applied"
               + (f" ({', '.join(c.action + ' ' + c.name for c in r.applied)})" if r.applied else "")
               + f", {len(r.state.unchanged)} as declared; "
               + f"{sum(1 for c in r.state.connections if c.found)} connection(s) found"]
        out += [f"  kept pool {c.name}: {c.note}" for c in r.kept]
        out += [f"  note: {ln}" for c in r.state.connections if (ln := c.line())]
        out += [f"  note: pool {p['name']} is on the instance only (not declared; deploy leaves it)"
                for p in r.state.only_on_instance]
        return out


def deploy_settings(root: Path, env: Environment, url: str | None = None) -> DeploySettings:
    """Apply the environment's pools and check its connections, or say why not (no API configured)."""
    needed = None
    if env.name == "local":
        from .check import needed_connections

        needed = needed_connections(root)
    decl = declared(root, env, needed_connections=needed)
    api, why = api_for(root, env, url)
    if api is None:
        return DeploySettings(env.name, None, unread(decl, why))
    return DeploySettings(env.name, apply(api, decl), None)


# ------------------------------------------------------------------------------ make plan
def plan_settings(root: Path, env: Environment, url: str | None = None) -> tuple[SettingsState, str | None]:
    """Declared vs the instance for make plan; an instance that cannot be read is a note (the plan shows what
    must be applied), not the plan's failure. Returns the state and the note."""
    needed = None
    if env.name == "local":
        from .check import needed_connections

        needed = needed_connections(root)
    decl = declared(root, env, needed_connections=needed)
    api, why = api_for(root, env, url)
    if api is not None:
        try:
            return read_state(api, decl), None
        except PlatformError as exc:
            return unread(decl, exc.one_line()), f"instance settings not read: {exc.one_line()}"
    return unread(decl, why), None


def plan_json(st: SettingsState) -> dict:
    """The plan's `settings`: the state, and its text lines (make plan prints them; JSON readers get both)."""
    return {**st.to_json(), "lines": st.plan_lines()}


def settings_plan_lines(settings: dict) -> list[str]:
    return list(settings.get("lines", []))
