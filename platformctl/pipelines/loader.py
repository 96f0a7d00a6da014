"""Safe YAML loading with bounds: any input, however malformed or hostile, is refused quickly.

- only YAML's safe types (no !!python tags), strict UTF-8;
- at most MAX_BYTES of input, MAX_DEPTH of nesting, MAX_ALIASES aliases;
- the *expanded* size of the document (aliases counted as the copies they stand for) at most
  MAX_EXPANDED nodes, so a billion-laughs document is refused before anything walks it.
It also keeps a map from field paths to line numbers for messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_ALIASES = 100
MAX_EXPANDED = 50_000


class LoadError(Exception):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise LoadError(f"more than {MAX_ALIASES} YAML aliases", self.peek_event().start_mark.line + 1)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise LoadError(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # cycles (recursive aliases) count once; the constructor refuses them anyway
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    if size > MAX_EXPANDED:
        raise LoadError(f"the document expands to more than {MAX_EXPANDED} values (aliases)", node.start_mark.line + 1)
    return size


@dataclass
class Loaded:
    data: Any
    lines: dict[tuple, int]

    def line(self, path: tuple) -> int | None:
        """Line of the deepest known prefix of path."""
        for i in range(len(path), -1, -1):
            if path[:i] in self.lines:
                return self.lines[path[:i]]
        return None


def _index_lines(node: yaml.Node, path: tuple, out: dict[tuple, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark.line)
            out.setdefault(path + (key,), k.start_mark.line + 1)
            _index_lines(v, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _index_lines(v, path + (i,), out)


def load_yaml(raw: bytes) -> Loaded:
    if len(raw) > MAX_BYTES:
        raise LoadError(f"file is {len(raw)} bytes; pipelines are limited to {MAX_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise LoadError("contains NUL bytes: not a text file")
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise LoadError("the file is empty")
        _expanded_size(node, {})
        data = loader.construct_document(node)
    except LoadError:
        raise
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise LoadError(f"unsupported YAML: {exc.problem}", line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LoadError(f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    except RecursionError:
        raise LoadError("recursive YAML structure") from None
    finally:
        loader.dispose()
    lines: dict[tuple, int] = {}
    _index_lines(node, (), lines)
    return Loaded(data, lines)
