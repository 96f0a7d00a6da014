"""Step a: relock every set for the target Airflow in the scratch tree, with the project's resolver
(lock/core.lock_all: its constraints policy, layering and guards), and check the target against the index.

A resolution failure becomes one line per blocked requirement: the `.in` line that holds it back and the
resolver's reason."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..config import PlatformConfig
from ..errors import ResolutionError, UpgradeInputError
from ..lock.core import REQ_DIR, lock_all, targets
from ..lock.files import read_in
from .scratch import AIRFLOW_IN

PROVIDER_PREFIX = "apache-airflow-providers-"


# ---------------------------------------------------------------- the index: which Airflow versions exist
def index_versions(package: str, python: str | None = None, timeout: int = 120) -> list[str]:
    """The versions of package on the configured index (pip's own configuration), newest first; with python,
    only those whose wheels and Requires-Python take that Python. [] when pip cannot answer."""
    cmd = [sys.executable, "-m", "pip", "index", "versions", package, "--disable-pip-version-check"]
    if python:
        cmd += ["--python-version", python, "--only-binary=:all:"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    m = re.search(r"^Available versions:\s*(.+)$", p.stdout, re.MULTILINE)
    return [v.strip() for v in m.group(1).split(",")] if m else []


def nearest(target: str, versions: list[str], n: int = 3) -> list[str]:
    """The n versions closest to target (same release series first), newest first."""
    def key(v: str) -> tuple:
        try:
            a, b = Version(v), Version(target)
        except InvalidVersion:
            return (9, 0.0)
        rel = list(a.release) + [0, 0, 0]
        tgt = list(b.release) + [0, 0, 0]
        return (0 if rel[:2] == tgt[:2] else 1 if rel[0] == tgt[0] else 2,
                abs(sum((x - y) * 1000 ** (2 - i) for i, (x, y) in enumerate(zip(rel[:3], tgt[:3])))))
    stable = [v for v in versions if not re.search(r"[a-z]", v)]
    picked = sorted(stable or versions, key=key)[:n]
    return sorted(picked, key=lambda v: Version(v) if re.match(r"^[\d.]+$", v) else Version("0"), reverse=True)


@dataclass
class IndexCheck:
    """Both index queries run while the resolver works (they take about a second each)."""

    target: str
    python: str
    _all: Future
    _for_python: Future

    @classmethod
    def start(cls, pool: ThreadPoolExecutor, target: str, python: str) -> IndexCheck:
        return cls(target, python, pool.submit(index_versions, "apache-airflow"),
                   pool.submit(index_versions, "apache-airflow", python))

    def verify(self) -> None:
        """UpgradeInputError when the target is not on the index, or not for the image's Python."""
        every = self._all.result()
        if not every:
            return  # pip could not ask the index: the resolver's own answer stands
        if self.target not in every:
            raise UpgradeInputError(
                f"apache-airflow {self.target} is not on the package index",
                f"nearest available: {', '.join(nearest(self.target, every))}; make upgrade-test AIRFLOW=<one of them>")
        for_py = self._for_python.result()
        if for_py and self.target not in for_py:
            raise UpgradeInputError(
                f"apache-airflow {self.target} does not support Python {self.python} (the image's Python)",
                f"choose PYTHON= that it supports, or an Airflow for Python {self.python}: "
                f"{', '.join(nearest(self.target, for_py))}")


# ---------------------------------------------------------------- providers moved with Airflow (PROVIDERS=)
def provider_specs(raw: str) -> tuple[bool, list[str]]:
    """PROVIDERS=all (every provider to its newest allowed version) or a comma list of names or specs."""
    items = [x.strip() for x in re.split(r"[,\s]+", raw or "") if x.strip()]
    if items == ["all"]:
        return True, []
    for it in items:
        if not it.startswith(PROVIDER_PREFIX):
            raise UpgradeInputError(f"PROVIDERS item '{it}' is not an Airflow provider",
                                    f"name providers as {PROVIDER_PREFIX}<name>[==version], or PROVIDERS=all")
    return False, items


def write_provider_specs(tree: Path, specs: list[str]) -> None:
    """Put each provider spec into the scratch airflow.in (replacing that provider's line, else appended)."""
    path = tree / AIRFLOW_IN
    lines = path.read_text().splitlines()
    for spec in specs:
        name = canonicalize_name(re.split(r"[=<>!~\[ ;]", spec, maxsplit=1)[0])
        for i, line in enumerate(lines):
            head = re.split(r"[=<>!~\[ ;#]", line.strip(), maxsplit=1)[0]
            if head and canonicalize_name(head) == name:
                lines[i] = spec
                break
        else:
            lines.append(spec)
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- relock
@dataclass
class Conflict:
    where: str  # requirements/team.in:7
    package: str
    reason: str

    def line(self) -> str:
        return f"{self.where}: {self.package} holds the resolution back: {self.reason}"


@dataclass
class RelockResult:
    locks: list[str] = field(default_factory=list)  # requirements/<set>-py<xy>.txt written in the scratch tree
    seconds: float = 0.0
    conflicts: list[Conflict] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.conflicts


def blocked_lines(tree: Path, cfg: PlatformConfig, err: ResolutionError) -> list[Conflict]:
    """One Conflict per `.in` requirement the resolver's message names (the set it failed in first)."""
    text = err.message.lower()
    reason = re.sub(r"^cannot be resolved:\s*", "", err.message)
    failing = (err.where or "").split(":")[0]
    out: list[Conflict] = []
    seen: set[str] = set()
    order = sorted(cfg.lock_sets, key=lambda s: f"{REQ_DIR}/{s}.in" != failing)
    for set_name in order:
        rel = f"{REQ_DIR}/{set_name}.in"
        if not (tree / rel).exists():
            continue
        for ln in read_in(tree / rel, rel):
            if ln.requirement is None:
                continue
            name = canonicalize_name(ln.requirement.name)
            if name in seen or not re.search(rf"(?<![a-z0-9_-]){re.escape(name)}(?![a-z0-9_-])", text):
                continue
            seen.add(name)
            out.append(Conflict(f"{rel}:{ln.lineno}", ln.text, reason))
    if not out:
        out.append(Conflict(err.where or f"{REQ_DIR}/", "(no .in line named)", reason))
    return out


def relock(tree: Path, cfg: PlatformConfig, *, upgrade_providers: bool = False,
           index: IndexCheck | None = None) -> RelockResult:
    """Every set for every target Python of cfg (the scratch tree's configuration), into the scratch tree."""
    t0 = time.perf_counter()
    result = RelockResult()
    providers: tuple[str, ...] = ()
    if upgrade_providers:
        pins_path = tree / REQ_DIR
        names = set()
        for lock in pins_path.glob("airflow-py*.txt"):
            names |= {m.group(1) for m in re.finditer(rf"^({PROVIDER_PREFIX}[a-z0-9-]+)==", lock.read_text(), re.MULTILINE)}
        providers = tuple(sorted(names))
    try:
        lock_all(tree, cfg, upgrade_packages=providers, report=result.log.append)
    except ResolutionError as err:
        if index is not None:
            index.verify()  # a target that is not on the index is the user's input, not a conflict
        result.conflicts = blocked_lines(tree, cfg, err)
    else:
        if index is not None:
            index.verify()
    result.locks = [t.out_rel for t in targets(cfg)]
    result.seconds = round(time.perf_counter() - t0, 2)
    return result
