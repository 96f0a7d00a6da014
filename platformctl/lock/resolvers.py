"""Resolvers behind one small interface: uv (default) and pip-tools.

uv resolves for the *image* (--python-version / --python-platform), whatever the host.
pip-tools can only resolve for the interpreter that runs it: we run pip-compile under a
real interpreter of the target version, and refuse when the host platform differs from the
target one rather than produce pins that may not install in the image.
"""

from __future__ import annotations

import os
import platform as host_platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import ResolutionError, ToolMissingError


@dataclass(frozen=True)
class ResolveRequest:
    in_file: Path
    out_file: Path  # existing pins in it are kept as preferences unless upgraded
    python: str
    platform: str  # linux/amd64
    glibc: str
    constraints: tuple[Path, ...] = ()
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    display: str = ""  # requirements/team.in, for messages
    extra_env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None  # the resolver runs here (relative in_file/constraints are read from it)


class Resolver(Protocol):
    name: str

    def version(self) -> str: ...

    def compile(self, req: ResolveRequest) -> None: ...


_ARCH = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


def uv_python_platform(platform: str, glibc: str) -> str:
    return f"{_ARCH[platform]}-manylinux_{glibc.replace('.', '_')}"


def find_uv() -> str:
    exe = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(exe).exists():
        raise ToolMissingError("uv is not installed", "run make venv (it installs the dev lock, uv included)")
    return exe


_BOX = re.compile(r"[│├╰─▶×╭╮╯┬┴]+")


def condense_resolver_error(output: str, display: str) -> ResolutionError:
    """Turn a resolver's failure into one line naming the conflicting packages."""
    text = _BOX.sub(" ", output)
    text = re.sub(r"\s+", " ", text).strip()
    # uv: "No solution found when resolving dependencies: Because X and Y, we can conclude ..."
    m = re.search(r"(Because .*?)(?:And because|$)", text)
    core = m.group(1) if m else text
    core = re.sub(r"\s*(hint|help):.*$", "", core).strip()
    if "ResolutionImpossible" in text or "Could not find a version" in text:  # pip
        pip_lines = [ln.strip() for ln in output.splitlines() if "requested" in ln or "depends on" in ln or "Could not find" in ln]
        core = "; ".join(pip_lines[:4]) or core
    pkgs = sorted(set(re.findall(r"\b([a-z0-9][a-z0-9._-]*[a-z0-9])(?=[=<>!~]=?|\[)", core.lower())))
    pkgs = [p for p in pkgs if p not in {"we", "and", "only", "because"}]
    if len(core) > 400:
        core = core[:400] + "..."
    hint = "relax or remove one of: " + ", ".join(pkgs[:6]) if pkgs else "relax the conflicting requirements"
    if any(p.startswith("apache-airflow") for p in pkgs):
        hint += "; if a package needs another Airflow, change airflow_version in platform.yaml instead"
    return ResolutionError(f"cannot be resolved: {core}", hint, where=display)


class UvResolver:
    name = "uv"

    def __init__(self, exe: str | None = None):
        self.exe = exe or find_uv()

    def version(self) -> str:
        out = subprocess.run([self.exe, "--version"], capture_output=True, text=True, check=True).stdout
        return out.split()[1]

    def command(self, req: ResolveRequest) -> list[str]:
        cmd = [
            self.exe, "pip", "compile", str(req.in_file), "-o", str(req.out_file),
            "--python-version", req.python,
            "--python-platform", uv_python_platform(req.platform, req.glibc),
            "--generate-hashes", "--no-header", "--quiet", "--no-progress",
        ]
        if req.python == "%d.%d" % sys.version_info[:2]:
            # the interpreter uv would build an sdist with, named: its own search goes through PATH (a
            # pyenv shim is a chain of bash scripts: about 0.2 s of a cold lock)
            cmd += ["--python", sys.executable]
        cmd += common_flags(req)
        return cmd

    def compile(self, req: ResolveRequest) -> None:
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", **req.extra_env}
        proc = subprocess.run(self.command(req), capture_output=True, text=True, env=env, cwd=req.cwd)
        if proc.returncode != 0:
            raise condense_resolver_error(proc.stderr + proc.stdout, req.display)


def find_interpreter(version: str) -> str | None:
    """A real interpreter for X.Y on this host (PATH, pyenv, or uv's discovery)."""
    candidates = [shutil.which(f"python{version}")]
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        candidates.insert(0, sys.executable)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob(f"{version}.*"))]
    for c in candidates:
        if not c:
            continue
        try:
            out = subprocess.run([c, "-c", "import sys;print('%d.%d'%sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return c
    return None


class PipToolsResolver:
    """pip-compile run under an interpreter of the target Python, in a cached tool venv."""

    name = "pip-tools"

    def __init__(self, cache_dir: Path, pip_tools_spec: str = "pip-tools", pip_spec: str = "pip"):
        self.cache_dir = cache_dir
        self.pip_tools_spec = pip_tools_spec
        self.pip_spec = pip_spec

    def version(self) -> str:
        return self.pip_tools_spec.partition("==")[2] or "unpinned"

    def _check_platform(self, target: str) -> None:
        machine = host_platform.machine().lower()
        arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine, machine)
        if sys.platform != "linux" or _ARCH[target] != arch:
            raise ToolMissingError(
                f"pip-tools resolves only for the machine running it ({sys.platform}/{machine}), not {target}",
                "use resolver: uv (it resolves for the image's platform from any machine)",
            )

    def tool_venv(self, python: str) -> Path:
        interp = find_interpreter(python)
        if not interp:
            raise ToolMissingError(
                f"pip-tools needs a Python {python} interpreter to resolve for Python {python}, and none was found",
                f"install python{python} (or use resolver: uv, which needs no interpreter of the target version)",
            )
        venv = self.cache_dir / f"pip-tools-py{python}"
        exe = venv / "bin" / "pip-compile"
        if not exe.exists():
            uv = find_uv()
            subprocess.run([uv, "venv", "--quiet", "--python", interp, str(venv)], check=True)
            subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
                            self.pip_tools_spec, self.pip_spec], check=True)
        return venv

    def compile(self, req: ResolveRequest) -> None:
        self._check_platform(req.platform)
        venv = self.tool_venv(req.python)
        cmd = [str(venv / "bin" / "pip-compile"), str(req.in_file), "-o", str(req.out_file),
               "--generate-hashes", "--allow-unsafe", "--strip-extras", "--no-header", "--quiet",
               "--resolver=backtracking"]
        cmd += common_flags(req)
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **req.extra_env}, cwd=req.cwd)
        if proc.returncode != 0:
            raise condense_resolver_error(proc.stderr + proc.stdout, req.display)


def make_resolver(name: str, cache_dir: Path, pins: dict[str, str] | None = None) -> Resolver:
    if name == "uv":
        return UvResolver()
    pins = pins or {}
    spec = f"pip-tools=={pins['pip-tools']}" if "pip-tools" in pins else "pip-tools"
    pip = f"pip=={pins['pip']}" if "pip" in pins else "pip"
    return PipToolsResolver(cache_dir, spec, pip)


def common_flags(req: ResolveRequest) -> list[str]:
    """The flags both resolvers spell alike: constraints (-c) and upgrades."""
    flags: list[str] = []
    for c in req.constraints:
        flags += ["-c", str(c)]
    if req.upgrade:
        flags.append("--upgrade")
    for p in req.upgrade_packages:
        flags += ["--upgrade-package", p]
    return flags
