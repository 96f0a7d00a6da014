"""`make up`, `make run PIPELINE=...`, `make down`: the local Airflow stack from the built image
(services.stack does the work)."""

from __future__ import annotations

import os

from ..services import stack as service
from ..services.context import context_of
from ..errors import StackError

DEFAULT_PROJECT = service.DEFAULT_PROJECT


def up(root, args) -> int:
    ctx = context_of(root, args)
    service.up(root, ctx.overrides, service.UpOptions(project=args.project, image=args.image, port=args.port,
                                                      wait_timeout=args.wait_timeout, executor=args.executor,
                                                      workers=args.workers, store=args.store))
    return 0


def _conf(text: str | None) -> dict | None:
    if not text:
        return None
    import json

    try:
        conf = json.loads(text)
    except ValueError as exc:
        raise StackError(f"--conf is not JSON: {exc}", "e.g. --conf '{\"epochs\": 3}' (CONF= for make run)") from None
    if not isinstance(conf, dict):
        raise StackError("--conf must be a JSON object of run parameters", "e.g. --conf '{\"epochs\": 3}'")
    return conf


def run(root, args) -> int:
    ctx = context_of(root, args)
    cfg = ctx.config
    service.run(root, cfg, service.RunOptions(pipeline=args.pipeline, project=args.project, timeout=args.timeout,
                                              tail=args.tail, bundle_timeout=args.bundle_timeout,
                                              conf=_conf(args.conf)))
    return 0


def down(root, args) -> int:
    service.down(root, context_of(root, args).config, args.project, volumes=args.volumes)
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
