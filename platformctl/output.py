"""The one channel through which the build-and-ship side talks to its user.

Progress and results go to stdout, warnings and the final error line to stderr, each line flushed at
once (CI logs and `make` show it as it happens). Library code calls say() (print's signature), never
print(); a caller that wants the lines elsewhere (a test, a future --quiet or JSON mode) redirects
them with `captured()`. Functions that take an `echo=` argument default to say.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_sink: Callable[[str], None] | None = None


def say(*parts: Any, sep: str = " ", end: str = "\n", file: TextIO | None = None) -> None:
    """print(), through the channel: always flushed; to the redirect when one is active (stdout lines)."""
    text = sep.join(str(p) for p in parts) + end
    if _sink is not None and file is None:
        _sink(text)
        return
    stream = file if file is not None else sys.stdout
    stream.write(text)
    stream.flush()


def warn(*parts: Any, sep: str = " ") -> None:
    say(*parts, sep=sep, file=sys.stderr)


@contextmanager
def captured() -> Iterator[list[str]]:
    """Collect what say() would print to stdout, as a list of lines, while the block runs."""
    global _sink
    lines: list[str] = []
    previous, _sink = _sink, lambda text: lines.extend(text.splitlines())
    try:
        yield lines
    finally:
        _sink = previous
