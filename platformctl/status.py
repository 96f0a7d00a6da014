"""`make status` and `make diff FROM= TO=`: what runs where, read from the registry and the bundle stores.

Nothing local is trusted for the live state: the bundle (version, commit, date, the image it was built for)
comes from each environment's store pointer and manifest, the image's release and commit from the registry
(tags and OCI labels). Local git is used only to name the commits and pin changes between two live states.
Read-only; environments are read in parallel; one environment that cannot be read does not hide the others.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

from .config import PlatformConfig
from .deploy.live import (env_repository, environment_names, inspect_digest, live_job_uses, open_store,
                          own_repository, read_live, read_registry, resolve_environment)
from .deploy.plan import pin_changes, short
from .environments import Environment
from .errors import PlatformError, RegistryUnavailable
from .registry.refs import registry_host


@dataclass
class EnvStatus:
    name: str
    repository: str
    store: str
    prefix: str
    deployed: bool | None = None  # None: the store could not be read
    bundle: dict | None = None
    image: dict | None = None
    newest_release: dict | None = None  # environments with a repository of their own (promote targets)
    flags: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "<env>: <part>: <message>", one per unreadable part
    # the same parts, for grouping: part (registry, bundle store), where (registry host, store), outage (a
    # registry that is down is one outage however many environments use it), message
    unreadable: list[dict] = field(default_factory=list)
    settings: dict | None = None  # the instance's pools and connections against the file (#35); None: not read
    settings_lines: list[str] = field(default_factory=list)
    last_entry: dict | None = None  # the deploy ledger's newest entry (issue 38)
    refused: str | None = None  # why the instance refuses the live pointer's version (signature), if it does

    def cannot_read(self, part: str, where: str, exc: PlatformError) -> None:
        self.errors.append(f"{self.name}: {part}: {exc.one_line()}")
        self.unreadable.append({"env": self.name, "part": part, "where": where,
                                "outage": isinstance(exc, RegistryUnavailable), "message": exc.one_line()})


def env_status(root: Path, cfg: PlatformConfig, env: Environment, skopeo_factory) -> tuple[EnvStatus, object, object]:
    """The status of one environment, plus (store, live) for drift and diff.

    The store (pointer, manifest, then the image it names) and the registry's release tags are read at the
    same time: each is a few round trips, and neither waits for the other.
    """
    repo = env_repository(env, cfg)
    st = EnvStatus(env.name, repo, "", env.bundle.prefix)

    registry_errors: list[PlatformError] = []

    def from_store():
        store = open_store(root, env)
        st.store = store.url
        live = read_live(store, env.bundle.prefix)
        _trust_facts(store, env, st)
        info = None
        if live and live.image_digest:
            try:
                info = inspect_digest(skopeo_factory(), repo, live.image_digest)
            except PlatformError as exc:
                registry_errors.append(exc)
        return store, live, info

    store, live, info, view = None, None, None, None
    with ThreadPoolExecutor(max_workers=1) as pool:
        f_store = pool.submit(from_store)
        tags: list[str] | None = None
        try:
            sk = skopeo_factory()
            tags = sk.tags(repo)  # meanwhile the store is read
        except PlatformError as exc:
            registry_errors.insert(0, exc)
        try:
            store, live, info = f_store.result()
        except PlatformError as exc:
            st.cannot_read("bundle store", env.bundle.prefix, exc)
        if tags is not None:
            try:  # the releases, newest first, until the live image's is found
                view = read_registry(_Tags(sk, tags), repo, want={live.image_digest} if live and live.image_digest
                                     else set())
            except PlatformError as exc:
                registry_errors.insert(0, exc)
    if registry_errors:
        st.cannot_read("registry", registry_host(repo), registry_errors[0])
    _settings(root, env, st)
    st.deployed = None if store is None else live is not None
    if live:
        st.bundle = {"version": live.version, "commit": live.commit, "switched_at": live.switched_at,
                     "created": live.created, "image_digest": live.image_digest, "files": len(live.files),
                     "history": live.history[:5]}
    if view is None:
        return st, store, live
    newest = view.newest_release()
    if own_repository(env) and newest:
        st.newest_release = {"version": newest, "digest": view.releases[newest].digest}
    if live and live.image_digest:
        st.image = {"digest": live.image_digest, "in_registry": info is not None,
                    "releases": view.releases_of(live.image_digest), "releases_complete": view.complete,
                    "releases_read": len(view.releases),
                    "version": info.version if info else None, "revision": info.revision if info else None,
                    "python": info.python if info else None}
        if info is not None:  # issue 37: is the running digest signed, and by which key
            st.image["signature"] = _signature(root, cfg, env, skopeo_factory, repo, live.image_digest)
        if info is None:
            st.flags.append(f"the bundle was built for image {short(live.image_digest)}, which {repo} does "
                            f"not have (a local, unpushed build?)")
        elif st.newest_release and st.newest_release["digest"] != live.image_digest:
            st.flags.append(f"the bundle was built for {short(live.image_digest)}"
                            f" ({', '.join(st.image['releases']) or 'not a release'}), but {env.name} was "
                            f"promoted to {newest} ({short(st.newest_release['digest'])}): "
                            f"run make deploy ENV={env.name}")
    return st, store, live


def _trust_facts(store, env: Environment, st: EnvStatus) -> None:
    """The ledger's last entry and whether the instance would refuse the live version (issue 38)."""
    from .deploy.deliver import read_pointer
    from .deploy.publish import last_entry, pointer_refusal

    e = last_entry(store, env)
    st.last_entry = e.to_json() if e else None
    try:
        st.refused = pointer_refusal(store, env, read_pointer(store, env.bundle.prefix))
    except (PlatformError, ValueError) as exc:
        st.refused = f"cannot check: {exc}"


