"""Deploy, roll back and garbage-collect an environment's DAG bundles (`make deploy/rollback/gc`), as
services: typed arguments and results; progress and outcome lines go through `echo`.

The store is deploy.store.open_store's (the one factory), the image deploy.images.environment_image's (the
one resolver); the stack's `up`/`run` call deploy() here with the configuration they already loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import git
from ..config import PlatformConfig
from ..deploy.bundle import collect
from ..deploy.deliver import DeployResult as Delivery, GcResult, check_version, deploy as deliver
from ..deploy.deliver import RollbackResult as Switch, gc as collect_garbage, rollback as switch_back
from ..deploy.images import environment_image
from ..deploy.ledger import check_entry_id, ledger_for
from ..deploy.managed import BUNDLE_NAME, require_image, write_config
from ..deploy.publish import check_image, refuse_unservable, release_image
from ..deploy.signing import trust_for
from ..deploy.policy import PolicyError, check_policy, job_uses
from ..deploy.store import BundleStore, folder_of, open_store
from ..environments import Environment, load_environment
from ..errors import LedgerError
from ..executors import check_project as check_executors
from ..output import say
from ..pipelines.project import render_all

Echo = Callable[[str], None]


def _env(root: Path, env: Environment | str) -> Environment:
    return env if isinstance(env, Environment) else load_environment(root, env)


@dataclass(frozen=True)
class DeployResult:
    environment: str
    version: str  # the live version now
    changed: bool  # False: that version was already live (nothing uploaded, no config change asked for)
    store_url: str
    store_path: str | None  # a folder store's absolute path (None for S3)
    values_file: Path
    env_file: Path
    image: dict  # as written into the managed config
    delivery: Delivery  # uploaded/copied files and bytes, seconds


def _require_signature(root: Path, cfg: PlatformConfig, env: Environment, image: dict) -> None:
    """An environment that requires signatures gets only a digest signed by one of its keys (skopeo verifies)."""
    if not env.signatures.required:
        return
    from ..registry.auth import authfile, from_environment
    from ..registry.skopeo import Skopeo
    from ..supply.service import check_deploy

    with authfile(from_environment(), image.get("repository") or cfg.registry.repository) as auth:
        check_deploy(root, cfg, env, image, Skopeo(authfile=auth, insecure_hosts=set(cfg.registry.insecure_hosts)))


def image_for(root: Path, env: Environment, cfg: PlatformConfig) -> dict:
    """The image this deploy belongs to, as the managed config takes it (deploy.images' resolver)."""
    return environment_image(root, cfg, env).for_deploy(cfg.airflow_version)


def refresh_now(env: Environment, api_url: str | None, echo: Echo = say) -> None:
    """Optional: ask the instance to refresh the bundle now instead of within its refresh interval."""
    url = api_url or env.managed.api_url
    if not url:
        return
    from ..deploy.airflow_api import AirflowAPIError, InstanceAPI

    try:
        dag = InstanceAPI.for_url(url).request_refresh(BUNDLE_NAME)
    except AirflowAPIError as exc:  # the deploy is live anyway: Airflow follows within the interval
        echo(f"  could not ask Airflow for an immediate refresh: {exc.one_line()}; it follows within "
             f"{env.bundle.refresh_interval}s")
        return
    echo(f"  asked Airflow at {url} to refresh now (through {dag}'s file)" if dag else
         f"  Airflow at {url} has no DAG of the bundle yet: it picks the bundle up within "
         f"{env.bundle.refresh_interval}s")


def _summary(store: BundleStore, env: Environment, bundle) -> str:
    """The plan's one-line summary for the ledger: files added, changed and removed against the live version."""
    from ..deploy.live import read_live
    from ..deploy.plan import _diff_files

    try:
        live = read_live(store, env.bundle.prefix)
    except Exception:  # noqa: BLE001 - a summary, never a reason to stop; the deploy reads the store itself
        live = None
    d = _diff_files(live, bundle)
    return (f"{live.version if live else '(none)'} -> {bundle.version}: +{len(d['added'])} ~{len(d['changed'])} "
            f"-{len(d['removed'])} files; {len(bundle.files)} files, {bundle.size} bytes; formats "
            f"{','.join(map(str, bundle.needs.get('pipeline_formats') or [])) or '-'}, ml_platform "
            f"{bundle.needs.get('ml_platform_version')}")


def deploy(root: Path, cfg: PlatformConfig, env: Environment | str, *, airflow_url: str | None = None,
           store: BundleStore | None = None, apply_settings: bool = True, with_image: str | None = None,
           echo: Echo = say) -> DeployResult:
    """Render and validate every pipeline, check the environment's policy, apply its instance settings (pools,
    connections: a failure stops before the switch), deliver the bundle (a no-op when that version is live),
    write the instance's managed config, ask Airflow to refresh when it changed. store: the one to write
    through (the local stack's SeaweedFS as the host reaches it), else the environment's."""
    env = _env(root, env)
    trust = trust_for(env)  # a missing or unallowed key stops here, before anything is rendered or uploaded
    check_executors(root, cfg.image.python, [env.name])  # the instance could not start without its provider
    written, _ = render_all(root)  # renders and validates every pipeline first
    if written:
        echo(f"rendered {len(written)} DAG file(s): {', '.join(written)}")
    check_policy(env, job_uses(root))
    # with_image: ship release with_image's image with this bundle (#38: an image that can serve it)
    image = release_image(root, env, cfg, with_image) if with_image else image_for(root, env, cfg)
    require_image(env, image)
    _require_signature(root, cfg, env, image)  # issue 37: before anything is delivered
    bundle = collect(root, image_digest=image.get("digest") or image.get("image_id"), commit=git.head(root))
    if not any(rel.startswith("dags/") for rel in bundle.files):
        raise PolicyError("nothing to deploy: dags/ has no DAG files", "run make render first")
    check = check_image(root, image, bundle.needs)
    refuse_unservable(check, env, with_image)  # before the switch (and before any upload)
    if not check.known:
        echo(f"  note: {check.line(env.name)}")
    store = store or open_store(root, env)
    if apply_settings:  # pools and connections first: a failure stops before the switch
        from ..instance.sync import deploy_settings

        echo("\n".join(deploy_settings(root, env, airflow_url).lines()).lstrip())
    echo(f"deploying bundle {bundle.version} ({len(bundle.files)} files, {bundle.size} bytes) to {store.url} "
         f"prefix '{env.bundle.prefix}'" + (f", signed by key {trust.key_id[:12]}" if trust.key_id else ", unsigned"))
    r = deliver(store, env.bundle.prefix, bundle, trust=trust, ledger=ledger_for(store, env),
                summary=_summary(store, env, bundle))
    store_path = folder_of(store)
    values, env_file = write_config(root, env, env.bundle.prefix, image, store_path)
    if r.already_live:
        echo(f"{env.name}: bundle {r.version} is already live; uploaded 0 bytes in {r.seconds:.2f}s")
    else:
        echo(f"{env.name}: {r.version} live at {r.live_prefix}: uploaded {r.uploaded_files} files "
             f"({r.uploaded_bytes} bytes), copied {r.copied_files} unchanged, in {r.seconds:.2f}s")
    echo(f"  ledger entry {r.entry}")
    base = root.resolve()
    echo(f"  managed Airflow config: {values.relative_to(base)}, {env_file.relative_to(base)}")
    if not r.already_live:
        refresh_now(env, airflow_url, echo)
    return DeployResult(env.name, r.version, not r.already_live, store.url, store_path, values, env_file, image, r)


@dataclass(frozen=True)
class RollbackResult:
    environment: str
    switch: Switch  # from and to version, the ledger entry written around the switch, the key that signed it

    @property
    def from_version(self) -> str:
        return self.switch.previous

    @property
    def to_version(self) -> str:
        return self.switch.version

    @property
    def entry(self) -> str | None:
        return self.switch.entry


def rollback(root: Path, cfg: PlatformConfig, env: Environment | str, to: str | None = None, *,
             airflow_url: str | None = None, echo: Echo = say) -> RollbackResult:
    """Switch the pointer back to the previous version, or `to` (a version b-..., or a ledger entry e-... whose
    version is taken); signed as deploys are, with a ledger entry; nothing else changes."""
    entry_id = to if to and check_entry_id(to) else None
    if not entry_id:
        check_version(to)  # before any store access
    env = _env(root, env)
    trust = trust_for(env)
    store = open_store(root, env)
    ledger = ledger_for(store, env)
    if entry_id:
        entry = ledger.read(entry_id)
        if not entry.version:
            raise LedgerError(f"ledger entry {entry_id} ({entry.action}) names no bundle version",
                              f"pick a deploy or rollback entry (make history ENV={env.name})")
        to = entry.version
        echo(f"{env.name}: ledger entry {entry_id} is {entry.action} of {to} ({entry.time}, by {entry.actor})")
    r = switch_back(store, env.bundle.prefix, to, trust=trust, ledger=ledger)
    # nothing to write: the instance's config names the stable prefix, the bundle follows the pointer
    echo(f"{env.name}: rolled back {r.previous} -> {r.version}; Airflow follows within "
         f"{env.bundle.refresh_interval}s (no config change); ledger entry {r.entry}"
         + (f", signed by key {r.key_id[:12]}" if r.key_id else ""))
    refresh_now(env, airflow_url, echo)
    return RollbackResult(env.name, r)


@dataclass(frozen=True)
class GcOutcome:
    environment: str
    keep: int
    dry_run: bool
    asked_airflow: bool  # the versions of running DAG runs were asked for (and kept)
    result: GcResult
    in_use: frozenset[str] = field(default_factory=frozenset)


def gc(root: Path, cfg: PlatformConfig, env: Environment | str, *, keep: int | None = None,
       airflow_url: str | None = None, dry_run: bool = False, echo: Echo = say) -> GcOutcome:
    """Remove old versions, keeping the `keep` newest (default bundle.keep_versions), the live one, the
    rollback target and those running DAG runs use (asked from Airflow when it can be reached)."""
    env = _env(root, env)
    store = open_store(root, env)
    keep = keep if keep is not None else env.bundle.keep_versions
    in_use: set[str] = set()
    url = airflow_url or env.managed.api_url
    if url:
        from ..deploy.airflow_api import InstanceAPI

        in_use = InstanceAPI.for_url(url).versions_in_use()  # unreachable: fail rather than guess
    entry, ledger = None, ledger_for(store, env)
    if not dry_run:  # the entry before anything is removed
        entry = ledger.begin("gc", version=None, summary=f"gc keep {keep}")
    try:
        r = collect_garbage(store, env.bundle.prefix, keep, in_use, dry_run=dry_run)
    except Exception as exc:
        if entry:
            ledger.complete(entry, f"failed: {str(exc)[:300]}")
        raise
    if entry:
        ledger.complete(entry, f"removed {len(r.removed)} version(s), {len(r.removed_incomplete)} abandoned "
                               f"upload(s): {', '.join(r.removed + r.removed_incomplete)[:400] or 'nothing'}")
    verb = "would remove" if dry_run else "removed"
    echo(f"{env.name}: {verb} {len(r.removed)} version(s) and {len(r.removed_incomplete)} abandoned upload(s) "
         f"({r.removed_objects} objects); kept {len(r.kept)}"
         + ("" if url else " (no managed.api_url: versions of running DAG runs not asked for)"))
    for v in r.removed + r.removed_incomplete:
        echo(f"  {verb} {v}")
    for v, why in r.protected.items():
        if why != f"among the {keep} newest":
            echo(f"  kept {v}: {why}")
    return GcOutcome(env.name, keep, dry_run, bool(url), r, frozenset(in_use))
