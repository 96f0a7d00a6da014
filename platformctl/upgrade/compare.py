"""Step b: the dependency comparison of the current and the candidate locks, grouped.

Groups (the image's packages: the airflow and team locks of the image's Python): Airflow itself; the
providers; the team's direct requirements (team.in); their transitive dependencies (in the team lock only);
every other package (Airflow's dependencies). Each change is added, removed, or a major / minor / patch
move (up or down: a rehearsal to a lower version moves down). The host-only sets (dev, tools) are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..lock.core import REQ_DIR, lock_filename
from ..lock.files import read_in, read_pins

AIRFLOW_PACKAGES = ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk")
PROVIDER_PREFIX = "apache-airflow-providers-"
GROUPS = ("airflow", "providers", "team direct", "team transitive", "other")
KINDS = ("major", "minor", "patch", "added", "removed")


@dataclass(frozen=True)
class Change:
    name: str
    old: str | None
    new: str | None
    kind: str  # major | minor | patch | added | removed
    down: bool = False  # moved to a lower version

    def text(self) -> str:
        if self.kind == "added":
            return f"{self.name} {self.new} (added)"
        if self.kind == "removed":
            return f"{self.name} {self.old} (removed)"
        return f"{self.name} {self.old} -> {self.new} ({self.kind}{', down' if self.down else ''})"


@dataclass
class Comparison:
    python: str
    groups: dict[str, list[Change]] = field(default_factory=lambda: {g: [] for g in GROUPS})
    unchanged: int = 0
    host_changes: dict[str, int] = field(default_factory=dict)  # dev/tools lock: pins that changed
    size_current: int | None = None  # image sizes (bytes), filled in once the candidate is built
    size_candidate: int | None = None

    def counts(self, group: str) -> dict[str, int]:
        out = {k: 0 for k in KINDS}
        for c in self.groups[group]:
            out[c.kind] += 1
        return out

    def total(self) -> int:
        return sum(len(v) for v in self.groups.values())

    @property
    def size_delta(self) -> int | None:
        if self.size_current is None or self.size_candidate is None:
            return None
        return self.size_candidate - self.size_current


def classify(name: str, old: str | None, new: str | None) -> Change:
    if old is None:
        return Change(name, None, new, "added")
    if new is None:
        return Change(name, old, None, "removed")
    try:
        a, b = Version(old), Version(new)
    except InvalidVersion:
        return Change(name, old, new, "patch", new < old)
    ra, rb = list(a.release) + [0, 0], list(b.release) + [0, 0]
    kind = "major" if ra[0] != rb[0] else "minor" if ra[1] != rb[1] else "patch"
    return Change(name, old, new, kind, b < a)


def _pins(root: Path, set_name: str, python: str) -> dict[str, str]:
    p = root / REQ_DIR / lock_filename(set_name, python)
    return read_pins(p.read_text()) if p.exists() else {}


def team_direct(root: Path) -> set[str]:
    p = root / REQ_DIR / "team.in"
    if not p.exists():
        return set()
    return {canonicalize_name(ln.requirement.name) for ln in read_in(p, f"{REQ_DIR}/team.in") if ln.requirement}


def group_of(name: str, direct: set[str], team_only: set[str]) -> str:
    if name in AIRFLOW_PACKAGES:
        return "airflow"
    if name.startswith(PROVIDER_PREFIX):
        return "providers"
    if name in direct:
        return "team direct"
    if name in team_only:
        return "team transitive"
    return "other"


def compare(current_root: Path, candidate_root: Path, python: str, host_sets: tuple[str, ...] = ("dev", "tools")
            ) -> Comparison:
    cur_af, new_af = _pins(current_root, "airflow", python), _pins(candidate_root, "airflow", python)
    cur_team, new_team = _pins(current_root, "team", python), _pins(candidate_root, "team", python)
    old = {**cur_af, **cur_team}
    new = {**new_af, **new_team}
    direct = team_direct(candidate_root) | team_direct(current_root)
    team_only = (set(cur_team) - set(cur_af)) | (set(new_team) - set(new_af))
    cmp = Comparison(python)
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            cmp.unchanged += 1
            continue
        c = classify(name, a, b)
        cmp.groups[group_of(name, direct, team_only)].append(c)
    for s in host_sets:
        a, b = _pins(current_root, s, python), _pins(candidate_root, s, python)
        cmp.host_changes[s] = sum(1 for n in set(a) | set(b) if a.get(n) != b.get(n))
    return cmp