def _settings(root: Path, env: Environment, st: EnvStatus) -> None:
    """The instance's settings drift (pools, connections), when its API is configured (#35)."""
    from .instance.sync import settings_state

    try:
        state = settings_state(root, env)
    except PlatformError as exc:
        st.cannot_read("instance settings", exc.where or "the instance's API", exc)
        return
    st.settings = state.to_json() if state.read else None
    st.settings_lines = state.drift_lines()


def _signature(root: Path, cfg: PlatformConfig, env: Environment, skopeo_factory, repo: str, digest: str) -> dict:
    from .supply.service import signature_status

    try:
        return signature_status(root, cfg, env, skopeo_factory(), repo, digest)
    except PlatformError as exc:
        return {"required": env.signatures.required, "signed": None, "key": None, "note": exc.one_line()}


class _Tags:
    """A Skopeo whose tag list was already read."""

    def __init__(self, skopeo, tags: list[str]):
        self._skopeo, self._tags = skopeo, tags

    def tags(self, repository: str) -> list[str]:
        return self._tags

    def inspect(self, ref: str):
        return self._skopeo.inspect(ref)


def _git(root: Path, *args: str) -> str | None:
    p = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def commits_between(root: Path, old: str | None, new: str | None) -> dict:
    """Commits in new not in old and the reverse, named by local git (the commits come from the stores)."""
    if not old or not new:
        return {"known": False, "note": "a bundle has no commit"}
    if old == new:
        return {"known": True, "ahead": [], "behind": []}
    ahead, behind = _git(root, "log", "--oneline", f"{old}..{new}"), _git(root, "log", "--oneline", f"{new}..{old}")
    if ahead is None or behind is None:
        return {"known": False, "note": f"commit {old[:7]} or {new[:7]} is not in this clone (git fetch)"}
    return {"known": True, "ahead": ahead.splitlines(), "behind": behind.splitlines()}


def drift(root: Path, cfg: PlatformConfig, a: EnvStatus, b: EnvStatus) -> dict:
    """How far b is from a: commits of their bundles, pin changes of their images."""
    out = {"from": a.name, "to": b.name}
    if not (a.bundle and b.bundle):
        out["note"] = "not both deployed"
        return out
    out["same_bundle"] = a.bundle["version"] == b.bundle["version"]
    out["same_image"] = a.bundle["image_digest"] == b.bundle["image_digest"]
    out["commits"] = commits_between(root, a.bundle["commit"], b.bundle["commit"])
    ra = a.image["revision"] if a.image else None
    rb = b.image["revision"] if b.image else None
    python = (b.image or {}).get("python") or (a.image or {}).get("python") or cfg.image.python
    if out["same_image"]:
        out["pins"], out["pins_note"] = [], "same image"
    else:
        out["pins"], out["pins_note"] = pin_changes(root, ra, rb, python)
    return out


