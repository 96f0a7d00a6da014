"""`make doctor`: what this host has and lacks for each command, and the resolved settings with their source."""

from __future__ import annotations

from pathlib import Path

from .. import machine
from ..config import CONFIG_FILE
from ..errors import ToolMissingError
from ..engine.podman import CONTAINERS_CONF
from ..host.plan import NEEDS, TOOLS, decide, needs_for
from ..host.probe import probe
from ..host.setup import install_allowed
from ..output import say
from ..services.context import context_of

SHOWN = ("image.python", "image.base_image", "image.base_mode", "image.docker", "image.engine",
         "image.build_secrets", "registry.repository", "setup.install", "setup.ca_bundle")


def _value(cfg, dotted: str):
    cur = cfg
    for part in dotted.split("."):
        cur = getattr(cur, part)
    return cur


def doctor(root: Path, args) -> int:
    cfg, sources = context_of(root, args).config_with_sources()
    facts = probe(cfg.image.docker, cfg.image.engine)
    who = "root" if facts.root else "not root"
    say(f"host: {facts.os_name or 'unknown OS'}, {who}, {'apt' if facts.apt else 'no apt'}, "
        f"installing {'on' if install_allowed(cfg) else 'off'}")
    engine = facts.buildkit_cli or "-"
    say(f"  {'ok' if facts.buildkit_cli else 'missing':8} {'Docker CLI with BuildKit':28} {engine}")
    state = "running" if facts.engine_running else ("installed, not running" if facts.dockerd else "not installed")
    say(f"  {'ok' if facts.engine_running else 'missing':8} {'Docker engine':28} {state}"
        f"{' (' + facts.engine_package + ')' if facts.engine_package else ''}")
    for name, tool in TOOLS.items():
        ok = name in facts.commands
        used = ", ".join(c for c, needs in NEEDS.items() if name in needs) or "build, when a base must be made"
        say(f"  {'ok' if ok else 'missing':8} {name:28} {tool.purpose} [{used}]")
    if cfg.image.engine == "podman":
        say(f"  {'engine':8} {'image.engine podman':28} buildah builds (reproducible: make verify-reproducible), "
            f"podman runs the checks; containers.conf: {CONTAINERS_CONF}")
    else:
        say(f"  {'engine':8} {'image.engine ' + cfg.image.engine:28} Docker BuildKit: builds are not reproducible "
            "(20.10's BuildKit ignores SOURCE_DATE_EPOCH); ENGINE=podman builds without a daemon, bit for bit")
    worst = 0
    for command in NEEDS:
        needs = needs_for(command, cfg.image.engine)
        plan = decide(facts, needs, install_allowed(cfg))
        if plan.empty:
            continue
        todo = plan.manual or f"make {command} does it: apt-get install {' '.join(plan.packages)}" + \
            (", start the engine" if plan.start_engine else "")
        say(f"make {command}: missing {', '.join(plan.missing)}: {todo}")
        worst = worst or (ToolMissingError.exit_code if plan.manual else 0)
    say(f"settings (--set > environment > {machine.SOURCE} > {CONFIG_FILE} > default):")
    for dotted in SHOWN:
        value = _value(cfg, dotted)
        source = sources.get(dotted) or next((s for k, s in sources.items() if k.startswith(dotted + ".")), None)
        say(f"  {dotted:22} {value!s:44} {source or CONFIG_FILE + ' / default'}")
    say(f"  {'base image in use':22} {cfg.image.resolved_base_image(cfg.airflow_version)}")
    return worst


def register(sub) -> None:
    p = sub.add_parser("doctor", help="what this host has and lacks, and the resolved settings with their source")
    p.set_defaults(func=doctor)
