"""The local Airflow stack (`make up`, `make run PIPELINE=...`, `make down`) as services.

The stack runs what was deployed: `up` and `run` deploy to the `local` environment through
services.deploy.deploy (content-addressed: a no-op when nothing changed), with the configuration they
already hold, then start the stack or trigger the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import PlatformConfig
from ..output import say
from ..record import BuildRecord
from ..stack.compose import PortTaken, Stack, free_port
from ..stack.errors import StackError
from ..wait import wait_until
from .deploy import DeployResult, deploy

# stack.api and stack.follow (requests) are imported by the services that talk to Airflow: every other
# command, make build among them, starts ~50 ms sooner without them.

Echo = Callable[[str], None]
DEFAULT_PROJECT = "ml-platform"
LOCAL = "local"


def stack_of(root: Path, cfg: PlatformConfig, project: str) -> Stack:
    return Stack(root, project, cfg.stack.compose_file)


def built_image(root: Path) -> str:
    rec = BuildRecord.load(root)
    if rec is None:
        raise StackError("no built image: build/build-record.json is missing", "run make build first")
    return rec.image


def deploy_local(root: Path, cfg: PlatformConfig, *, airflow_url: str | None = None,
                 echo: Echo = say) -> DeployResult:
    """`make deploy ENV=local`: the bundle the stack runs (its store folder and airflow.env are in the result)."""
    return deploy(root, cfg, LOCAL, airflow_url=airflow_url, echo=echo)


@dataclass(frozen=True)
class UpOptions:
    project: str = DEFAULT_PROJECT
    image: str | None = None  # default: the built image (build/build-record.json)
    port: int | None = None  # default: stack.port, else a free port
    wait_timeout: int = 300


@dataclass(frozen=True)
class UpResult:
    project: str
    url: str
    image: str
    deployed: DeployResult
    health: dict[str, Any]


def up(root: Path, overrides: dict[str, Any], options: UpOptions, *, echo: Echo = say) -> UpResult:
    """Set the host up for running, deploy to local, build the support images, start the stack and wait
    until Airflow is healthy."""
    from ..host.setup import prepare
    from ..stack.images import build_support_images

    cfg, engine = prepare(root, overrides, "run")
    image = options.image or built_image(root)
    if engine.image_id(image) is None:
        raise StackError(f"image {image} is not in the local engine", "run make build first")
    echo("deploying the bundle to the local environment (the stack runs what was deployed)")
    deployed = deploy_local(root, cfg, echo=echo)
    echo("building the stack's support images (cached when unchanged)")
    build_support_images(root, cfg, engine)
    stack = stack_of(root, cfg, options.project)
    fixed_port = options.port or cfg.stack.port
    echo(f"starting stack '{stack.project}' from {image} (postgres, db migrate, api-server, scheduler, "
         f"dag-processor, triggerer)")
    for attempt in range(3):
        env = stack.write_state(platform_image=image, postgres_image=cfg.stack.postgres_image,
                                port=fixed_port or (free_port() if attempt else None),
                                bundle_store=deployed.store_path or "", deploy_env_file=str(deployed.env_file))
        try:
            stack.up(wait_timeout=options.wait_timeout)
            break
        except PortTaken as exc:
            if fixed_port or attempt == 2:
                raise StackError(exc.message, "choose another port: --port N or stack.port in platform.yaml") from None
            echo(f"{exc.message}: trying another free port")
    from ..stack.api import AirflowAPI

    api = AirflowAPI(f"http://127.0.0.1:{env['AIRFLOW_PORT']}")
    wait_until(api.healthy, timeout=120, poll=2)  # the scheduler's first heartbeat; health() below says which is not
    health = api.health()
    echo(f"Airflow is up at {api.base_url}  (health: "
         + ", ".join(f"{k}={v.get('status')}" for k, v in health.items() if isinstance(v, dict)) + ")")
    echo("  run a pipeline:  make run PIPELINE=example_etl      stop:  make down")
    return UpResult(stack.project, api.base_url, image, deployed, health)


@dataclass(frozen=True)
class RunOptions:
    pipeline: str
    project: str = DEFAULT_PROJECT
    timeout: float = 900
    tail: int = 8
    bundle_timeout: float = 120
    conf: dict[str, Any] | None = None


def run(root: Path, cfg: PlatformConfig, options: RunOptions):
    """Deploy to local (a no-op when nothing changed), wait until Airflow runs that version when it changed,
    trigger the pipeline and follow it to the end. Returns stack.follow.RunResult; RunFailed when it failed."""
    from ..stack.api import AirflowAPI
    from ..stack.follow import check, run_pipeline, wait_for_bundle

    stack = stack_of(root, cfg, options.project)
    api = AirflowAPI(stack.url)
    # the delivery path production uses: render, deploy to local (a no-op when nothing changed), and
    # wait until Airflow runs that version; asks the stack for an immediate refresh when it changed
    deployed = deploy_local(root, cfg, airflow_url=stack.url)
    if deployed.changed:
        wait_for_bundle(api, options.pipeline, deployed.version, timeout=options.bundle_timeout)
    result = run_pipeline(api, options.pipeline, timeout=options.timeout, tail=options.tail, conf=options.conf)
    check(result)
    return result


@dataclass(frozen=True)
class DownResult:
    project: str
    was_up: bool
    volumes_removed: bool


def down(root: Path, cfg: PlatformConfig, project: str = DEFAULT_PROJECT, *, volumes: bool = False,
         echo: Echo = say) -> DownResult:
    stack = stack_of(root, cfg, project)
    if not stack.env_file.exists():
        echo(f"stack '{stack.project}' is not up")
        return DownResult(stack.project, False, False)
    stack.down(volumes=volumes)
    echo(f"stack '{stack.project}' stopped" + (" and its database removed" if volumes else
                                                " (database kept; make down VOLUMES=1 removes it)"))
    return DownResult(stack.project, True, volumes)
