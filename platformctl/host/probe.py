"""Facts about this host, read without changing anything (plan.py decides from them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..engine.docker import any_cli_info, daemon_installed, engine_package, find_buildkit_cli
from .plan import TOOLS, HostFacts


def os_name(os_release: Path = Path("/etc/os-release")) -> str:
    try:
        for line in os_release.read_text(errors="replace").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return ""


def probe(docker: str | None = None, engine_mode: str = "auto") -> HostFacts:
    # podman builds need no Docker CLI; the Docker facts are still read for the commands that need both
    found, info, _ = find_buildkit_cli(docker, "auto" if engine_mode == "podman" else engine_mode)
    dockerd = daemon_installed()
    if info is None:  # no BuildKit CLI: is an engine up all the same?
        info = any_cli_info(docker)
    return HostFacts(
        root=os.geteuid() == 0,
        apt=shutil.which("apt-get") is not None,
        os_name=os_name(),
        commands=frozenset(c for c in TOOLS if shutil.which(c)),
        buildkit_cli=found[0] if found else None,
        dockerd=dockerd,
        engine_package=engine_package() if dockerd else None,
        engine_running=bool(info is not None and info.returncode == 0),
        docker_host=os.environ.get("DOCKER_HOST") or None,
        systemd=Path("/run/systemd/system").is_dir(),
    )
