"""Registry credentials: REGISTRY_USERNAME / REGISTRY_PASSWORD from the environment, else Docker's
own store (~/.docker/config.json, credential helpers) which both the engine and skopeo read.

Credentials are never written into the repository nor printed: for skopeo they go into a private
temporary auth file that is removed when the operation ends.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import RegistryAuth
from .refs import registry_host


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)  # never shown in a traceback or log

    def docker_auth(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password}

    def for_registry(self, repository: str) -> RegistryAuth:
        """These credentials for the registry that holds `repository`, as the container engine takes them."""
        return RegistryAuth(registry_host(repository), self.username, self.password)


def from_environment(environ: dict[str, str] | None = None) -> Credentials | None:
    env = os.environ if environ is None else environ
    user, pw = env.get("REGISTRY_USERNAME"), env.get("REGISTRY_PASSWORD")
    return Credentials(user, pw) if user and pw else None


@contextmanager
def authfile(creds: Credentials | None, *repositories: str):
    """A containers-auth.json for skopeo holding `creds` for the repositories' hosts, or None."""
    if creds is None:
        yield None
        return
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths = {registry_host(r): {"auth": token} for r in repositories}
    with tempfile.TemporaryDirectory(prefix="platform-auth-") as d:
        path = Path(d) / "auth.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"auths": auths}, f)
        yield str(path)
