"""What changed between two locks: added, removed, upgraded, downgraded."""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version


@dataclass
class PinDiff:
    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    upgraded: dict[str, tuple[str, str]] = field(default_factory=dict)
    downgraded: dict[str, tuple[str, str]] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.added or self.removed or self.upgraded or self.downgraded)

    def summary(self, limit: int = 25) -> str:
        if self.empty():
            return "no pin changes"
        parts = [f"{len(self.added)} added", f"{len(self.removed)} removed",
                 f"{len(self.upgraded)} upgraded", f"{len(self.downgraded)} downgraded"]
        detail = [f"  + {n}=={v}" for n, v in sorted(self.added.items())]
        detail += [f"  - {n}=={v}" for n, v in sorted(self.removed.items())]
        detail += [f"  ^ {n} {a} -> {b}" for n, (a, b) in sorted(self.upgraded.items())]
        detail += [f"  v {n} {a} -> {b}" for n, (a, b) in sorted(self.downgraded.items())]
        if len(detail) > limit:
            detail = detail[:limit] + [f"  ... and {len(detail) - limit} more"]
        return "\n".join([", ".join(parts), *detail])


def _newer(a: str, b: str) -> bool:
    try:
        return Version(b) > Version(a)
    except InvalidVersion:
        return b > a


def diff_pins(old: dict[str, str], new: dict[str, str]) -> PinDiff:
    d = PinDiff()
    for name, v in new.items():
        if name not in old:
            d.added[name] = v
        elif old[name] != v:
            (d.upgraded if _newer(old[name], v) else d.downgraded)[name] = (old[name], v)
    for name, v in old.items():
        if name not in new:
            d.removed[name] = v
    return d
