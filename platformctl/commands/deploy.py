"""`make deploy ENV=...`, `make rollback ENV=... [TO=...]` and `make gc ENV=... [KEEP=N]`."""

from __future__ import annotations

import json
from pathlib import Path

from .. import git

from ..config import collect_overrides, load_config
from ..deploy.bundle import collect
from ..deploy.deliver import check_version, deploy as deliver, gc as collect_garbage, rollback as switch_back
from ..deploy.managed import BUNDLE_NAME, require_image, write_config
from ..deploy.policy import PolicyError, check_policy, job_uses
from ..deploy.store import local_store_path, open_store
from ..environments import Environment, load_environment
from ..executors import check_project as check_executors
from ..pipelines.project import render_all
from ..record import BuildRecord
from ..registry.records import PROMOTION
from ..output import say


def _require_signature(root: Path, cfg, env: Environment, image: dict) -> None:
    if not env.signatures.required:
        return
    from ..registry.auth import authfile, from_environment
    from ..registry.skopeo import Skopeo
    from ..supply.service import check_deploy

    with authfile(from_environment(), image.get("repository") or cfg.registry.repository) as auth:
        check_deploy(root, cfg, env, image, Skopeo(authfile=auth, insecure_hosts=set(cfg.registry.insecure_hosts)))


def image_info(root: Path, env: Environment, cfg) -> dict:
    """The image this deploy belongs to: the registry digest once pushed, else the local build."""
    repo = env.registry.repository or cfg.registry.repository
    promoted = root / PROMOTION.format(env=env.name)
    if promoted.exists():
        p = json.loads(promoted.read_text())
        return {"repository": p["repository"], "tag": p["version"], "digest": p["digest"]}
    rec = BuildRecord.load(root)
    if rec is None:
        return {"repository": repo, "tag": None, "digest": None}
    return {"repository": repo, "tag": rec.version_tag, "digest": rec.digest, "image_id": rec.image_id}


def image_for(root: Path, env: Environment, cfg) -> dict:
    """image_info plus the Airflow version the chart needs (airflowVersion)."""
    return {**image_info(root, env, cfg), "airflow_version": cfg.airflow_version}



def refresh_now(env: Environment, api_url: str | None) -> None:
    """Optional: ask the instance to refresh the bundle now instead of within its refresh interval."""
    url = api_url or env.managed.api_url
    if not url:
        return
    from ..deploy.airflow_api import AirflowAPIError, InstanceAPI

    try:
        dag = InstanceAPI.for_url(url).request_refresh(BUNDLE_NAME)
    except AirflowAPIError as exc:  # the deploy is live anyway: Airflow follows within the interval
        say(f"  could not ask Airflow for an immediate refresh: {exc.one_line()}; it follows within "
            f"{env.bundle.refresh_interval}s")
        return
    say(f"  asked Airflow at {url} to refresh now (through {dag}'s file)" if dag else
        f"  Airflow at {url} has no DAG of the bundle yet: it picks the bundle up within "
        f"{env.bundle.refresh_interval}s")


