"""What this machine resolved: `.platform/local.yaml`, git-ignored, one file per checkout.

`make build` (and `make test`, `make doctor`) find out what this host needs: which Docker CLI builds
with BuildKit, which base image the engine has or could make, the host's CA bundle for a
TLS-intercepting proxy, and the variables the user passed (`make build PYTHON=3.11`). They write it
here so that every later command, the test fixtures included, reads the same values without anything
exported by hand. Keys are platform.yaml's dotted keys (`image.base_image`), values as they would be
written there.

Precedence, highest first: `--set` > environment / make variables > this file > platform.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ml_platform.yamlsafe import YamlFileError, load_file

from .errors import MachineFileError

LOCAL_FILE = Path(".platform/local.yaml")
SOURCE = str(LOCAL_FILE)
HEADER = (
    "# What `make build` / `make doctor` resolved on this machine (git-ignored). Every command reads it.\n"
    "# Precedence: --set > environment/make variables > this file > platform.yaml.\n"
    "# Edit a value, or delete the file to start over.\n"
)


def path(root: Path) -> Path:
    return root / LOCAL_FILE


def load(root: Path) -> dict[str, Any]:
    """The remembered settings as {dotted key: value}; {} when there is no file yet."""
    p = path(root)
    if not p.exists():
        return {}
    fix = f"delete it to start over (rm {LOCAL_FILE}); make build writes it again"
    try:
        data, _ = load_file(p)  # bounded and UTF-8-checked, like every file a user edits
    except YamlFileError as exc:
        raise MachineFileError(f"the per-machine settings file is corrupt: {exc.message}", fix,
                               where=f"{SOURCE}:{exc.line}" if exc.line else SOURCE) from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise MachineFileError("the per-machine settings file is not a mapping of dotted keys", fix, where=SOURCE)
    return data


def save(root: Path, values: dict[str, Any]) -> bool:
    """Write the settings (sorted, atomically); False when the file already says exactly this."""
    if load(root) == values and path(root).exists():
        return False
    p = path(root)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(HEADER + (yaml.safe_dump(dict(sorted(values.items())), sort_keys=False) if values else ""))
    tmp.replace(p)
    return True


def copy_to(root: Path, other: Path) -> None:
    """Give a copy of the project (a test's or a benchmark's clone) what this machine resolved, if anything."""
    if path(root).exists():
        path(other).parent.mkdir(parents=True, exist_ok=True)
        path(other).write_bytes(path(root).read_bytes())


def remember(root: Path, updates: dict[str, Any]) -> dict[str, Any]:
    """Merge `updates` into the file; returns what changed ({key: new value})."""
    current = load(root)
    changed = {k: v for k, v in updates.items() if current.get(k) != v}
    if changed:
        save(root, {**current, **changed})
    return changed
