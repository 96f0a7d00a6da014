"""`make deploy ENV=...`, `make rollback ENV=... [TO=...]` and `make gc ENV=... [KEEP=N]`."""

from __future__ import annotations

from pathlib import Path

from ..deploy.deliver import check_version
from ..services import deploy as service
from ..services.context import context_of


def deploy(root: Path, args) -> int:
    ctx = context_of(root, args)
    service.deploy(root, ctx.config, args.env, airflow_url=getattr(args, "airflow_url", None))
    return 0


def rollback(root: Path, args) -> int:
    check_version(args.to)  # before any configuration or store access
    ctx = context_of(root, args)
    service.rollback(root, ctx.config, args.env, args.to, airflow_url=getattr(args, "airflow_url", None))
    return 0


def gc(root: Path, args) -> int:
    ctx = context_of(root, args)
    service.gc(root, ctx.config, args.env, keep=args.keep, airflow_url=args.airflow_url, dry_run=args.dry_run)
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