@dataclass
class Status:
    environments: list[EnvStatus]
    drift: list[dict]

    @property
    def errors(self) -> list[str]:
        return [e for s in self.environments for e in s.errors]

    @property
    def unreadable(self) -> list[dict]:
        return [u for s in self.environments for u in s.unreadable]

    def to_json(self) -> dict:
        return {"environments": {s.name: asdict(s) for s in self.environments}, "drift": self.drift,
                "errors": self.errors}


def status(root: Path, cfg: PlatformConfig, skopeo_factory, names: list[str] | None = None) -> Status:
    names = names or environment_names(root)
    envs = [resolve_environment(root, n) for n in names]
    with ThreadPoolExecutor(max_workers=max(1, len(envs))) as pool:
        results = list(pool.map(lambda e: env_status(root, cfg, e, skopeo_factory), envs))
    sts = [r[0] for r in results]
    shipped = [s for s in sts if s.name != "local" and s.deployed]
    return Status(sts, [drift(root, cfg, a, b) for a, b in combinations(shipped, 2)])


def unreadable_lines(parts: list[dict]) -> list[str]:
    """One line per unreadable part; a registry outage once, naming every environment it hid (not once per
    environment on that registry)."""
    groups: dict[tuple, list[dict]] = {}
    for u in parts:
        key = ("outage", u["part"], u["where"]) if u["outage"] else (u["env"], u["part"], u["message"])
        groups.setdefault(key, []).append(u)
    out = []
    for us in groups.values():
        envs = ", ".join(dict.fromkeys(u["env"] for u in us))
        out.append(f"unreadable: {us[0]['part']} {us[0]['where']} ({envs}): {us[0]['message']}" if us[0]["outage"]
                   else f"unreadable: {envs}: {us[0]['part']}: {us[0]['message']}")
    return out


def _commit_lines(c: dict) -> list[str]:
    if not c.get("known"):
        return [f"  commits: unknown ({c.get('note')})"]
    if not c["ahead"] and not c["behind"]:
        return ["  commits: same commit"]
    out = [f"  commits: {len(c['ahead'])} ahead, {len(c['behind'])} behind"]
    out += [f"    + {ln}" for ln in c["ahead"][:10]] + [f"    - {ln}" for ln in c["behind"][:10]]
    return out


def _pin_lines(d: dict) -> list[str]:
    if d.get("pins") is None:
        return [f"  pins: {d.get('pins_note')}"]
    if not d["pins"]:
        return [f"  pins: no changes ({d.get('pins_note')})"]
    return [("  pins: " if i == 0 else "    ") + ln for block in d["pins"] for i, ln in enumerate(block.splitlines())]


def status_lines(s: Status) -> list[str]:
    out = []
    for e in s.environments:
        out.append(f"{e.name}: {e.repository}, bundles in {e.store or '?'} prefix '{e.prefix}'")
        if e.deployed is False:
            out.append("  not deployed yet")
        if e.bundle:
            b = e.bundle
            out.append(f"  bundle {b['version']} (commit {(b['commit'] or '?')[:7]}, switched {b['switched_at']}, "
                       f"{b['files']} files), built for image {short(b['image_digest'])}")
        if e.image:
            i = e.image
            what = f"release {', '.join(i['releases'])}" if i["releases"] else (
                f"build {i['version']}" if i["version"] else "not in the registry")
            if not i["releases"] and i["in_registry"] and not i.get("releases_complete", True):
                what += f" (not among the {i['releases_read']} newest releases)"
            out.append(f"  image {short(i['digest'])}: {what}"
                       + (f", commit {i['revision'][:7]}" if i.get("revision") else ""))
            sig = i.get("signature")
            if sig:
                out.append("  signature: " + (f"signed by {sig['key']}" if sig["signed"] and sig["key"] else
                                              "signed (not checked: no policy)" if sig["signed"] else
                                              f"NOT SIGNED ({sig['note']})")
                           + (" (required here)" if sig["required"] else ""))
        if e.newest_release:
            out.append(f"  newest release promoted here: {e.newest_release['version']} "
                       f"({short(e.newest_release['digest'])})")
        if e.refused:
            out.append(f"  REFUSED by the instance (the last good version stays live there): {e.refused}")
        if e.last_entry:
            from .deploy.ledger import Entry, line

            out.append(f"  last ledger entry: {line(Entry(**e.last_entry))}")
        out.extend(f"  FLAG: {f}" for f in e.flags)
        out.extend(e.settings_lines)
    for d in s.drift:
        if "note" in d:
            continue
        same = "same bundle" if d["same_bundle"] else "different bundles"
        out.append(f"drift {d['from']} -> {d['to']}: {same}, {'same image' if d['same_image'] else 'different images'}")
        out += _commit_lines(d["commits"]) + _pin_lines(d)
    return out + unreadable_lines(s.unreadable)


