"""`make deploy ENV=...` and `make rollback ENV=... [TO=...]`."""

from __future__ import annotations

import json
from pathlib import Path

from .. import git

from ..config import collect_overrides, load_config
from ..deploy.bundle import collect
from ..deploy.deliver import check_version, deploy as deliver, read_pointer, rollback as switch_back
from ..deploy.managed import write_config
from ..deploy.policy import PolicyError, check_policy, job_uses
from ..deploy.store import BundleStore, LocalStore, S3Store
from ..environments import Environment, confined_path, load_environment, local_bundle_dir
from ..image.build import read_record
from ..pipelines.project import render_all
from ..registry.records import PROMOTION


def make_store(root: Path, env: Environment) -> BundleStore:
    b = env.bundle
    if b.kind == "local":
        return LocalStore(confined_path(root, local_bundle_dir(env), env.name, "bundle.path", directory=True))
    return S3Store(b.bucket, endpoint_url=b.endpoint_url, region=b.region)  # type: ignore[arg-type]


def image_info(root: Path, env: Environment, cfg) -> dict:
    """The image this deploy belongs to: the registry digest once pushed, else the local build."""
    repo = env.registry.repository or cfg.registry.repository
    promoted = root / PROMOTION.format(env=env.name)
    if promoted.exists():
        p = json.loads(promoted.read_text())
        return {"repository": p["repository"], "tag": p["version"], "digest": p["digest"]}
    rec = read_record(root)
    if rec is None:
        return {"repository": repo, "tag": None, "digest": None}
    return {"repository": repo, "tag": rec["tags"][0].split(":", 1)[1], "digest": rec.get("digest"),
            "image_id": rec.get("image_id")}


def _local_path(root: Path, env: Environment, live_prefix: str) -> str | None:
    return str(make_store(root, env).root / live_prefix) if env.bundle.kind == "local" else None  # type: ignore[attr-defined]


def deploy(root: Path, args) -> int:
    cfg = load_config(root, collect_overrides(args.sets))
    env = load_environment(root, args.env)
    written, _ = render_all(root)  # renders and validates every pipeline first
    if written:
        print(f"rendered {len(written)} DAG file(s): {', '.join(written)}")
    check_policy(env, job_uses(root))
    image = image_info(root, env, cfg)
    bundle = collect(root, image_digest=image.get("digest") or image.get("image_id"), commit=git.head(root))
    if not any(rel.startswith("dags/") for rel in bundle.files):
        raise PolicyError("nothing to deploy: dags/ has no DAG files", "run make render first")
    store = make_store(root, env)
    print(f"deploying bundle {bundle.version} ({len(bundle.files)} files, {bundle.size} bytes) to {store.url} "
          f"prefix '{env.bundle.prefix}'", flush=True)
    r = deliver(store, env.bundle.prefix, bundle)
    values, env_file = write_config(root, env, r.live_prefix, image, _local_path(root, env, r.live_prefix))
    if r.already_live:
        print(f"{env.name}: bundle {r.version} is already live; uploaded 0 bytes in {r.seconds:.2f}s")
    else:
        print(f"{env.name}: {r.version} live at {r.live_prefix}: uploaded {r.uploaded_files} files "
              f"({r.uploaded_bytes} bytes), copied {r.copied_files} unchanged, in {r.seconds:.2f}s")
    base = root.resolve()
    print(f"  managed Airflow config: {values.relative_to(base)}, {env_file.relative_to(base)}")
    return 0


def rollback(root: Path, args) -> int:
    check_version(args.to)  # before any configuration or store access
    cfg = load_config(root, collect_overrides(args.sets))
    env = load_environment(root, args.env)
    store = make_store(root, env)
    old, new = switch_back(store, env.bundle.prefix, args.to)
    ptr = read_pointer(store, env.bundle.prefix) or {}
    image = image_info(root, env, cfg)
    write_config(root, env, ptr["prefix"], image, _local_path(root, env, ptr["prefix"]))
    print(f"{env.name}: rolled back {old} -> {new}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("deploy", help="deliver the DAG bundle to an environment and write its Airflow config")
    p.add_argument("--env", required=True, help="environment name (environments/<env>.yaml, or local)")
    p.set_defaults(func=deploy)
    r = sub.add_parser("rollback", help="switch an environment back to the previous (or a named) bundle")
    r.add_argument("--env", required=True)
    r.add_argument("--to", default=None, help="bundle version to go back to (default: the previous one)")
    r.set_defaults(func=rollback)
