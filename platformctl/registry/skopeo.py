"""skopeo behind a small interface: inspect, list tags, copy by digest. Errors are classified
(auth: at once; unavailable: retried with backoff)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ToolMissingError
from ..errors import RegistryAuthError, RegistryError, RegistryUnavailable
from .refs import is_local_registry, registry_host
from ..output import say

_AUTH = re.compile(r"unauthorized|authentication required|denied|invalid username/password|no basic auth credentials",
                   re.I)
_MISSING = re.compile(r"manifest unknown|name unknown|not found", re.I)
_TRANSIENT = re.compile(r"connection refused|connection reset|no such host|dial tcp|i/o timeout|timeout|\bEOF\b|"
                        r"HTTP status: 5\d\d|Bad Gateway|Service Unavailable|Gateway Timeout|"
                        r"Internal Server Error|too many requests|TLS handshake", re.I)


def classify(stderr: str, what: str) -> RegistryError:
    msg = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    msg = re.sub(r'^time="[^"]*" level=\w+ msg="?', "", msg).rstrip('"')
    if _AUTH.search(stderr):
        return RegistryAuthError(f"{what}: the registry refused the credentials ({msg})",
                                 "set REGISTRY_USERNAME/REGISTRY_PASSWORD or `docker login <registry>`")
    if _TRANSIENT.search(stderr):
        return RegistryUnavailable(f"{what}: registry unavailable ({msg})",
                                   "check the registry is up and reachable, then run the command again")
    return RegistryError(f"{what}: {msg}")


def with_retries(fn: Callable, *, attempts: int = 4, base_delay: float = 1.0, echo=say):
    """Run fn(); on RegistryUnavailable wait 1, 2, 4... seconds and try again; auth errors at once."""
    for i in range(attempts):
        try:
            return fn()
        except RegistryUnavailable as exc:
            if i == attempts - 1:
                raise
            delay = base_delay * 2 ** i
            echo(f"  registry unavailable ({exc.message.rsplit('(', 1)[-1].rstrip(')')}); "
                 f"retry {i + 1}/{attempts - 1} in {delay:.0f}s")
            time.sleep(delay)


@dataclass
class Skopeo:
    """Every call is retried on transient errors (`attempts` tries, backoff 1, 2, 4 s); auth errors at once."""

    authfile: str | None = None
    insecure_hosts: set[str] = field(default_factory=set)
    attempts: int = 1
    echo: Callable = print
    binary: str = "skopeo"
    global_args: list[str] = field(default_factory=list)  # before the subcommand: --policy, --registries.d
    env: dict[str, str] | None = None  # the process environment (e.g. GNUPGHOME for signing); None: inherited

    def __post_init__(self) -> None:
        found = shutil.which(self.binary)
        if not found:
            raise ToolMissingError("skopeo is not installed", "apt-get install skopeo")
        self.binary = found

    def _tls(self, ref: str, flag: str = "--tls-verify") -> list[str]:
        repo = ref.removeprefix("docker://")
        insecure = registry_host(repo) in self.insecure_hosts or is_local_registry(repo)
        return [f"{flag}=false"] if insecure else []

    def _run(self, args: list[str], what: str, timeout: int = 600) -> str:
        cmd = [self.binary, *self.global_args, *args]
        if self.authfile:
            cmd.insert(2 + len(self.global_args), f"--authfile={self.authfile}")

        def once() -> str:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env)
            if p.returncode != 0:
                raise classify(p.stderr, what)
            return p.stdout

        return with_retries(once, attempts=self.attempts, echo=self.echo)

    def inspect(self, ref: str) -> dict | None:
        """Digest and labels of ref (repo:tag or repo@digest), or None when it does not exist."""
        try:
            # --no-tags: the digest and labels are all callers read; the tag list is one more request per call
            out = self._run(["inspect", "--no-tags", *self._tls(ref), f"docker://{ref}"], f"inspect {ref}")
        except RegistryError as exc:
            if not isinstance(exc, (RegistryAuthError, RegistryUnavailable)) and _MISSING.search(exc.message):
                return None
            raise
        data = json.loads(out)
        return {"digest": data["Digest"], "labels": data.get("Labels") or {}}

    def digest(self, ref: str) -> str | None:
        info = self.inspect(ref)
        return info["digest"] if info else None

    def tags(self, repository: str) -> list[str]:
        try:
            out = self._run(["list-tags", *self._tls(repository), f"docker://{repository}"],
                            f"list tags of {repository}")
        except RegistryError as exc:
            if not isinstance(exc, (RegistryAuthError, RegistryUnavailable)) and _MISSING.search(exc.message):
                return []
            raise
        return json.loads(out).get("Tags") or []

    def raw_manifest(self, ref: str) -> bytes:
        """The manifest bytes of ref exactly as the registry serves them (what a signature signs)."""
        return self._run(["inspect", "--raw", *self._tls(ref), f"docker://{ref}"], f"inspect {ref}").encode()

    def copy(self, src: str, dst: str, extra: list[str] = ()) -> None:
        """Registry to registry, manifest bytes unchanged (so the digest is the same); extra: e.g. --sign-by."""
        self._run(["copy", "--preserve-digests", "--retry-times=0", *extra, *self._tls(src, "--src-tls-verify"),
                   *self._tls(dst, "--dest-tls-verify"), f"docker://{src}", f"docker://{dst}"],
                  f"copy {src} to {dst}")
