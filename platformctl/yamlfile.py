"""Reading the YAML files a user edits (platform.yaml, environments/*.yaml, flavors.yaml, pipelines):
bounded and encoding-checked, every failure a ConfigError naming the file and line.

The reader itself is ml_platform.yamlsafe (the in-image package reads flavors.yaml with it too, and
cannot import platformctl); this module turns its failures into the build side's one-line errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_platform.yamlsafe import MAX_BYTES, MAX_NODES, YamlFileError, load_file

from .errors import ConfigError, InputFileError

__all__ = ["MAX_BYTES", "MAX_NODES", "read_yaml"]


def read_yaml(path: Path, rel: str, *, mapping: bool = True, hint: str | None = None) -> tuple[Any, str]:
    """(data, text) of the file at path, shown to the user as rel. mapping=True: the top level must be a
    mapping (an empty file reads as {})."""
    try:
        data, text = load_file(path)
    except YamlFileError as exc:
        where = f"{rel}:{exc.line}" if exc.line else rel
        raise InputFileError(exc.message, hint or f"fix {rel}", where=where) from None
    if mapping:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"must be a mapping of settings, not a {type(data).__name__}", hint or f"fix {rel}",
                              where=rel)
        bad = next((k for k in data if not isinstance(k, str)), None)
        if bad is not None:
            raise ConfigError(f"key {bad!r} is not a string", hint or f"fix {rel}", where=rel)
    return data, text
