"""The studio's fast edit path (splice: only the touched job's or section's lines) against the
whole-document path it stands in for: the same text for every operation on every shipped pipeline, a
4-space-indented file and a 200-job one; and it declines (None) whenever it cannot prove that."""

from __future__ import annotations

from pathlib import Path

import pytest

from platformctl.studio import document as D
from tests.unit.studio.test_document import SRC

ROOT = Path(__file__).resolve().parents[3]

BIG = "version: 1\ndag: {name: big}\ndefaults: {docker_image: 'img:1', resource_flavor: cpu-small}\njobs:\n" + "".join(
    f"  job_{i:03d}:\n    command: [python3, step.py, '{i}']   # step {i}\n"
    + (f"    depends_on: [job_{i - 1:03d}]\n" if i else "") for i in range(200))
FOUR = "".join(" " * 2 * (len(ln) - len(ln.lstrip(" "))) + ln.lstrip(" ") for ln in SRC.splitlines(keepends=True))
MAPPED = """\
version: 2
dag: {name: fan}
defaults: {docker_image: 'img:1', resource_flavor: cpu-small}
jobs:
  list_segments:
    command: [python3, segments.py]   # prints the list
  train:
    map: {over: {output: list_segments}, as: SEGMENT}
    command: [python3, train.py]
  report:
    command: [python3, report.py]
    depends_on: ['list_segments', train]
"""
COMMENTED = SRC.replace("  train:\n", "  # the second job\n  train:\n").replace("# trailing", "\n  # indented\n# trailing")


def texts() -> list[tuple[str, str]]:
    out = [("SRC", SRC), ("BIG", BIG), ("FOUR", FOUR), ("COMMENTED", COMMENTED), ("MAPPED", MAPPED),
           ("MIDDLE", SRC.replace("  train:\n", "# between, at column 0\n\n  train:\n"))]
    out += [(p.name, p.read_text()) for p in sorted((ROOT / "pipelines").glob("*.yaml"))]
    return out


def whole(text: str, op: dict) -> str:
    """The reference: the whole-document path (parse, operation, dump)."""
    tree, y = D.parse(text)
    D.OPERATIONS[op["op"]](tree, op)
    return D._dump(y, tree)


def ops_for(text: str) -> list[dict]:
    data = D.load_text(text).data
    names = list(data["jobs"])
    first, last = names[0], names[-1]
    ops = [{"op": "set", "path": ["jobs", last, "retries"], "value": 3},
           {"op": "set", "path": ["jobs", first, "env"], "value": {"A": "x: y", "B": "#not a comment"}},
           {"op": "set", "path": ["jobs", first, "command"], "value": ["python", "-c", "print('hi')"]},
           {"op": "unset", "path": ["jobs", last, "depends_on"]},
           {"op": "unset", "path": ["jobs", first, "command"]},
           {"op": "set", "path": ["dag", "tags"], "value": ["a", "b c"]},
           {"op": "set", "path": ["dag", "schedule"], "value": None},
           {"op": "delete_job", "name": first},
           {"op": "add_job", "name": "added", "fields": {"command": ["python", "x.py"], "env": {"K": "v"}}},
           {"op": "add_job", "name": "bare"},
           {"op": "delete_job", "name": last},
           {"op": "rename_job", "name": first, "new_name": "renamed_first"},
           {"op": "rename_job", "name": last, "new_name": "renamed-last.v2"}]
    if len(names) > 2:
        ops.append({"op": "connect", "source": names[0], "target": names[2]})
    deps = [(d, n) for n, j in data["jobs"].items() if isinstance(j, dict) for d in j.get("depends_on") or []]
    if deps:
        ops.append({"op": "disconnect", "source": deps[0][0], "target": deps[0][1]})
    return [o for o in ops if not (o["op"] == "unset" and o["path"][-1] == "depends_on")]


CASES = [(name, text, op) for name, text in texts() for op in ops_for(text)]


@pytest.mark.parametrize(("name", "text", "op"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_splice_gives_the_whole_document_paths_text(name, text, op):
    fast = D.splice(text, op)
    assert fast is not None, f"{name}: the fast path declined {op}"
    assert fast == whole(text, op)


def test_every_case_changes_the_text():
    # a fast path that returned its input would pass the comparison above for a no-op reference
    assert [(name, op) for name, text, op in CASES if D.splice(text, op) == text != whole(text, op)] == []
    assert sum(D.splice(text, op) != text for _, text, op in CASES) > len(CASES) * 0.9


@pytest.mark.parametrize("text", [
    "version: 1\ndag: {name: x}\njobs: {a: {command: [x]}}\n",            # jobs in flow style
    "version: 1\ndag: {name: x}\n? jobs\n: a:\n    command: [x]\n",         # complex key
    "---\nversion: 1\ndag: {name: x}\njobs:\n  a:\n    command: [x]\n",     # document marker
    "version: 1\ndag: {name: x}\njobs:\n  a: &A\n    command: [x]\n  b: *A\n",  # alias to another job
])
def test_splice_declines_what_it_cannot_prove(text):
    assert D.splice(text, {"op": "set", "path": ["jobs", "b" if "*A" in text else "a", "retries"], "value": 1}) is None


def test_unknown_job_is_left_to_the_whole_path_and_its_error():
    assert D.splice(SRC, {"op": "set", "path": ["jobs", "nope", "retries"], "value": 1}) is None
    d = D.Document("pipelines/x.yaml", SRC, D.sha256(SRC))
    with pytest.raises(D.EditError, match="no job 'nope'"):
        d.apply({"op": "set", "path": ["jobs", "nope", "retries"], "value": 1})
    assert d.text == SRC


def test_rename_renames_every_reference_and_only_those_lines():
    fast = D.splice(MAPPED, {"op": "rename_job", "name": "list_segments", "new_name": "segments"})
    assert fast is not None
    changed = [ln for ln in fast.splitlines() if ln not in MAPPED.splitlines()]
    assert changed == ["  segments:", "    map: {over: {output: segments}, as: SEGMENT}",
                       "    depends_on: ['segments', train]"]
    assert "list_segments" not in fast
    assert fast == whole(MAPPED, {"op": "rename_job", "name": "list_segments", "new_name": "segments"})


@pytest.mark.parametrize("new_name", ["train", "list_segments", "bad name", None])
def test_rename_to_a_taken_bad_or_same_name_is_left_to_the_whole_path(new_name):
    assert D.splice(MAPPED, {"op": "rename_job", "name": "list_segments", "new_name": new_name}) is None