# ------------------------------------------------------------------------------------------- diff
def _flat(d, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = d
    return out


def config_diff(a: Environment, b: Environment) -> list[dict]:
    fa, fb = _flat(a.model_dump(mode="json")), _flat(b.model_dump(mode="json"))
    return [{"field": k, "from": fa.get(k), "to": fb.get(k)} for k in sorted(set(fa) | set(fb))
            if k != "name" and fa.get(k) != fb.get(k)]


def env_diff(root: Path, cfg: PlatformConfig, skopeo_factory, src: str, dst: str) -> dict:
    ea, eb = resolve_environment(root, src), resolve_environment(root, dst)
    with ThreadPoolExecutor(max_workers=2) as pool:
        (sa, store_a, la), (sb, store_b, lb) = pool.map(lambda e: env_status(root, cfg, e, skopeo_factory), (ea, eb))
    out = {"from": src, "to": dst, "config": config_diff(ea, eb), "status": {src: asdict(sa), dst: asdict(sb)},
           "errors": sa.errors + sb.errors, "unreadable": sa.unreadable + sb.unreadable}
    if la and lb:
        fa = {r: m["sha256"] for r, m in la.files.items()}
        fb = {r: m["sha256"] for r, m in lb.files.items()}
        out["files"] = {"only_from": sorted(set(fa) - set(fb)), "only_to": sorted(set(fb) - set(fa)),
                        "different": sorted(r for r in set(fa) & set(fb) if fa[r] != fb[r])}
        ja, jb = live_job_uses(store_a, la), live_job_uses(store_b, lb)
        out["jobs"] = [{"file": k[0], "job": k[1], "from": ja.get(k), "to": jb.get(k)}
                       for k in sorted(set(ja) | set(jb)) if ja.get(k) != jb.get(k)]
        out["drift"] = drift(root, cfg, sa, sb)
    return out


def diff_lines(d: dict) -> list[str]:
    out = [f"diff {d['from']} -> {d['to']}", "configuration (environments/*.yaml):"]
    out += [f"  {c['field']}: {c['from']!r} -> {c['to']!r}" for c in d["config"]] or ["  identical"]
    out.append("live state:")
    for name in (d["from"], d["to"]):
        s = d["status"][name]
        b = s["bundle"]
        if s["deployed"] is False:
            out.append(f"  {name}: not deployed yet")
        elif b:
            img = s["image"] or {}
            rel = ", ".join(img.get("releases") or []) or img.get("version") or "?"
            out.append(f"  {name}: bundle {b['version']} commit {(b['commit'] or '?')[:7]}, image "
                       f"{short(b['image_digest'])} ({rel})")
    if "files" in d:
        f = d["files"]
        if not any(f.values()):
            out.append("  bundle files: identical")
        out += [f"  only in {d['from']}: {r}" for r in f["only_from"]]
        out += [f"  only in {d['to']}: {r}" for r in f["only_to"]]
        out += [f"  differs: {r}" for r in f["different"]]
        for j in d["jobs"]:
            a, b = j["from"], j["to"]
            if a is None or b is None:
                out.append(f"  job {j['file']} jobs.{j['job']}: only in {d['to'] if a is None else d['from']}")
                continue
            what = [f"{k} {x} -> {y}" for k, x, y in (("flavor", a[0], b[0]), ("image", a[1], b[1])) if x != y]
            out.append(f"  job {j['file']} jobs.{j['job']}: {'; '.join(what)}")
        out += _commit_lines(d["drift"]["commits"]) + _pin_lines(d["drift"])
    return out + unreadable_lines(d["unreadable"])
