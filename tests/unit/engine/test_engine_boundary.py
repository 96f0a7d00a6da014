"""Nothing outside platformctl/engine/ runs the container engine's CLI or looks it up: every container run,
image check, pod builder and compose lookup goes through the engine interface (issue #33).

Read from the code (ast), so a new `subprocess.run(["docker", ...])`, `shutil.which("docker")`, a command list
built from an engine's `.cli`, or `engine.cli` handed to another process fails here, naming the line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ENGINE = ROOT / "platformctl" / "engine"
CLIENTS = {"docker", "dockerd", "docker-compose", "podman", "buildah", "nerdctl"}
CLI_NAMES = {"docker", "docker_cli", "cli"}
# (file, line content) that may name the CLI, and why
ALLOWED = {
    # host set-up records the CLI it resolved in .platform/local.yaml (image.docker): configuration, not a run
    ("platformctl/host/setup.py", 'settings["image.docker"] = engine.cli'),
    # host set-up makes the base image with scripts/make-base-image.sh, the standalone script (documented to be
    # run by hand too); it is told which CLI the engine uses instead of looking one up itself
    ("platformctl/host/setup.py", '"DOCKER": engine.cli'),
    # host set-up's plan names the daemonless engine's tools, to install them: packages, not a run
    ("platformctl/host/plan.py", 'DAEMONLESS = ("podman", "buildah")'),
}


def _sources() -> list[Path]:
    files = [ROOT / "build.py", *(ROOT / "platformctl").rglob("*.py")]
    return [p for p in files if ENGINE not in p.parents]


def _client(node: ast.AST) -> bool:
    """A string constant naming an engine client (a path to one too)."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and \
        node.value.rsplit("/", 1)[-1] in CLIENTS


def _cli_ref(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id in CLI_NAMES) or (isinstance(node, ast.Attribute)
                                                                    and node.attr == "cli")


def violations(path: Path) -> list[str]:
    return scan(path.read_text(), path.relative_to(ROOT).as_posix())


def scan(text: str, rel: str) -> list[str]:
    lines = text.splitlines()
    out = []
    in_fstring: set[int] = set()
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # naming the CLI in a message is fine
            in_fstring |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        why = None
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts and (_client(node.elts[0]) or _cli_ref(node.elts[0])):
            why = "builds an engine command line"
        elif isinstance(node, ast.Call) and node.args and _client(node.args[0]) and (
                getattr(node.func, "attr", None) == "which" or getattr(node.func, "id", None) == "which"):
            why = "looks the engine's CLI up"
        elif isinstance(node, ast.Attribute) and node.attr == "cli" and id(node) not in in_fstring:
            why = "hands the engine's CLI on"
        if why:
            line = lines[node.lineno - 1].strip()
            if not any(rel == f and snippet in line for f, snippet in ALLOWED):
                out.append(f"{rel}:{node.lineno}: {why}: {line}")
    return out


def test_no_module_outside_the_engine_runs_or_looks_up_the_engine_cli():
    found = [v for p in _sources() for v in violations(p)]
    assert not found, "go through platformctl.engine (run/start/container/compose_command):\n" + "\n".join(found)


def test_the_check_sees_what_it_forbids():
    """The scan is not vacuous: each forbidden shape is reported; a message naming the CLI is not."""
    for snippet in ['import subprocess\nsubprocess.run(["docker", "run", "x"])\n',
                    'import shutil\nshutil.which("docker")\n',
                    'def f(cli):\n    return [cli, "inspect", "x"]\n',
                    'def f(engine):\n    return engine.cli\n',
                    'import subprocess\nsubprocess.run(["/usr/bin/docker", "ps"])\n']:
        assert scan(snippet, "platformctl/x.py"), snippet
    assert scan('def f(engine):\n    return f"through {engine.cli}"\n', "platformctl/x.py") == []


def test_the_allowlist_is_still_needed():
    """Each allowed line still exists (a stale entry would hide a new use)."""
    for f, snippet in ALLOWED:
        assert snippet in (ROOT / f).read_text(), (f, snippet)
