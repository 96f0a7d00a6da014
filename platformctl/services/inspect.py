"""Read-only views of the environments (`make plan`, `make status`, `make diff`) as services.

Each opens the registry with the environment's credentials (one try per call: an unreachable registry is
reported, not waited for) and returns the typed view (deploy.plan.Plan, status.Status, the diff dict);
the commands print it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..config import PlatformConfig
from ..deploy.live import env_repository, environment_names, resolve_environment
from ..engine import ContainerEngine, available
from ..registry.auth import authfile, from_environment
from ..registry.skopeo import Skopeo

SkopeoFactory = Callable[[], Skopeo]


def skopeo_factory(cfg: PlatformConfig, auth) -> SkopeoFactory:
    def skopeo() -> Skopeo:  # one try per call: a plan or status reports an unreachable registry, it does not wait
        return Skopeo(authfile=auth, insecure_hosts=set(cfg.registry.insecure_hosts), attempts=1)

    return skopeo


def _repos(root: Path, cfg: PlatformConfig, names: list[str]) -> list[str]:
    return [env_repository(resolve_environment(root, n), cfg) for n in names]


def plan(root: Path, cfg: PlatformConfig, env_name: str, *, version: str | None = None, resources: bool = True,
         engine: ContainerEngine | None | bool = True, airflow_url: str | None = None,
         factory: Callable[[PlatformConfig, object], SkopeoFactory] = skopeo_factory):
    """What make deploy (or promote VERSION= + deploy) would change in env_name; writes nothing. engine: the
    engine to compute per-job resources in (True: the configured one when installed); airflow_url: the
    instance API its pools and connections are read from (default: the environment's)."""
    from ..deploy.plan import make_plan

    env = resolve_environment(root, env_name)
    if engine is True:
        engine = available(cfg.image.docker)
    with authfile(from_environment(), env_repository(env, cfg)) as auth:
        return make_plan(root, cfg, env, version=version, skopeo_factory=factory(cfg, auth),
                         engine=engine or None, resources=resources, airflow_url=airflow_url)


def status(root: Path, cfg: PlatformConfig, names: list[str] | None = None, *,
           factory: Callable[[PlatformConfig, object], SkopeoFactory] = skopeo_factory):
    """What runs in each environment (default: all), read from its store and registry, and the drift."""
    from ..status import status as read_status

    names = names or environment_names(root)
    with authfile(from_environment(), *_repos(root, cfg, names)) as auth:
        return read_status(root, cfg, factory(cfg, auth), names)


def diff(root: Path, cfg: PlatformConfig, from_env: str, to_env: str, *,
         factory: Callable[[PlatformConfig, object], SkopeoFactory] = skopeo_factory) -> dict:
    """Configuration and live-state difference between two environments."""
    from ..status import env_diff

    with authfile(from_environment(), *_repos(root, cfg, [from_env, to_env])) as auth:
        return env_diff(root, cfg, factory(cfg, auth), from_env, to_env)
