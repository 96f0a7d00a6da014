"""Prepare this host for a command: install what is missing, start the engine, make a base image, find
the CA bundle; remember what was resolved in .platform/local.yaml. Each action is announced on one
line; when nothing needs doing nothing is printed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import machine
from ..config import ENV_OVERRIDES, PlatformConfig, _parse_value, load_config_with_sources
from ..errors import ConfigError, EngineError, HostSetupError, ToolMissingError
from ..engine import ContainerEngine, connect, detect
from ..engine.docker import start_daemon
from ..wait import wait_until
from .plan import BaseChoice, HostFacts, Plan, choose_base, decide, needs_for
from .probe import probe
from ..output import say

Echo = Callable[[str], None]
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
                   "/etc/pki/tls/certs/ca-bundle.crt",     # RHEL, Fedora
                   "/etc/ssl/cert.pem")                    # macOS, BSDs
ENGINE_START_TIMEOUT = 60
PULL_TIMEOUT = 60
# Another package manager run (unattended upgrades at a fresh machine's boot, another apt-get) holds these
# for minutes: set-up waits for it, bounded, instead of failing at once.
APT_LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")
APT_LOCK_WAIT = 600
_apt_updated = False


def _echo(line: str) -> None:
    say(f"setup: {line}")


def install_allowed(cfg: PlatformConfig, environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return cfg.setup.install and env.get("PLATFORM_NO_INSTALL", "").lower() not in {"1", "true", "yes"}


def _tail(path: Path, n: int = 8) -> str:
    try:
        return " | ".join(ln.strip() for ln in path.read_text(errors="replace").splitlines()[-n:] if ln.strip())
    except OSError:
        return "(no log)"


def lock_holder(paths: tuple[str, ...] = APT_LOCKS, proc: Path = Path("/proc")) -> tuple[str, int, str] | None:
    """(lock file, pid, program) of a process holding one of the package manager's locks, or None. Read from
    the kernel's lock table (/proc/locks: the fcntl locks dpkg and apt take), matched by device and inode."""
    wanted: dict[tuple[int, int, int], str] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        wanted[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = path
    if not wanted:
        return None
    try:
        table = (proc / "locks").read_text()
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.replace("->", "").split()
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
        except (IndexError, ValueError):
            continue
        if key in wanted:
            try:
                name = (proc / str(pid) / "comm").read_text().strip()
            except OSError:
                name = "another process"
            return wanted[key], pid, name
    return None


def _span(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def wait_for_apt_locks(echo: Echo, timeout: float = APT_LOCK_WAIT, poll: float = 2.0,
                       holder: Callable[[], tuple[str, int, str] | None] | None = None) -> None:
    """Wait (bounded) while another package manager run holds the locks: one line naming it, then silence
    until it is done; past the timeout a HostSetupError naming it."""
    holder = holder or lock_holder
    held = holder()
    if held is None:
        return
    path, pid, name = held
    echo(f"waiting for {name} (pid {pid}) to release {path}: another package manager run "
         f"(up to {_span(timeout)})")
    last = [held]

    def free() -> bool:
        last[0] = holder()
        return last[0] is None

    wait_until(free, timeout=timeout, poll=poll, timeout_error=lambda: HostSetupError(
        f"{last[0][2]} (pid {last[0][1]}) still holds {last[0][0]} after {_span(timeout)}",
        "let it finish (a fresh machine's unattended upgrades can take long), then run the command again"))


def apt_install(packages: tuple[str, ...], log: Path, echo: Echo, lock_wait: float = APT_LOCK_WAIT) -> None:
    global _apt_updated
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # apt itself also waits for dpkg's lock (a run that starts between the check and ours)
    apt = ["apt-get", "-o", f"DPkg::Lock::Timeout={int(lock_wait)}"]
    with log.open("a") as out:
        wait_for_apt_locks(echo, lock_wait)
        if not _apt_updated:
            echo("apt-get update (once)")
            if subprocess.run([*apt, "update", "-q"], stdout=out, stderr=subprocess.STDOUT, env=env).returncode:
                raise HostSetupError("apt-get update failed", f"see {log}: {_tail(log)}")
            _apt_updated = True
        wait_for_apt_locks(echo, lock_wait)
        echo(f"installing {' '.join(packages)} with apt-get (log: {log})")
        p = subprocess.run([*apt, "install", "-y", "-q", *packages], stdout=out, stderr=subprocess.STDOUT, env=env)
    if p.returncode:
        raise HostSetupError(f"apt-get install {' '.join(packages)} failed", f"see {log}: {_tail(log)}")


def start_engine(root: Path, facts: HostFacts, cli: str, echo: Echo, timeout: int = ENGINE_START_TIMEOUT) -> None:
    log = root / ".platform" / "dockerd.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if not facts.systemd:
        echo(f"starting the Docker engine: dockerd (log: {log.relative_to(root)})")
    where = start_daemon(log, facts.systemd, echo)
    engine = connect(cli)
    wait_until(lambda: engine.answers(timeout=10), timeout=timeout, poll=0.5, timeout_error=lambda: HostSetupError(
        f"the Docker engine did not answer within {timeout} s of starting it",
        f"its log: {where}; last lines: {_tail(log) if not facts.systemd else 'see the journal'}"))
    echo("the Docker engine answers")


def carry_out(root: Path, plan: Plan, facts: HostFacts, echo: Echo, cfg: PlatformConfig) -> None:
    if plan.manual:
        what = ", ".join(plan.missing)
        if plan.engine_only:
            raise EngineError(f"the Docker engine is not reachable through {facts.buildkit_cli or 'docker'}: "
                              f"{what}", plan.manual)
        raise ToolMissingError(f"this host lacks {what}", plan.manual)
    if plan.packages:
        apt_install(plan.packages, root / ".platform" / "apt.log", echo)
    if plan.start_engine:
        after = probe(cfg.image.docker, cfg.image.engine)  # the package may have started it
        if not after.engine_running:
            cli = after.buildkit_cli or cfg.image.docker or "docker"
            start_engine(root, after, cli, echo)


def ensure_tools(root: Path, cfg: PlatformConfig, needs: tuple[str, ...], echo: Echo) -> None:
    facts = probe(cfg.image.docker, cfg.image.engine)
    plan = decide(facts, needs, install_allowed(cfg))
    if not plan.empty:
        carry_out(root, plan, facts, echo, cfg)


def _pull_error(engine: ContainerEngine, ref: str, echo: Echo) -> str | None:
    if ref.startswith("local/"):
        return "a local/ image is made here, never pulled"
    p = engine.pull(ref, PULL_TIMEOUT)
    if p.returncode == 0:
        echo(f"pulled base image {ref}")
        return None
    lines = [ln for ln in (p.stderr or p.stdout).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else f"docker pull exited {p.returncode}")[:200]


def ensure_base(root: Path, cfg: PlatformConfig, user_set: set[str], engine: ContainerEngine,
                echo: Echo) -> dict[str, Any]:
    base = cfg.image.resolved_base_image(cfg.airflow_version)
    if engine.image_id(base):
        return {}
    choice: BaseChoice = choose_base(base=base, base_mode=cfg.image.base_mode, python=cfg.image.python,
                                     pythons=cfg.python_versions, user_set=user_set, present=False,
                                     pull_error=_pull_error(engine, base, echo))
    if choice.action == "pull":
        return {}
    if choice.action == "refuse":
        raise HostSetupError(choice.why)
    if engine.image_id(choice.image) is None and engine.import_from_docker(choice.image):
        echo(f"base image: copied {choice.image} from the local Docker engine into podman's storage")
    if engine.image_id(choice.image) is None:
        ensure_tools(root, cfg, ("debootstrap",), echo)
        echo(f"base image: {choice.why}; making {choice.image} with debootstrap (once, a few minutes)")
        script = root / "scripts" / "make-base-image.sh"
        p = subprocess.run(["bash", str(script), choice.image], capture_output=True, text=True,
                           env={**os.environ, "DOCKER": engine.cli})
        if p.returncode or engine.image_id(choice.image) is None:
            out = " | ".join((p.stderr or p.stdout).strip().splitlines()[-5:])
            raise HostSetupError(f"could not make the base image {choice.image}: {out or 'no output'}",
                                 "fix the cause above, or point BASE_IMAGE / image.base_image at an image the "
                                 "engine has or can pull")
        echo(f"made base image {choice.image}")
    return choice.settings


def host_ca_settings(cfg: PlatformConfig, exists: Callable[[str], bool] = os.path.isfile) -> dict[str, Any]:
    """The host's CA bundle as the ca_bundle build secret, unless set already or turned off."""
    if "ca_bundle" in cfg.image.build_secrets or cfg.setup.ca_bundle == "none":
        return {}
    if cfg.setup.ca_bundle != "auto":
        if not exists(cfg.setup.ca_bundle):
            raise ConfigError(f"setup.ca_bundle: {cfg.setup.ca_bundle} does not exist",
                              "point it at a PEM bundle, or use auto or none", where="platform.yaml")
        return {"image.build_secrets.ca_bundle": cfg.setup.ca_bundle}
    found = next((p for p in HOST_CA_BUNDLES if exists(p)), None)
    return {"image.build_secrets.ca_bundle": found} if found else {}


def user_settings(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The make / environment variables the user passed (ENV_OVERRIDES), to be remembered."""
    env = os.environ if environ is None else environ
    return {dotted: _parse_value(dotted, env[var]) for var, dotted in ENV_OVERRIDES.items() if env.get(var)}


def prepare(root: Path, overrides: dict[str, Any], command: str = "build", echo: Echo = _echo,
            preflight: Callable[[Path, PlatformConfig], None] | None = None) -> tuple[PlatformConfig, ContainerEngine]:
    """Everything `command` needs on this host, then the configuration as this machine resolved it and the
    engine to use. preflight(root, cfg) checks the inputs first, before the host is touched. A second run
    with nothing changed installs, starts and prints nothing."""
    cfg, sources = load_config_with_sources(root, overrides)
    if preflight:
        preflight(root, cfg)
    ensure_tools(root, cfg, needs_for(command, cfg.image.engine), echo)
    engine = detect(cfg.image.docker, cfg.image.engine)
    user_set = {k for k, s in sources.items() if s != machine.SOURCE}
    settings: dict[str, Any] = {}
    if "image.docker" not in user_set and engine.name == "docker":
        settings["image.docker"] = engine.cli
    settings.update(ensure_base(root, cfg, user_set, engine, echo))
    settings.update(host_ca_settings(cfg))
    settings.update(user_settings())
    changed = machine.remember(root, settings)
    if changed:
        echo(f"remembered in {machine.SOURCE}: " + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())))
        cfg, _ = load_config_with_sources(root, overrides)
    return cfg, engine
