"""Runs inside the image build (the base image's python3, stdlib only):

    python3 lock_difference.py BASE_LOCK LOCK > OUT

writes the requirement blocks of LOCK (pin line and its --hash lines) whose package BASE_LOCK does not
pin, so the team lock can be installed with --no-deps into its own venv, in parallel with the Airflow
lock, and copied over it. The team lock is compiled against the Airflow lock (`-c`), so a package both
pin has the same version in both; if not, the locks are out of step and this fails naming the package.

The locks are `make lock`'s output: `name[extras]==version [; marker] \\` lines, each followed by its
`--hash=` lines, and comments. Anything else (a direct URL, an option line, a hash outside a block)
fails naming the line, rather than being dropped from the install.
"""

from __future__ import annotations

import os
import re
import sys

# the same pattern as platformctl/lock/files.py's _PIN_RE (a unit test keeps them equal)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
HASH = re.compile(r"^\s+--hash=[a-z0-9]+:[0-9A-Za-z]+\s*\\?$")


class LockError(Exception):
    pass


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def blocks(text: str, label: str) -> list[tuple[str, str, list[str]]]:
    """(canonical name, version, [pin line, hash lines...]) per requirement."""
    out: list[tuple[str, str, list[str]]] = []
    continued = False  # the previous line of the current block ended with a backslash
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if HASH.match(line) and continued:
            out[-1][2].append(line.rstrip())
        elif not line.strip() or line.lstrip().startswith("#"):
            pass  # a comment ends no block: `# via` lines sit between a block's last hash and the next pin
        elif m := PIN.match(line):
            out.append((canonical(m.group(1)), m.group(3), [line.rstrip()]))
        else:
            raise LockError(f"{label}, line {n}: unsupported requirement line {line.strip()!r}: the image build "
                            "installs ==-pinned, hashed requirements only (run make lock)")
        if not line.lstrip().startswith("#"):
            continued = line.rstrip().endswith("\\")
    return out


def difference(base: str, lock: str, base_label: str = "the base lock", lock_label: str = "the lock") -> str:
    pinned: dict[str, set[str]] = {}
    for name, version, _ in blocks(base, base_label):
        pinned.setdefault(name, set()).add(version)  # one name may be pinned per environment marker
    kept: list[str] = []
    for name, version, lines in blocks(lock, lock_label):
        if name not in pinned:
            kept.extend([*lines[:-1], lines[-1].rstrip(" \\")])  # a block never continues into the next
        elif version not in pinned[name]:
            raise LockError(f"{name} is pinned at {version} in {lock_label} and at {' / '.join(sorted(pinned[name]))} "
                            f"in {base_label}: the locks are out of step, run make lock")
    return "\n".join(kept) + ("\n" if kept else "")


def _label(path: str) -> str:
    """/tmp/locks/team.txt -> 'the team lock'"""
    return f"the {os.path.splitext(os.path.basename(path))[0]} lock"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as a, open(argv[2]) as b:
        try:
            out = difference(a.read(), b.read(), _label(argv[1]), _label(argv[2]))
        except LockError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
