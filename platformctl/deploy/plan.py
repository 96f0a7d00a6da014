"""`make plan ENV=...`: what `make deploy` (or, with VERSION=, `make promote` + deploy) would change. Writes nothing.

The live side is read from the environment's bundle store and registry; the side that would go out is
built the way deploy builds it (the DAGs rendered in memory, the same bundle version). Exit codes work like
`terraform plan -detailed-exitcode`: 0 nothing would change, PLAN_CHANGES something would, PlanRefused's
code when deploy would refuse (policy).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ml_platform.bundle_format import MANIFEST

from ..config import PlatformConfig
from ..engine import ContainerEngine
from ..environments import Environment
from ..errors import PLAN_CHANGES, PlanRefused, PlatformError
from ..lock.core import REQ_DIR, lock_filename
from ..lock.diff import diff_pins
from ..lock.files import read_pins
from ..record import IMAGE_SETS
from .bundle import Bundle, BundleFile, collect
from .images import environment_image
from .live import (LiveBundle, RegistryView, inspect_digest, live_job_uses, open_store, read_live,
                   read_registry)
from .pods import K8S_SCHEMA_VERSION, ResourcesResult, in_image
from .policy import job_uses, violations
from .store import md5_hex


def git(root: Path, *args: str) -> str | None:
    p = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else None


def short(digest: str | None) -> str:
    return digest[:19] + "…" if digest and len(digest) > 19 else (digest or "none")


# -------------------------------------------------------------------------------------- the pieces
def next_image(root: Path, cfg: PlatformConfig, env: Environment, version: str | None) -> dict:
    """The image deploy would point the instance at (after promote VERSION, when given)."""
    return environment_image(root, cfg, env, version).as_dict()


def next_bundle(root: Path, image_key: str | None) -> Bundle:
    """The bundle deploy would deliver: as on disk, with dags/ as `make render` would leave it (in memory)."""
    from ..pipelines.project import generated_files, rendered

    texts = rendered(root)  # validates every pipeline, as deploy does
    head = (git(root, "rev-parse", "HEAD") or "").strip() or None
    b = collect(root, image_digest=image_key, commit=head)
    files = dict(b.files)
    for p in generated_files(root):
        rel = p.relative_to(root).as_posix()
        if rel not in texts:
            files.pop(rel, None)
    for rel, text in texts.items():
        data = text.encode()
        files[rel] = BundleFile(rel, hashlib.sha256(data).hexdigest(), md5_hex(data), len(data), data)
    from .bundle import needs_of

    return Bundle(dict(sorted(files.items())), image_key, head, needs_of(root, files))


def pin_changes(root: Path, old_rev: str | None, new_rev: str | None, python: str) -> tuple[list[str] | None, str]:
    """Lines per lock file baked into the image that changed between two commits, or (None, why unknown)."""
    if not old_rev or not new_rev:
        return None, "unknown: " + ("the live image's commit is unknown" if not old_rev else
                                    "the new image's commit is unknown")
    if old_rev == new_rev:
        return [], "same commit"
    out = []
    for s in IMAGE_SETS:
        rel = f"{REQ_DIR}/{lock_filename(s, python)}"
        old, new = git(root, "show", f"{old_rev}:{rel}"), git(root, "show", f"{new_rev}:{rel}")
        if old is None or new is None:
            missing = old_rev if old is None else new_rev
            return None, f"unknown: {rel} at commit {missing[:7]} is not in this clone (git fetch)"
        d = diff_pins(read_pins(old), read_pins(new))
        if not d.empty():
            out.append(f"{rel}: {d.summary(limit=30)}")
    return out, "locks compared"


@dataclass
class Plan:
    environment: str
    action: str
    image: dict
    bundle: dict
    policy: list[dict]
    resources: dict
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)  # instance settings (#35): SettingsState.to_json()

    @property
    def refused(self) -> bool:
        return (bool(self.policy) or self.bundle.get("empty", False) or bool(self.settings.get("refused"))
                or bool(self.image.get("cannot_serve")))

    @property
    def changes(self) -> bool:
        return (self.bundle["live_version"] != self.bundle["next_version"] or self.image.get("promote_copies", False)
                or any(c["action"] not in ("keep", "ensure") for c in self.settings.get("changes", [])))

    @property
    def exit_code(self) -> int:
        return PlanRefused.exit_code if self.refused else PLAN_CHANGES if self.changes else 0

    @property
    def verdict(self) -> str:
        return "refused" if self.refused else "changes" if self.changes else "no changes"

    def to_json(self) -> dict:
        return {**asdict(self), "verdict": self.verdict, "exit_code": self.exit_code}


def _diff_files(live: LiveBundle | None, nxt: Bundle) -> dict:
    old = {rel: m["sha256"] for rel, m in (live.files if live else {}).items() if rel != MANIFEST}
    new = {rel: f.sha256 for rel, f in nxt.files.items()}
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(r for r in set(old) & set(new) if old[r] != new[r])
    pipe = lambda rels: [r for r in rels if r.startswith("pipelines/")]  # noqa: E731
    return {"added": added, "changed": changed, "removed": removed,
            "pipelines_added": pipe(added), "pipelines_removed": pipe(removed)}


def make_plan(root: Path, cfg: PlatformConfig, env: Environment, *, version: str | None = None,
              skopeo_factory=None, engine: ContainerEngine | None = None, resources: bool = True,
              airflow_url: str | None = None) -> Plan:
    """skopeo_factory() -> Skopeo (or raises); engine: the container engine to run the image's pod builder in;
    airflow_url: the instance's API for its pools and connections (default: the environment's)."""
    notes: list[str] = []
    nxt = next_image(root, cfg, env, version)
    key = nxt["digest"] or nxt["image_id"]
    bundle = next_bundle(root, key)

    store = open_store(root, env)
    live = read_live(store, env.bundle.prefix)  # a StoreError here is the plan's error: it cannot compare
    if live is None:
        notes.append(f"{env.name} is not deployed yet: everything below would be new")

    view: RegistryView | None = None
    live_img = None
    if skopeo_factory is not None:
        try:
            sk = skopeo_factory()
            view = read_registry(sk, nxt["repository"])
            if live and live.image_digest:
                live_img = inspect_digest(sk, nxt["repository"], live.image_digest)
        except PlatformError as exc:
            notes.append(f"registry not read: {exc.one_line()}")

    live_digest = live.image_digest if live else None
    image = {
        "live": {"digest": live_digest, "releases": view.releases_of(live_digest) if view else None,
                 "revision": live_img.revision if live_img else None,
                 "in_registry": (live_img is not None) if view else None},
        "next": {**nxt, "ref": f"{nxt['repository']}@{key}" if key else None,
                 "releases": ([version] if version else view.releases_of(nxt["digest"]) if view else None)},
        "changed": live_digest != key,
    }
    if version and view is not None:
        image["promote_copies"] = version not in view.releases
    from .publish import check_image  # issue 38: can the image deploy names serve this bundle?

    served = check_image(root, {**nxt, "serves": nxt.get("serves")}, bundle.needs)
    image["serves"] = {"known": served.known, "line": served.line(env.name)}
    image["cannot_serve"] = served.problem
    if image["changed"]:
        python = (live_img.python if live_img and live_img.python else cfg.image.python)
        pins, why = pin_changes(root, image["live"]["revision"] if live_img else None, nxt["revision"], python)
        image["pins"], image["pins_note"] = pins, why
    else:
        image["pins"], image["pins_note"] = [], "same image"

    files = _diff_files(live, bundle)
    uses = job_uses(root)
    jobs_changed = []
    if live is not None:
        before = live_job_uses(store, live)
        for u in uses:
            was = before.get((u.file, u.job))
            if was and was != (u.flavor, u.image):
                jobs_changed.append({"file": u.file, "job": u.job, "flavor": [was[0], u.flavor],
                                     "image": [was[1], u.image]})
    bundle_info = {"live_version": live.version if live else None, "next_version": bundle.version,
                   "live_commit": live.commit if live else None, "next_commit": bundle.commit,
                   "files": len(bundle.files), "size": bundle.size, **files, "jobs_changed": jobs_changed,
                   "empty": not any(r.startswith("dags/") for r in bundle.files)}
    if bundle_info["empty"]:
        notes.append("nothing to deploy: dags/ has no DAG files (deploy would refuse)")

    policy = [{"file": u.file, "job": u.job, "flavor": u.flavor, "image": u.image, "reason": why}
              for u, why in violations(env, uses)]

    backend = "docker" if env.name == "local" else "kubernetes"
    res = {"backend": backend, "computed": False, "reason": "skipped (--no-resources)", "jobs": {},
           "schema": f"Kubernetes {K8S_SCHEMA_VERSION}"}
    if resources:
        run_image = nxt["image_id"] or (f"{nxt['repository']}@{nxt['digest']}" if nxt["digest"] else None)
        jobs = [{"key": f"{u.file}:{u.job}", "dag_id": Path(u.file).stem, "task_id": u.job,
                 "image": u.image or "", "flavor": u.flavor or ""} for u in uses]
        r: ResourcesResult = in_image(engine, run_image, root, jobs, env.allowed_flavors)
        res.update(computed=r.computed, reason=r.reason, image=run_image,
                   jobs={k: asdict(v) for k, v in r.jobs.items()})
        if not r.computed:
            notes.append(f"per-job resources not computed: {r.reason}")
    from ..instance.sync import plan_json, plan_settings

    settings, note = plan_settings(root, env, airflow_url)
    if note:
        notes.append(note)
    return Plan(env.name, f"promote {version} + deploy" if version else "deploy", image, bundle_info, policy, res,
                notes, plan_json(settings))


# ------------------------------------------------------------------------------------------- text
def _qty(d: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


def lines(plan: Plan) -> list[str]:
    p = plan
    cmd = (f"make promote ENV={p.environment} VERSION={p.image['next']['tag']} && make deploy ENV={p.environment}"
           if p.action.startswith("promote") else f"make deploy ENV={p.environment}")
    out = [f"plan for {p.environment} ({cmd}): {p.verdict}"]
    li, ni = p.image["live"], p.image["next"]
    rel = lambda rs: f"release {', '.join(rs)}" if rs else "not a release"  # noqa: E731
    out.append("image")
    if li["digest"] is None:
        out.append("  live: nothing deployed")
    else:
        facts = [rel(li["releases"]) if li["releases"] is not None else "registry not read"]
        if li.get("in_registry") is False:
            facts = ["not in the registry"]
        if li.get("revision"):
            facts.append(f"commit {li['revision'][:7]}")
        out.append(f"  live: {short(li['digest'])} ({', '.join(facts)})")
    out.append(f"  next: {short(ni['digest'] or ni['image_id'])} ({ni['source']}"
               + (f", commit {ni['revision'][:7]})" if ni.get("revision") else ")")
               + ("" if p.image["changed"] else "  = unchanged"))
    if p.image.get("promote_copies"):
        out.append(f"  promote copies {ni['tag']} into {ni['repository']}")
    if p.image.get("serves"):
        out.append(("  REFUSED: " if p.image.get("cannot_serve") else "  serves: ") + p.image["serves"]["line"])
    if p.image["changed"]:
        if p.image["pins"] is None:
            out.append(f"  pins: {p.image['pins_note']}")
        elif not p.image["pins"]:
            out.append("  pins: no changes in the image's locks")
        else:
            for block in p.image["pins"]:
                out.extend("  pins: " + ln if i == 0 else "  " + ln for i, ln in enumerate(block.splitlines()))
    b = p.bundle
    out.append(f"bundle {b['live_version'] or '(none)'} -> {b['next_version']} ({b['files']} files, {b['size']} bytes)"
               + ("  = unchanged" if b["live_version"] == b["next_version"] else ""))
    out.extend(f"  + {r}" for r in b["added"])
    out.extend(f"  ~ {r}" for r in b["changed"])
    out.extend(f"  - {r}" for r in b["removed"])
    if b["pipelines_added"] or b["pipelines_removed"]:
        out.append(f"  pipelines added: {', '.join(b['pipelines_added']) or 'none'}; "
                   f"removed: {', '.join(b['pipelines_removed']) or 'none'}")
    for j in b["jobs_changed"]:
        what = [f"{k} {a} -> {c}" for k, (a, c) in (("flavor", j["flavor"]), ("image", j["image"])) if a != c]
        out.append(f"  job {j['file']} jobs.{j['job']}: {'; '.join(what)}")
    if p.policy:
        out.append(f"policy: REFUSED, {len(p.policy)} job(s) {p.environment} forbids")
        out.extend(f"  {v['reason']}" for v in p.policy)
    else:
        out.append("policy: ok (every job's flavor and image is allowed here)")
    r = p.resources
    if r["computed"]:
        if r["backend"] == "docker":
            out.append(f"resources (docker backend: the limits DockerJobOperator sets, computed in "
                       f"{short(r.get('image'))})")
        else:
            out.append(f"resources (kubernetes backend: pods built by the provider's own builder in "
                       f"{short(r.get('image'))}, validated against the {r['schema']} schema)")
        for key, j in r["jobs"].items():
            if j["error"] and not j["fragment"]:
                out.append(f"  {key}: {j['error']}")
                continue
            if r["backend"] == "docker":
                d = j["docker"]
                gpus = f", {d['gpus']} GPU(s)" if d["gpus"] else ""
                out.append(f"  {key}: cpu quota {d['nano_cpus'] / 1e9:g} CPUs, memory limit "
                           f"{d['mem_limit'] / 2**30:g} GiB ({d['mem_limit']} bytes, no swap beyond it){gpus}")
                continue
            f = j["fragment"]
            extra = "".join(f"; {k} {json.dumps(f[k], separators=(',', ':'))}"
                            for k in ("nodeSelector", "tolerations", "priorityClassName") if k in f)
            valid = "valid" if j["valid"] else f"INVALID: {j['error']}"
            out.append(f"  {key}: requests {_qty(f['resources'].get('requests', {}))}; "
                       f"limits {_qty(f['resources'].get('limits', {}))}{extra} ({valid})")
    else:
        out.append(f"resources: not computed ({r['reason']})")
    if p.settings:
        from ..instance.sync import settings_plan_lines

        out.extend(settings_plan_lines(p.settings))
    out.extend(f"note: {n}" for n in p.notes)
    return out
