"""Images the local stack needs besides the platform image: PostgreSQL, Redis and the example job images.

All are built locally from the project's own files on a Debian base (no Docker Hub), by content:
an image whose context is unchanged is reused by BuildKit's cache.
"""

from __future__ import annotations

from pathlib import Path

from ..config import PlatformConfig
from ..errors import BuildError
from ..engine import BuildSpec, ContainerEngine
from ..errors import StackError
from ..output import say

SERVICES_CONTEXT = "stack/services"  # one Dockerfile, a target per service: postgres, redis


def support_base(cfg: PlatformConfig) -> str:
    if cfg.stack.support_base_image:
        return cfg.stack.support_base_image
    if cfg.image.base_mode == "python":
        return cfg.image.resolved_base_image(cfg.airflow_version)
    raise StackError("the local stack needs a Debian base image for PostgreSQL and the job images",
                     "set stack.support_base_image in platform.yaml (e.g. python:3.12-slim-bookworm)")


def build_image(engine: ContainerEngine, tag: str, context: Path, base: str, log_dir: Path, *,
                target: str | None = None, ca_bundle: str | None = None) -> None:
    if not (context / "Dockerfile").exists():
        raise StackError(f"no Dockerfile in {context}", "fix stack.job_images in platform.yaml", where=str(context))
    spec = BuildSpec(context=context, dockerfile=context / "Dockerfile", tags=(tag,), target=target,
                     build_args={"BASE_IMAGE": base}, secrets={"ca_bundle": Path(ca_bundle)} if ca_bundle else {})
    log = log_dir / f"stack-{target or context.name}.log"
    try:
        engine.build(spec, log, echo=False)
    except BuildError as exc:
        raise StackError(f"building {tag} from {context} failed: {exc.message}",
                         "fix the Dockerfile, or make its base image available (stack.support_base_image or "
                         f"BASE_IMAGE=); {exc.hint}") from None


def build_support_images(root: Path, cfg: PlatformConfig, engine: ContainerEngine, *, echo=say,
                         redis: bool = False) -> list[str]:
    """PostgreSQL, Redis (the Celery broker, when redis) and the job images."""
    base = support_base(cfg)
    ca = cfg.image.build_secrets.get("ca_bundle")
    built = []
    wanted = [(cfg.stack.postgres_image, SERVICES_CONTEXT, "postgres")]
    if redis:
        wanted.append((cfg.stack.redis_image, SERVICES_CONTEXT, "redis"))
    wanted += [(tag, ctx, None) for tag, ctx in cfg.stack.job_images.items()]
    for tag, ctx, target in wanted:
        echo(f"  image {tag} from {ctx}" + (f" (target {target})" if target else ""))
        build_image(engine, tag, root / ctx, base, root / "build", target=target, ca_bundle=ca)
        built.append(tag)
    return built