def deploy(root: Path, args) -> int:
    cfg = load_config(root, collect_overrides(args.sets))
    # the local stack's STORE=s3 passes its environment and the store the host writes through (stack/fleet.py)
    env = getattr(args, "environment", None) or load_environment(root, args.env)
    check_executors(root, cfg.image.python, [env.name])  # the instance could not start without its provider
    written, _ = render_all(root)  # renders and validates every pipeline first
    if written:
        say(f"rendered {len(written)} DAG file(s): {', '.join(written)}")
    check_policy(env, job_uses(root))
    image = image_for(root, env, cfg)
    require_image(env, image)
    _require_signature(root, cfg, env, image)  # issue 37: before anything is delivered
    bundle = collect(root, image_digest=image.get("digest") or image.get("image_id"), commit=git.head(root))
    if not any(rel.startswith("dags/") for rel in bundle.files):
        raise PolicyError("nothing to deploy: dags/ has no DAG files", "run make render first")
    store = getattr(args, "store", None) or open_store(root, env)
    if getattr(args, "apply_settings", True):  # pools and connections first: a failure stops before the switch
        from ..instance.sync import deploy_settings

        say("\n".join(deploy_settings(root, env, getattr(args, "airflow_url", None)).lines()).lstrip())
    say(f"deploying bundle {bundle.version} ({len(bundle.files)} files, {bundle.size} bytes) to {store.url} "
        f"prefix '{env.bundle.prefix}'")
    r = deliver(store, env.bundle.prefix, bundle)
    values, env_file = write_config(root, env, env.bundle.prefix, image, local_store_path(root, env))
    if r.already_live:
        say(f"{env.name}: bundle {r.version} is already live; uploaded 0 bytes in {r.seconds:.2f}s")
    else:
        say(f"{env.name}: {r.version} live at {r.live_prefix}: uploaded {r.uploaded_files} files "
            f"({r.uploaded_bytes} bytes), copied {r.copied_files} unchanged, in {r.seconds:.2f}s")
    base = root.resolve()
    say(f"  managed Airflow config: {values.relative_to(base)}, {env_file.relative_to(base)}")
    if not r.already_live:
        refresh_now(env, getattr(args, "airflow_url", None))
    return 0


def rollback(root: Path, args) -> int:
    check_version(args.to)  # before any configuration or store access
    load_config(root, collect_overrides(args.sets))
    env = load_environment(root, args.env)
    store = open_store(root, env)
    old, new = switch_back(store, env.bundle.prefix, args.to)
    # nothing to write: the instance's config names the stable prefix, the bundle follows the pointer
    say(f"{env.name}: rolled back {old} -> {new}; Airflow follows within {env.bundle.refresh_interval}s "
        f"(no config change)")
    refresh_now(env, getattr(args, "airflow_url", None))
    return 0


def gc(root: Path, args) -> int:
    load_config(root, collect_overrides(args.sets))
    env = load_environment(root, args.env)
    store = open_store(root, env)
    keep = args.keep if args.keep is not None else env.bundle.keep_versions
    in_use: set[str] = set()
    url = args.airflow_url or env.managed.api_url
    if url:
        from ..deploy.airflow_api import InstanceAPI

        in_use = InstanceAPI.for_url(url).versions_in_use()  # unreachable: fail rather than guess
    r = collect_garbage(store, env.bundle.prefix, keep, in_use, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    say(f"{env.name}: {verb} {len(r.removed)} version(s) and {len(r.removed_incomplete)} abandoned upload(s) "
        f"({r.removed_objects} objects); kept {len(r.kept)}"
        + ("" if url else " (no managed.api_url: versions of running DAG runs not asked for)"))
    for v in r.removed + r.removed_incomplete:
        say(f"  {verb} {v}")
    for v, why in r.protected.items():
        if why != f"among the {keep} newest":
            say(f"  kept {v}: {why}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("deploy", help="deliver the DAG bundle to an environment and write its Airflow config")
    p.add_argument("--env", required=True, help="environment name (environments/<env>.yaml, or local)")
    p.add_argument("--airflow-url", default=None, help="ask this Airflow API to refresh the bundle now "
                   "(default: the environment's managed.api_url; none: Airflow follows within the refresh interval)")
    p.set_defaults(func=deploy)
    r = sub.add_parser("rollback", help="switch an environment back to the previous (or a named) bundle")
    r.add_argument("--env", required=True)
    r.add_argument("--to", default=None, help="bundle version to go back to (default: the previous one)")
    r.add_argument("--airflow-url", default=None, help="as for deploy")
    r.set_defaults(func=rollback)
    g = sub.add_parser("gc", help="remove old bundle versions from an environment's store")
    g.add_argument("--env", required=True)
    g.add_argument("--keep", type=int, default=None, help="newest versions kept (default: bundle.keep_versions)")
    g.add_argument("--airflow-url", default=None, help="keep the versions running DAG runs use, as this "
                   "Airflow API reports (default: the environment's managed.api_url)")
    g.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    g.set_defaults(func=gc)
