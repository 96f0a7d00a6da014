"""What this host lacks for a command, and what may be done about it: pure decisions over HostFacts.

probe.py gathers the facts, setup.py carries out the plan. Nothing here touches the host, so the
decisions (root or not, apt or not, engine there or not, a base image that can be pulled or not) are
unit-tested with hand-made facts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ENGINE = "docker"  # the pseudo-tool "a Docker CLI that builds with BuildKit + a running engine"


@dataclass(frozen=True)
class Tool:
    command: str
    package: str  # Debian/Ubuntu package
    purpose: str


# The tools set-up may install, as data: tools.json maps each command to its Debian/Ubuntu package and purpose.
TOOLS: dict[str, Tool] = {command: Tool(command, **row) for command, row in
                          json.loads(Path(__file__).with_name("tools.json").read_text()).items()}

# What each command needs besides the engine. debootstrap is asked for only when a base must be made. The
# tests need both engines: the image suite also runs on an image built by podman.
NEEDS: dict[str, tuple[str, ...]] = {
    "build": (ENGINE, "git", "make", "skopeo", "gpg"),
    "test": (ENGINE, "git", "make", "skopeo", "docker-registry", "htpasswd", "openssl", "chromium", "chromedriver",
             "podman", "buildah", "gpg"),
    "run": (ENGINE, "git"),
}
DAEMONLESS = ("podman", "buildah")  # the tools of image.engine podman (set-up installs them; nothing runs here)


def needs_for(command: str, engine: str) -> tuple[str, ...]:
    """What `command` needs with image.engine `engine`: podman builds need no Docker engine at all."""
    needs = NEEDS[command]
    if engine == "podman" and command != "test":
        needs = tuple(dict.fromkeys(n for x in needs for n in (DAEMONLESS if x == ENGINE else (x,))))
    return needs


@dataclass(frozen=True)
class HostFacts:
    root: bool
    apt: bool                         # apt-get on PATH (Debian, Ubuntu and their kin)
    os_name: str                      # /etc/os-release PRETTY_NAME
    commands: frozenset[str]          # which of TOOLS' commands are on PATH
    buildkit_cli: str | None = None   # a Docker CLI that can build with BuildKit
    dockerd: bool = False             # an engine binary is installed
    engine_package: str | None = None  # the package that installed dockerd (docker.io, docker-ce, ...)
    engine_running: bool = False      # the Docker CLI reaches an engine
    docker_host: str | None = None    # DOCKER_HOST: the engine is elsewhere, never started here
    systemd: bool = False             # systemd runs (systemctl start docker)


@dataclass(frozen=True)
class Plan:
    packages: tuple[str, ...] = ()    # to install with apt-get, in this order
    start_engine: bool = False
    missing: tuple[str, ...] = ()     # what is missing, in words
    manual: str | None = None         # set when this process may not act: what the user must run
    engine_only: bool = False         # only the engine is down (no tool missing)

    @property
    def empty(self) -> bool:
        return not self.packages and not self.start_engine


def engine_package_for(facts: HostFacts) -> str:
    """The package that brings a BuildKit-capable CLI without replacing the engine the host has."""
    pkg = facts.engine_package or ""
    if pkg.startswith("docker-ce"):
        return "docker-buildx-plugin"
    if pkg.startswith("moby"):
        return "moby-buildx"
    return "docker.io"


def start_command(facts: HostFacts, sudo: bool) -> str:
    pre = "sudo " if sudo else ""
    if facts.systemd:
        return f"{pre}systemctl start docker"
    return f"{pre}sh -c 'dockerd >/var/log/dockerd.log 2>&1 &'"


def decide(facts: HostFacts, needs: tuple[str, ...], install: bool) -> Plan:
    """What to install and start so that the commands in `needs` can run; `install`: may this process act
    (setup.install and not PLATFORM_NO_INSTALL)."""
    packages: list[str] = []
    missing: list[str] = []
    start = False
    for name in needs:
        if name == ENGINE:
            continue
        if name not in facts.commands:
            packages.append(TOOLS[name].package)
            missing.append(f"{name} ({TOOLS[name].purpose})")
    if ENGINE in needs:
        if facts.buildkit_cli is None:
            packages.insert(0, engine_package_for(facts))
            missing.insert(0, "a Docker CLI that builds with BuildKit")
        if not facts.engine_running:
            if facts.docker_host:
                return Plan(missing=(*missing, f"the Docker engine at DOCKER_HOST={facts.docker_host}"),
                            manual=f"start the engine at DOCKER_HOST={facts.docker_host}, or unset DOCKER_HOST",
                            engine_only=not missing)
            if not facts.dockerd and facts.buildkit_cli:
                # a CLI without a local engine (docker-ce-cli, a remote or rootless engine): installing
                # docker.io beside it would conflict, so only say what is needed
                return Plan(missing=(*missing, "a reachable Docker engine"), engine_only=not missing,
                            manual=f"start the engine {facts.buildkit_cli} talks to (no dockerd here), or install "
                            "one: apt-get install docker.io, unless docker-ce-cli is installed (then docker-ce)")
            start = True
            missing.append("a running Docker engine")
    packages = list(dict.fromkeys(packages))
    if not packages and not start:
        return Plan()
    plan = Plan(packages=tuple(packages), start_engine=start, missing=tuple(missing),
                engine_only=start and not packages)
    if install and facts.root and (facts.apt or not packages):
        return plan
    return Plan(packages=plan.packages, start_engine=start, missing=plan.missing, engine_only=plan.engine_only,
                manual=manual_steps(facts, plan, install))


def manual_steps(facts: HostFacts, plan: Plan, install: bool) -> str:
    """The exact commands for the user (not root, installing turned off), or the prerequisites (no apt)."""
    if plan.packages and not facts.apt:
        names = [("Docker Engine with the buildx plugin (BuildKit)" if p in ("docker.io", "docker-buildx-plugin")
                  else p) for p in plan.packages]
        return (f"no apt on {facts.os_name or 'this host'}: install {', '.join(dict.fromkeys(names))} with its "
                "package manager" + (", then start the Docker engine" if plan.start_engine else ""))
    sudo = not facts.root
    steps = []
    if plan.packages:
        pre = "sudo " if sudo else ""
        steps.append(f"{pre}apt-get update && {pre}apt-get install -y {' '.join(plan.packages)}")
    if plan.start_engine:
        steps.append(start_command(facts, sudo))
    why = "installing is turned off (PLATFORM_NO_INSTALL / setup.install)" if not install and facts.root else \
        "not root"
    return f"run: {' && '.join(steps)} ({why})"


@dataclass(frozen=True)
class BaseChoice:
    """What to do about the base image."""

    action: str                       # "present" | "pull" | "make" | "refuse"
    image: str                        # the base to use
    settings: dict[str, str] = field(default_factory=dict)  # to remember (image.base_image, image.python)
    why: str = ""                     # for "refuse": the one-line reason; for "make": why it is made


LOCAL_BASE = "local/python:3.11-slim-bookworm"
LOCAL_BASE_PYTHON = "3.11"  # Debian bookworm's python3, which make-base-image.sh installs


def choose_base(*, base: str, base_mode: str, python: str, pythons: list[str], user_set: set[str],
                present: bool, pull_error: str | None) -> BaseChoice:
    """base: the configured (or default) base image; user_set: the dotted keys the user chose on this
    command line (environment / --set), which are never changed behind their back; present: the engine
    has it; pull_error: None when a pull succeeded, else why it failed."""
    if present:
        return BaseChoice("present", base)
    if pull_error is None:
        return BaseChoice("pull", base)
    fix = "point BASE_IMAGE / image.base_image at an image the engine has or can pull"
    if base_mode != "python":
        return BaseChoice("refuse", base, why=f"base image {base} cannot be pulled ({pull_error}) and a vendor "
                          f"Airflow image cannot be made here: {fix}, or use image.base_mode python (a local "
                          "Debian base is then made)")
    explicit = "image.base_image" in user_set
    if explicit and not base.startswith("local/"):
        return BaseChoice("refuse", base, why=f"base image {base} (BASE_IMAGE) cannot be pulled ({pull_error}): {fix}, "
                          f"or unset it to have {LOCAL_BASE} made locally")
    target = base if base.startswith("local/") else LOCAL_BASE
    settings = {"image.base_image": target}
    if python != LOCAL_BASE_PYTHON:
        if "image.python" in user_set:
            return BaseChoice("refuse", base, why=f"base image {base} cannot be pulled ({pull_error}) and the "
                              f"local base has Debian bookworm's Python {LOCAL_BASE_PYTHON}, not {python}: use "
                              f"PYTHON={LOCAL_BASE_PYTHON}, or {fix}")
        if LOCAL_BASE_PYTHON not in pythons:
            return BaseChoice("refuse", base, why=f"base image {base} cannot be pulled ({pull_error}) and the local "
                              f"base's Python {LOCAL_BASE_PYTHON} has no lock (python_versions: {', '.join(pythons)}): "
                              f"add it and run make lock, or {fix}")
        settings["image.python"] = LOCAL_BASE_PYTHON
    return BaseChoice("make", target, settings, why=f"{base} cannot be pulled ({pull_error})")
