"""Step e: ruff's Airflow 3 rules (AIR3xx: removed and moved names, AIR301/302/311/312...) over the plugin,
the operators package, examples/dags and the rendered DAGs. ruff is the dev lock's pin (make venv)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ToolMissingError

PATHS = ("plugins", "operators", "examples/dags", "dags")
SELECT = "AIR3"


@dataclass(frozen=True)
class LintFinding:
    where: str  # plugins/x.py:12:5
    code: str
    message: str


@dataclass
class LintResult:
    ruff: str
    findings: list[LintFinding] = field(default_factory=list)
    seconds: float = 0.0
    paths: tuple[str, ...] = PATHS


def find_ruff() -> str:
    exe = Path(sys.executable).parent / "ruff"
    if exe.exists():
        return str(exe)
    found = shutil.which("ruff")
    if not found:
        raise ToolMissingError("ruff is not installed", "run make venv (the dev lock pins ruff)")
    return found


def lint(root: Path) -> LintResult:
    """Every AIR3 finding, path:line:column relative to root (ruff's preview rules included: some AIR3 rules
    are preview-only; --isolated: the project's own ruff settings do not switch rules off)."""
    t0 = time.perf_counter()
    ruff = find_ruff()
    version = subprocess.run([ruff, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    paths = [p for p in PATHS if (root / p).exists()]
    p = subprocess.run([ruff, "check", "--isolated", "--no-cache", "--preview", "--select", SELECT,
                        "--output-format", "json", "--exit-zero", *paths], cwd=root, capture_output=True, text=True,
                       check=False)
    if p.returncode != 0:
        raise ToolMissingError(f"ruff failed (exit {p.returncode}): {p.stderr.strip()[-500:]}",
                               "run make venv; see ruff's message")
    findings = []
    for item in json.loads(p.stdout or "[]"):
        rel = Path(item["filename"]).resolve().relative_to(root.resolve())
        loc = item.get("location") or {}
        findings.append(LintFinding(f"{rel}:{loc.get('row', 0)}:{loc.get('column', 0)}", item.get("code") or "?",
                                    item.get("message", "")))
    return LintResult(version, findings, round(time.perf_counter() - t0, 2), tuple(paths))
