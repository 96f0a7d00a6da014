"""Reading the YAML files a user edits (platform.yaml, environments/*.yaml, flavors.yaml, pipelines):
bounded and encoding-checked, every failure a ConfigError naming the file and line.

The reader itself is ml_platform.yamlsafe (the in-image package reads flavors.yaml with it too, and
cannot import platformctl); this module turns its failures into the build side's one-line errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ml_platform.yamlsafe import MAX_BYTES, MAX_NODES, YamlFileError, compose, load_file

from .errors import ConfigError, InputFileError

__all__ = ["MAX_BYTES", "MAX_NODES", "line_index", "line_of", "read_yaml", "round_trip_yaml"]


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


def line_index(node: yaml.Node | None) -> dict[tuple, int]:
    """Key path -> 1-based line, for every mapping key and sequence item under node (() is the node itself).
    Keys are the scalars' text; an item of a sequence is its index."""
    out: dict[tuple, int] = {}
    if node is None:
        return out
    stack: list[tuple[tuple, yaml.Node]] = [((), node)]  # iterative: depth is bounded by yamlsafe anyway
    while stack:
        path, n = stack.pop()
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark.line)
                out.setdefault(path + (key,), k.start_mark.line + 1)
                stack.append((path + (key,), v))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                stack.append((path + (i,), v))
    return out


def deepest(lines: dict[tuple, int], path: tuple) -> int | None:
    """Line of the deepest prefix of path that the index knows."""
    path = tuple(p if isinstance(p, int) else str(p) for p in path)
    for i in range(len(path), -1, -1):
        if path[:i] in lines:
            return lines[path[:i]]
    return None


def line_of(text: str, path: tuple) -> int | None:
    """Line of path's deepest existing key in YAML text (the file's first line when none exists); None
    when the text is no YAML within the bounds. For messages: the error names file:line."""
    try:
        node, loader = compose(text)
    except YamlFileError:
        return None
    loader.dispose()
    return deepest(line_index(node), tuple(path)) if node is not None else None


def round_trip_yaml(indent: tuple[int, int, int] = (2, 4, 2), *, pure: bool = False):
    """ruamel's round-trip YAML, as this project edits the files users write (make migrate, the studio,
    make image-key): comments, order and quotes kept, no line re-wrapped, and an explicit `null` written back as
    `null` (ruamel writes nothing otherwise). indent: (mapping, sequence, offset)."""
    from ruamel.yaml import YAML

    y = YAML(typ="rt", pure=pure)
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long line
    y.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    y.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y
