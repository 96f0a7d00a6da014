"""Runs inside the image build (the base image's python3, stdlib only):

    python3 lock_difference.py BASE_LOCK LOCK > OUT

writes the requirement blocks of LOCK (pin line, --hash lines) whose package BASE_LOCK does not pin,
so the team lock can be installed with --no-deps into its own venv, in parallel with the Airflow lock,
and copied over it. The team lock is compiled against the Airflow lock (`-c`), so a package both pin
has the same version in both; if not, the locks are inconsistent and this fails naming the package.
"""

from __future__ import annotations

import re
import sys

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """(canonical name, version, lines) per requirement; comment lines dropped."""
    out: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        m = PIN.match(line)
        if m:
            out.append((canonical(m.group(1)), m.group(3), [line]))
        elif line.startswith((" ", "\t")) and line.strip().startswith("--hash") and out:
            out[-1][2].append(line)
    return out


def difference(base: str, lock: str) -> str:
    pinned = {name: version for name, version, _ in blocks(base)}
    kept: list[str] = []
    for name, version, lines in blocks(lock):
        if name not in pinned:
            kept.extend([*lines[:-1], lines[-1].rstrip(" \\")])  # a block never continues into the next
        elif pinned[name] != version:
            raise SystemExit(f"{name} is pinned at {version} in the team lock and at {pinned[name]} in the "
                             "Airflow lock: the locks are out of step, run make lock")
    return "\n".join(kept) + ("\n" if kept else "")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as a, open(argv[2]) as b:
        sys.stdout.write(difference(a.read(), b.read()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
