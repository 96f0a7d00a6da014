"""Safe YAML loading with bounds: any input, however malformed or hostile, is refused quickly.

The bounds and checks are ml_platform.yamlsafe's, the reader of every file a user edits:
- only YAML's safe types (no !!python tags), strict UTF-8;
- at most MAX_BYTES of input, MAX_DEPTH of nesting, MAX_ALIASES aliases;
- the *expanded* size of the document (aliases counted as the copies they stand for) at most
  MAX_EXPANDED nodes, so a billion-laughs document is refused before anything walks it.
It also keeps a map from field paths to line numbers for messages.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ml_platform import yamlsafe
from ml_platform.yamlsafe import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, YamlFileError

from ..yamlfile import deepest, line_index

MAX_EXPANDED = yamlsafe.MAX_NODES

__all__ = ["MAX_ALIASES", "MAX_BYTES", "MAX_DEPTH", "MAX_EXPANDED", "LoadError", "Loaded", "load_yaml", "load_text"]


class LoadError(Exception):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass
class Loaded:
    data: Any
    lines: dict[tuple, int]

    def line(self, path: tuple) -> int | None:
        """Line of the deepest known prefix of path."""
        return deepest(self.lines, path)


def load_yaml(raw: bytes) -> Loaded:
    try:
        text = yamlsafe.decode(raw)
        node, loader = yamlsafe.compose(text)
        if node is None:
            loader.dispose()
            raise LoadError("the file is empty")
        data = yamlsafe.construct(loader, node)
    except YamlFileError as exc:
        raise LoadError(exc.message.replace("files like it are", "pipelines are"), exc.line) from None
    return Loaded(data, line_index(node))


_RECENT: OrderedDict[str, Loaded | LoadError] = OrderedDict()
RECENT = 8


def load_text(text: str) -> Loaded:
    """load_yaml of a text, remembered for the last RECENT texts (the studio loads the same text to check
    an edit, to validate it and to draw it). The Loaded returned is shared: read it, never change it."""
    hit = _RECENT.get(text)
    if hit is None:
        try:
            hit = load_yaml(text.encode("utf-8"))
        except LoadError as exc:
            hit = exc
        _RECENT[text] = hit
        while len(_RECENT) > RECENT:
            _RECENT.popitem(last=False)
    else:
        _RECENT.move_to_end(text)
    if isinstance(hit, LoadError):
        raise LoadError(str(hit), hit.line)
    return hit
