"""`make up`, `make run PIPELINE=...`, `make down`: the local Airflow stack from the built image."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config import collect_overrides, load_config
from ..environments import load_environment
from ..host.setup import prepare
from ..record import BuildRecord
from ..stack.compose import PortTaken, Stack, free_port
from ..errors import StackError
from ..stack.images import build_support_images
from ..wait import wait_until
from ..output import say

# stack.api and stack.follow (requests) are imported by the commands that talk to Airflow: every other
# command, make build among them, starts ~50 ms sooner without them.

DEFAULT_PROJECT = "ml-platform"


def _stack(root, args, cfg) -> Stack:
    return Stack(root, args.project, cfg.stack.compose_file)


def built_image(root) -> str:
    rec = BuildRecord.load(root)
    if rec is None:
        raise StackError("no built image: build/build-record.json is missing", "run make build first")
    return rec.image


def deploy_local(root, args, airflow_url: str | None = None, state: dict[str, str] | None = None
                 ) -> tuple[str, str, str, bool]:
    """`make deploy ENV=local` (content-addressed: a no-op when nothing changed) to the store the stack whose
    state this is reads (the folder, or its SeaweedFS with STORE=s3). Returns the live version, the store
    folder ("" for s3), the written airflow.env and whether the version changed."""
    from ..deploy.deliver import read_pointer
    from ..stack.fleet import stack_store
    from ..deploy.store import open_store
    from .deploy import deploy

    target = stack_store(root, state or {})
    env = target.environment
    store = target.store or open_store(root, env)
    folder = str(store.root.resolve()) if target.kind == "local" else ""
    exists = store.root.exists() if target.kind == "local" else True
    before = (read_pointer(store, env.bundle.prefix) or {}).get("version") if exists else None
    deploy(root, argparse.Namespace(sets=args.sets, env="local", airflow_url=airflow_url, environment=env,
                                    store=target.store,
                                    apply_settings=airflow_url is not None))  # make up applies them once healthy
    live = read_pointer(store, env.bundle.prefix)["version"]
    _, env_file = env.managed.paths(Path(root), "local")
    return live, folder, str(env_file), live != before


def _empty_store(stack: Stack) -> str:
    """BUNDLE_STORE when the store is S3: the folder overlay is not used, the variable only has to be set."""
    return str((stack.root / ".platform").resolve())


def up(root, args) -> int:
    from ..stack import fleet
    from ..stack.images import support_base

    cfg, engine = prepare(root, collect_overrides(args.sets), "run")
    image = args.image or built_image(root)
    if engine.image_id(image) is None:
        raise StackError(f"image {image} is not in the local engine", "run make build first")
    shape = fleet.shape_for(root, executor=args.executor, workers=args.workers, store=args.store)
    stack = _stack(root, args, cfg)
    say("building the stack's support images (cached when unchanged)")
    build_support_images(root, cfg, engine, redis=shape.celery)
    fixed_port = args.port or cfg.stack.port
    _, env_file_path = load_environment(root, "local").managed.paths(Path(root), "local")
    previous = dict(stack.state())  # kept across restarts: the ports, the secrets
    for attempt in range(3):
        extra = {"REDIS_IMAGE": cfg.stack.redis_image}
        common = dict(platform_image=image, postgres_image=cfg.stack.postgres_image, deploy_env_file=str(env_file_path),
                      shape=shape)
        env = stack.write_state(port=fixed_port or (free_port() if attempt else None), extra=extra, **common)
        if shape.store == "s3":
            extra.update(fleet.s3_extra(stack, {**env, "S3_PORT": previous.get("S3_PORT", "")}, support_base(cfg)))
            env = stack.write_state(port=int(env["AIRFLOW_PORT"]), extra=extra, **common)
        try:
            if shape.store == "s3":  # the store first: the deploy writes to it before Airflow starts
                fleet.ensure_env_file(env_file_path)
                say(f"starting SeaweedFS (the stack's S3 store) on 127.0.0.1:{env['S3_PORT']}")
                stack.up(wait_timeout=args.wait_timeout, services=["seaweedfs"])
                fleet.ensure_bucket(env)
            say("deploying the bundle to the local environment (the stack runs what was deployed)")
            _, store_dir, env_file, _ = deploy_local(root, args, state=env)
            env = stack.write_state(platform_image=image, postgres_image=cfg.stack.postgres_image,
                                    port=int(env["AIRFLOW_PORT"]), bundle_store=store_dir or _empty_store(stack),
                                    deploy_env_file=env_file, shape=shape, extra=extra)
            say(f"starting stack '{stack.project}' from {image}: {shape.describe()}")
            stack.up(wait_timeout=args.wait_timeout)
            break
        except PortTaken as exc:
            if fixed_port or attempt == 2:
                raise StackError(exc.message, "choose another port: --port N or stack.port in platform.yaml") from None
            say(f"{exc.message}: trying another free port")
    from ..stack.api import AirflowAPI

    api = AirflowAPI(f"http://127.0.0.1:{env['AIRFLOW_PORT']}")
    wait_until(api.healthy, timeout=max(120, args.wait_timeout), poll=2)  # the scheduler's first heartbeat; health() below says which is not
    fleet.after_healthy(stack, api)
    health = api.health()
    say(f"Airflow is up at {api.base_url}  (health: "
        + ", ".join(f"{k}={v.get('status')}" for k, v in health.items() if isinstance(v, dict)) + ")")
    apply_local_settings(root, api.base_url)
    say("  run a pipeline:  make run PIPELINE=example_etl      stop:  make down")
    return 0


def apply_local_settings(root, url: str) -> None:
    """#35: the local environment's pools created/updated on the stack, its connections checked (a fresh
    stack has none: reported, never refused)."""
    from ..environments import load_environment
    from ..instance.sync import deploy_settings

    for line in deploy_settings(root, load_environment(root, "local"), url).lines():
        say(line)


def run(root, args) -> int:
    cfg = load_config(root, collect_overrides(args.sets))
    stack = _stack(root, args, cfg)
    from ..stack.api import AirflowAPI
    from ..stack.follow import check, run_pipeline, wait_for_bundle

    conf = None
    if args.conf:
        import json

        try:
            conf = json.loads(args.conf)
        except ValueError as exc:
            raise StackError(f"--conf is not JSON: {exc}", "e.g. --conf '{\"epochs\": 3}' (CONF= for make run)") from None
        if not isinstance(conf, dict):
            raise StackError("--conf must be a JSON object of run parameters", "e.g. --conf '{\"epochs\": 3}'")
    api = AirflowAPI(stack.url)
    # the delivery path production uses: render, deploy to local (a no-op when nothing changed), and
    # wait until Airflow runs that version; asks the stack for an immediate refresh when it changed
    version, _, _, changed = deploy_local(root, args, airflow_url=stack.url, state=stack.state())
    if changed:
        wait_for_bundle(api, args.pipeline, version, timeout=args.bundle_timeout)
    result = run_pipeline(api, args.pipeline, timeout=args.timeout, tail=args.tail, conf=conf)
    check(result)
    return 0


def down(root, args) -> int:
    cfg = load_config(root, collect_overrides(args.sets))
    stack = _stack(root, args, cfg)
    if not stack.env_file.exists():
        say(f"stack '{stack.project}' is not up")
        return 0
    stack.down(volumes=args.volumes)
    say(f"stack '{stack.project}' stopped" + (" and its database removed" if args.volumes else
                                               " (database kept; make down VOLUMES=1 removes it)"))
    return 0


def register(sub) -> None:
    def common(p):
        p.add_argument("--project", default=os.environ.get("STACK_PROJECT", DEFAULT_PROJECT),
                       help="compose project name (default ml-platform)")

    p = sub.add_parser("up", help="start the local Airflow stack from the built image")
    common(p)
    p.add_argument("--image", help="platform image (default: the one in build/build-record.json)")
    p.add_argument("--port", type=int, help="host port of the API server (default: a free port)")
    p.add_argument("--wait-timeout", type=int, default=300)
    p.add_argument("--executor", default=os.environ.get("EXECUTOR") or None,
                   help="CeleryExecutor (default: the local environment's) or LocalExecutor (the small stack)")
    p.add_argument("--workers", type=int, default=int(os.environ["WORKERS"]) if os.environ.get("WORKERS") else None,
                   help="Celery workers, each its own container with its own bundle storage (default 2)")
    p.add_argument("--store", choices=("folder", "s3"), default=os.environ.get("STORE") or None,
                   help="the bundle store: the local folder (default) or SeaweedFS in the stack (s3)")
    p.set_defaults(func=up)

    p = sub.add_parser("run", help="trigger a pipeline on the local stack and follow it to the end")
    common(p)
    p.add_argument("--pipeline", required=True, help="pipeline (DAG) name, e.g. example_etl")
    p.add_argument("--timeout", type=float, default=900, help="seconds before giving up on the run")
    p.add_argument("--tail", type=int, default=8, help="log lines shown per job (30 for failed jobs)")
    p.add_argument("--bundle-timeout", type=float, default=120,
                   help="seconds to wait for Airflow to pick up a newly deployed bundle version")
    p.add_argument("--conf", help="run parameters as a JSON object, e.g. '{\"epochs\": 3}' (the DAG's params)")
    p.set_defaults(func=run)

    p = sub.add_parser("down", help="stop the local stack")
    common(p)
    p.add_argument("--volumes", action="store_true", help="also remove its database and logs")
    p.set_defaults(func=down)
