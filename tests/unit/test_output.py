"""One output channel (issue 22 item 3): platformctl talks to its user through output.say only."""

from __future__ import annotations

import ast
from pathlib import Path

from platformctl import output

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_calls_print_directly():
    calls = []
    for path in (ROOT / "platformctl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == []


def test_say_goes_to_stdout_or_to_a_capture(capsys):
    output.say("a", 1, sep="=")
    with output.captured() as lines:
        output.say("two\nlines")
        output.warn("to stderr")  # a redirect takes stdout lines only
    output.say("after")
    out = capsys.readouterr()
    assert lines == ["two", "lines"]
    assert out.out == "a=1\nafter\n" and out.err == "to stderr\n"
