"""What an environment forbids: flavors and images used by the bundle's pipelines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..environments import Environment
from ..errors import PolicyError


@dataclass(frozen=True)
class JobUse:
    file: str
    job: str
    flavor: str | None
    image: str | None


def job_uses(root: Path) -> list[JobUse]:
    """Each job's effective flavor and image (defaults applied), from the validated pipelines."""
    from ..pipelines.project import check_all
    from ..pipelines.render import job_views

    return [JobUse(c.file, j.name, j.resource_flavor, j.docker_image)
            for c in check_all(root) if c.pipeline for j in job_views(c.pipeline)]


def violations(env: Environment, uses: list[JobUse]) -> list[tuple[JobUse, str]]:
    """Every job the environment forbids, with the reason (the rules deploy enforces; make plan lists them)."""
    out = []
    for u in uses:
        if env.allowed_flavors is not None and u.flavor not in env.allowed_flavors:
            out.append((u, f"{u.file}: jobs.{u.job} uses flavor '{u.flavor}', which {env.name} does not allow "
                           f"(allowed: {', '.join(env.allowed_flavors) or 'none'})"))
        if env.allowed_images is not None and not any((u.image or "").startswith(p) for p in env.allowed_images):
            out.append((u, f"{u.file}: jobs.{u.job} uses image '{u.image}', which {env.name} does not allow "
                           f"(allowed prefixes: {', '.join(env.allowed_images)})"))
    return out


def check_policy(env: Environment, uses: list[JobUse]) -> None:
    problems = [why for _, why in violations(env, uses)]
    if problems:
        more = f" (+{len(problems) - 1} more: {'; '.join(problems[1:4])})" if len(problems) > 1 else ""
        raise PolicyError(problems[0] + more, f"change the pipeline, or the environment's allowed lists in "
                                              f"environments/{env.name}.yaml; nothing was deployed")
