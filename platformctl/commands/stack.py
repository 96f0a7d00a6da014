"""`make up`, `make run PIPELINE=...`, `make down`: the local Airflow stack from the built image."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config import collect_overrides, load_config
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


def deploy_local(root, args, airflow_url: str | None = None) -> tuple[str, str, str, bool]:
    """`make deploy ENV=local` (content-addressed: a no-op when nothing changed). Returns the live version,
    the store folder, the written airflow.env and whether the version changed."""
    from ..deploy.deliver import read_pointer
    from ..environments import load_environment
    from ..deploy.store import open_store
    from .deploy import deploy

    env = load_environment(root, "local")
    store = open_store(root, env)
    before = (read_pointer(store, env.bundle.prefix) or {}).get("version") if store.root.exists() else None
    deploy(root, argparse.Namespace(sets=args.sets, env="local", airflow_url=airflow_url,
                                    apply_settings=airflow_url is not None))  # make up applies them once healthy
    live = read_pointer(store, env.bundle.prefix)["version"]
    _, env_file = env.managed.paths(Path(root), "local")
    return live, str(store.root.resolve()), str(env_file), live != before


def up(root, args) -> int:
    cfg, engine = prepare(root, collect_overrides(args.sets), "run")
    image = args.image or built_image(root)
    if engine.image_id(image) is None:
        raise StackError(f"image {image} is not in the local engine", "run make build first")
    say("deploying the bundle to the local environment (the stack runs what was deployed)")
    _, store_dir, env_file, _ = deploy_local(root, args)
    say("building the stack's support images (cached when unchanged)")
    build_support_images(root, cfg, engine)
    stack = _stack(root, args, cfg)
    fixed_port = args.port or cfg.stack.port
    say(f"starting stack '{stack.project}' from {image} (postgres, db migrate, api-server, scheduler, "
        f"dag-processor, triggerer)")
    for attempt in range(3):
        env = stack.write_state(platform_image=image, postgres_image=cfg.stack.postgres_image,
                                port=fixed_port or (free_port() if attempt else None),
                                bundle_store=store_dir, deploy_env_file=env_file)
        try:
            stack.up(wait_timeout=args.wait_timeout)
            break
        except PortTaken as exc:
            if fixed_port or attempt == 2:
                raise StackError(exc.message, "choose another port: --port N or stack.port in platform.yaml") from None
            say(f"{exc.message}: trying another free port")
    from ..stack.api import AirflowAPI

    api = AirflowAPI(f"http://127.0.0.1:{env['AIRFLOW_PORT']}")
    wait_until(api.healthy, timeout=120, poll=2)  # the scheduler's first heartbeat; health() below says which is not
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
    version, _, _, changed = deploy_local(root, args, airflow_url=stack.url)
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
