"""Nothing outside platformctl/engine/ runs the container engine's CLI or looks it up: every container run,
image check, pod builder and compose lookup goes through the engine interface (issue #33).

Read from the code (ast), so a new `subprocess.run(["docker", ...])`, a shell line `"docker run ..."` (subprocess,
os.system, shlex.split), os.exec*/asyncio with the client, `shutil.which("docker")`, a command list built from an
engine's `.cli`, the configured `cfg.image.docker` or a module constant DOCKER = "docker", or `engine.cli` handed to
another process fails here, naming the line."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ENGINE = ROOT / "platformctl" / "engine"
CLIENTS = {"docker", "dockerd", "docker-compose", "podman", "buildah", "nerdctl"}
CLI_NAMES = {"docker", "docker_cli", "cli"}
CLI_ATTRIBUTES = {"cli", "docker", "docker_cli", "buildkit_cli"}  # engine.cli, cfg.image.docker, facts.buildkit_cli
# (file, line content) that may name the CLI, and why
ALLOWED = {
    # host set-up records the CLI it resolved in .platform/local.yaml (image.docker): configuration, not a run
    ("platformctl/host/setup.py", 'settings["image.docker"] = engine.cli'),
    # host set-up makes the base image with scripts/make-base-image.sh, the standalone script (documented to be
    # run by hand too); it is told which CLI the engine uses instead of looking one up itself
    ("platformctl/host/setup.py", '"DOCKER": engine.cli'),
    # host set-up's plan names the daemonless engine's tools, to install them: packages, not a run
    ("platformctl/host/plan.py", 'DAEMONLESS = ("podman", "buildah")'),
    # ... and what each command needs installed, the engine first (ENGINE = "docker", a pseudo-tool): names
    ("platformctl/host/plan.py", '(ENGINE, "git"'),
}


def _sources() -> list[Path]:
    files = [ROOT / "build.py", *(ROOT / "platformctl").rglob("*.py")]
    return [p for p in files if ENGINE not in p.parents]


def _client(node: ast.AST) -> bool:
    """A string constant naming an engine client (a path to one too)."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and \
        node.value.rsplit("/", 1)[-1] in CLIENTS


def _cli_ref(node: ast.AST, names: set[str] = CLI_NAMES) -> bool:
    return (isinstance(node, ast.Name) and node.id in names) or (isinstance(node, ast.Attribute)
                                                                and node.attr in CLI_ATTRIBUTES)


# what runs a command given as its first argument: a list (subprocess, os.exec*, asyncio) or a shell line
RUNNERS = {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput", "system", "popen",
           "execv", "execvp", "execvpe", "execl", "execlp", "spawnlp", "spawnvp", "create_subprocess_exec",
           "create_subprocess_shell", "split"}


def _command_line(node: ast.AST) -> bool:
    """A string constant that is a shell line starting with an engine client (`docker run ...`)."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip()):
        return False
    return node.value.split()[0].rsplit("/", 1)[-1] in CLIENTS


def _func_name(node: ast.Call) -> str | None:
    return getattr(node.func, "attr", None) or getattr(node.func, "id", None)


def _client_names(tree: ast.AST) -> set[str]:
    """CLI_NAMES and the module's own names bound to an engine client (DOCKER = "docker")."""
    names = set(CLI_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _client(node.value):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


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
    names = _client_names(tree)
    for node in ast.walk(tree):
        why = None
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts and (_client(node.elts[0])
                                                                     or _cli_ref(node.elts[0], names)):
            why = "builds an engine command line"
        elif isinstance(node, ast.Call) and node.args and _func_name(node) == "which" and (
                _client(node.args[0]) or _cli_ref(node.args[0], names)):
            why = "looks the engine's CLI up"
        elif isinstance(node, ast.Call) and node.args and _func_name(node) in RUNNERS and (
                _client(node.args[0]) or _command_line(node.args[0]) or _cli_ref(node.args[0], names)):
            why = "runs the engine's CLI"
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
                    'import subprocess\nsubprocess.run(["/usr/bin/docker", "ps"])\n',
                    'import subprocess\nsubprocess.run("docker run --rm x", shell=True)\n',
                    'import os\nos.system("podman ps")\n',
                    'import os\nos.execvp("docker", ["docker", "ps"])\n',
                    'import asyncio\nasyncio.create_subprocess_exec("docker", "ps")\n',
                    'import shlex\nshlex.split("docker compose up")\n',
                    'DOCKER = "docker"\ndef f():\n    return [DOCKER, "ps"]\n',
                    'import shutil\ndef f(cli):\n    return shutil.which(cli)\n',
                    'import subprocess\ndef f(cfg):\n    subprocess.run([cfg.image.docker, "ps"])\n',
                    'import subprocess\ndef f(facts):\n    subprocess.Popen(facts.buildkit_cli)\n']:
        assert scan(snippet, "platformctl/x.py"), snippet
    assert scan('def f(engine):\n    return f"through {engine.cli}"\n', "platformctl/x.py") == []
    assert scan('raise RuntimeError("docker compose up failed")\n', "platformctl/x.py") == []


def test_the_allowlist_is_still_needed():
    """Each allowed line still exists (a stale entry would hide a new use)."""
    for f, snippet in ALLOWED:
        assert snippet in (ROOT / f).read_text(), (f, snippet)
