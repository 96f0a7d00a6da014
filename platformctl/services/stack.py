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
from ..errors import StackError
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
                 state: dict[str, str] | None = None, echo: Echo = say) -> DeployResult:
    """`make deploy ENV=local` (content-addressed: a no-op when nothing changed) to the store the stack whose
    state this is reads (the folder, or its SeaweedFS with STORE=s3, written through the port the host
    reaches). Pools and connections are applied only with airflow_url: `make up` applies them once healthy."""
    from ..stack.fleet import stack_store

    target = stack_store(root, state or {})
    return deploy(root, cfg, target.environment, airflow_url=airflow_url, store=target.store,
                  apply_settings=airflow_url is not None, echo=echo)


@dataclass(frozen=True)
class UpOptions:
    project: str = DEFAULT_PROJECT
    image: str | None = None  # default: the built image (build/build-record.json)
    port: int | None = None  # default: stack.port, else a free port
    wait_timeout: int = 300
    executor: str | None = None  # default: the local environment's (CeleryExecutor)
    workers: int | None = None  # Celery workers (default 2)
    store: str | None = None  # "s3": SeaweedFS in the stack; default the folder store


@dataclass(frozen=True)
class UpResult:
    project: str
    url: str
    image: str
    deployed: DeployResult
    health: dict[str, Any]


def _empty_store(stack: Stack) -> str:
    """BUNDLE_STORE when the store is S3: the folder overlay is not used, the variable only has to be set."""
    return str((stack.root / ".platform").resolve())


def up(root: Path, overrides: dict[str, Any], options: UpOptions, *, echo: Echo = say) -> UpResult:
    """Set the host up for running, build the support images, start the stack in the shape the local
    environment names (Celery: redis, workers, two schedulers; or LocalExecutor), its store first with
    STORE=s3, deploy to local, wait until Airflow is healthy, apply the local pools."""
    from ..environments import load_environment
    from ..host.setup import prepare
    from ..stack import fleet
    from ..stack.images import build_support_images, support_base

    cfg, engine = prepare(root, overrides, "run")
    image = options.image or built_image(root)
    if engine.image_id(image) is None:
        raise StackError(f"image {image} is not in the local engine", "run make build first")
    shape = fleet.shape_for(root, executor=options.executor, workers=options.workers, store=options.store)
    stack = stack_of(root, cfg, options.project)
    echo("building the stack's support images (cached when unchanged)")
    build_support_images(root, cfg, engine, redis=shape.celery)
    fixed_port = options.port or cfg.stack.port
    _, env_file_path = load_environment(root, LOCAL).managed.paths(Path(root), LOCAL)
    previous = dict(stack.state())  # kept across restarts: the ports, the secrets
    deployed = None
    for attempt in range(3):
        extra = {"REDIS_IMAGE": cfg.stack.redis_image}
        common = dict(platform_image=image, postgres_image=cfg.stack.postgres_image,
                      deploy_env_file=str(env_file_path), shape=shape)
        env = stack.write_state(port=fixed_port or (free_port() if attempt else None), extra=extra, **common)
        if shape.store == "s3":
            extra.update(fleet.s3_extra(stack, {**env, "S3_PORT": previous.get("S3_PORT", "")}, support_base(cfg)))
            env = stack.write_state(port=int(env["AIRFLOW_PORT"]), extra=extra, **common)
        try:
            if shape.store == "s3":  # the store first: the deploy writes to it before Airflow starts
                fleet.ensure_env_file(env_file_path)
                echo(f"starting SeaweedFS (the stack's S3 store) on 127.0.0.1:{env['S3_PORT']}")
                stack.up(wait_timeout=options.wait_timeout, services=["seaweedfs"])
                fleet.ensure_bucket(env)
            echo("deploying the bundle to the local environment (the stack runs what was deployed)")
            deployed = deploy_local(root, cfg, state=env, echo=echo)
            env = stack.write_state(platform_image=image, postgres_image=cfg.stack.postgres_image,
                                    port=int(env["AIRFLOW_PORT"]),
                                    bundle_store=deployed.store_path or _empty_store(stack),
                                    deploy_env_file=str(deployed.env_file), shape=shape, extra=extra)
            echo(f"starting stack '{stack.project}' from {image}: {shape.describe()}")
            stack.up(wait_timeout=options.wait_timeout)
            break
        except PortTaken as exc:
            if fixed_port or attempt == 2:
                raise StackError(exc.message, "choose another port: --port N or stack.port in platform.yaml") from None
            echo(f"{exc.message}: trying another free port")
    from ..stack.api import AirflowAPI

    api = AirflowAPI(f"http://127.0.0.1:{env['AIRFLOW_PORT']}")
    # the scheduler's first heartbeat; health() below says which is not
    wait_until(api.healthy, timeout=max(120, options.wait_timeout), poll=2)
    fleet.after_healthy(stack, api)
    health = api.health()
    echo(f"Airflow is up at {api.base_url}  (health: "
         + ", ".join(f"{k}={v.get('status')}" for k, v in health.items() if isinstance(v, dict)) + ")")
    apply_local_settings(root, api.base_url, echo=echo)
    echo("  run a pipeline:  make run PIPELINE=example_etl      stop:  make down")
    assert deployed is not None
    return UpResult(stack.project, api.base_url, image, deployed, health)


def apply_local_settings(root: Path, url: str, *, echo: Echo = say) -> None:
    """#35: the local environment's pools created/updated on the stack, its connections checked (a fresh
    stack has none: reported, never refused)."""
    from ..environments import load_environment
    from ..instance.sync import deploy_settings

    for line in deploy_settings(root, load_environment(root, LOCAL), url).lines():
        echo(line)


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
    deployed = deploy_local(root, cfg, airflow_url=stack.url, state=stack.state())
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
