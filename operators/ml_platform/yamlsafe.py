"""One bounded, encoding-checked YAML reader for every file a user edits.

Used in the image (flavors.yaml) and, through platformctl/yamlfile.py, by the build side (platform.yaml,
environments/*.yaml, pipelines/*.yaml). Any input, however malformed or hostile, is refused quickly
with a one-line message and, where known, a line number:

- at most MAX_BYTES are ever read (the file is not read at all when it is larger, and only regular
  files are read: a FIFO or a device would hang or never end);
- strict UTF-8 (a byte order mark is allowed), no NUL bytes;
- only YAML's safe types (no !!python tags);
- at most MAX_DEPTH levels of nesting and MAX_ALIASES aliases;
- at most MAX_NODES values once aliases are expanded (a billion-laughs document is refused before
  anything walks it); a plain large file is told it is large, not that it has aliases;
- constructor failures on scalars (a 10,000-digit integer, the date 2025-13-45) are messages, not
  tracebacks.

PyYAML only: no Airflow, no platformctl.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_ALIASES = 100
MAX_NODES = 50_000


class YamlFileError(ValueError):
    """The file cannot be read as bounded, safe YAML. `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise YamlFileError(f"more than {MAX_ALIASES} YAML aliases", self.peek_event().start_mark.line + 1)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlFileError(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(node: yaml.Node, memo: dict[int, int], aliases: int, limit: int) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # cycles (recursive aliases) count once; the constructor refuses them anyway
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo, aliases, limit) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, aliases, limit) + _expanded_size(v, memo, aliases, limit)
                       for k, v in node.value)
    else:
        size = 1
    memo[key] = size
    if size > limit:
        if aliases:
            raise YamlFileError(f"the document expands to more than {limit} values through its {aliases} "
                                "alias(es) (use fewer aliases)", node.start_mark.line + 1)
        raise YamlFileError(f"has more than {limit} values, the limit for one file (split it into smaller files)")
    return size


def read_bounded(path: str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most max_bytes; YamlFileError otherwise (nothing larger is read)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise YamlFileError("does not exist") from None
    except OSError as exc:
        raise YamlFileError(f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise YamlFileError("is not a regular file")
    if st.st_size > max_bytes:
        raise YamlFileError(f"is {st.st_size} bytes; files like it are limited to {max_bytes // 1024} KiB")
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise YamlFileError(f"cannot be read ({exc.strerror})") from None
    if len(raw) > max_bytes:  # grew since the stat
        raise YamlFileError(f"is more than {max_bytes} bytes; files like it are limited to {max_bytes // 1024} KiB")
    return raw


def decode(raw: bytes, max_bytes: int = MAX_BYTES) -> str:
    """Strict UTF-8 text without NUL bytes; the message names the line of the first bad byte."""
    if len(raw) > max_bytes:
        raise YamlFileError(f"is {len(raw)} bytes; files like it are limited to {max_bytes // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlFileError(f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}; "
                            "save it as UTF-8)", line) from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise YamlFileError("contains NUL bytes: not a text file", text.count("\n", 0, text.index("\x00")) + 1)
    return text


_CLoader = getattr(yaml, "CSafeLoader", None)  # libyaml: the same documents, ~20x faster than pure Python


def _check_events(loader) -> int:
    """Walk the parser's events (no nodes are built): refuse depth and alias counts beyond the bounds
    before anything is composed. Returns the number of aliases."""
    depth = aliases = 0
    starts = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    while True:
        event = loader.get_event()
        if event is None or isinstance(event, yaml.StreamEndEvent):
            return aliases
        if isinstance(event, starts):
            depth += 1
            if depth > MAX_DEPTH - 1:  # the same count as _BoundedLoader: a scalar inside counts one more
                raise YamlFileError(f"nested deeper than {MAX_DEPTH} levels", event.start_mark.line + 1)
        elif isinstance(event, ends):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YamlFileError(f"more than {MAX_ALIASES} YAML aliases", event.start_mark.line + 1)


def compose(text: str, max_nodes: int = MAX_NODES) -> tuple[yaml.Node | None, yaml.SafeLoader]:
    """The document's node tree within the bounds (None for an empty document), and its loader."""
    loader = None
    try:
        if _CLoader is not None:
            pre = _CLoader(text)
            try:
                aliases = _check_events(pre)
            finally:
                pre.dispose()
            loader = _CLoader(text)
            node = loader.get_single_node()
        else:
            loader = _BoundedLoader(text)
            node = loader.get_single_node()
            aliases = loader.aliases
        if node is not None:
            _expanded_size(node, {}, aliases, max_nodes)
        return node, loader
    except YamlFileError:
        if loader is not None:
            loader.dispose()
        raise
    except yaml.YAMLError as exc:
        if loader is not None:
            loader.dispose()
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlFileError(f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None


def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    try:
        return loader.construct_document(node)
    except yaml.constructor.ConstructorError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise YamlFileError(f"unsupported YAML: {exc.problem}", line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise YamlFileError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                            mark.line + 1 if mark else None) from None
    except (ValueError, OverflowError) as exc:  # int('9'*5000), date 2025-13-45, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise YamlFileError(f"a value cannot be read: {first}") from None
    except RecursionError:
        raise YamlFileError("recursive YAML structure") from None
    finally:
        loader.dispose()


def loads(raw: bytes | str, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> tuple[Any, str]:
    """(data, text) of one YAML document given as bytes (or already-decoded text). Empty -> None."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    text = decode(raw, max_bytes)
    node, loader = compose(text, max_nodes)
    if node is None:
        loader.dispose()
        return None, text
    return construct(loader, node), text


def load_file(path: str | Path, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES) -> tuple[Any, str]:
    """(data, text) of a YAML file within the bounds; YamlFileError (message, line) otherwise."""
    return loads(read_bounded(path, max_bytes), max_bytes=max_bytes, max_nodes=max_nodes)
