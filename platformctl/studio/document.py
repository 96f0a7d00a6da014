"""A pipeline file as a round-trip YAML document, changed only by edit operations.

The browser never sends YAML it generated: it sends operations (add_job, connect, set, ...) and this
module turns each into the smallest change of the ruamel.yaml round-trip tree, so comments, key order,
quoting and every untouched line survive and `git diff` of a studio edit reads like a hand edit.
The one exception is the text pane, whose text the user typed (operation `set_text`).

Conventions for what the studio adds (they match the hand-written files in pipelines/): lists and
mappings of scalars in flow style (`command: [python3, etl.py]`, `env: {K: v}`), `null` spelled out,
top-level sections in the order version, dag, defaults, jobs, and `depends_on` kept last in a job.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import ScalarString

from ..pipelines.loader import LoadError, load_text, load_yaml
from ..pipelines.model import ID_RE
from ..yamlfile import round_trip_yaml

TOP_ORDER = ("version", "dag", "defaults", "jobs")
HISTORY = 200
NEW_PIPELINE = ("# yaml-language-server: $schema=../schemas/pipeline.schema.json\n"
                "version: 1\ndag:\n  name: {name}\njobs: {{}}\n")
# (mapping indent, sequence indent, sequence dash offset) tried in this order to reproduce a file exactly.
_INDENTS = ((2, 2, 0), (2, 4, 2), (4, 4, 0), (4, 6, 4), (4, 4, 2), (2, 4, 0), (3, 3, 0))
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EditError(Exception):
    """An operation that cannot apply (unknown job, name taken, unparseable text...): nothing changed."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _dump(y: YAML, tree) -> str:
    buf = io.StringIO()
    y.dump(tree, buf)
    return buf.getvalue()


def parse(text: str) -> tuple[Any, YAML]:
    """The round-trip tree and the YAML settings that reproduce text byte for byte (when any does).

    The project's bounded loader reads the text first, so a hostile document (too big, too deep,
    alias bombs) is refused before ruamel.yaml sees it."""
    try:
        load_yaml(text.encode("utf-8"))
    except LoadError as exc:
        raise EditError(f"line {exc.line}: {exc}" if exc.line else str(exc)) from None
    try:
        found = _reproducing(text)
        if found is not None:
            return found
        y = round_trip_yaml(_INDENTS[0], pure=True)
        return y.load(text), y
    except YAMLError as exc:
        raise EditError(f"not valid YAML: {str(exc).splitlines()[0]}") from None


def _reproducing(text: str, indents=_INDENTS) -> tuple[Any, YAML] | None:
    """The tree and the first of these YAML settings that dump text back byte for byte, or None.
    YAMLError (text is not YAML) goes to the caller."""
    for indent in indents:
        y = round_trip_yaml(indent, pure=True)
        tree = y.load(text)
        if _dump(y, tree) == text:
            return tree, y
    return None


def _flow(value):
    """Plain data -> ruamel nodes; lists and mappings of scalars in flow style."""
    if isinstance(value, dict):
        m = CommentedMap()
        for k, v in value.items():
            m[str(k)] = _flow(v)
        if all(not isinstance(v, (dict, list)) for v in value.values()):
            m.fa.set_flow_style()
        return m
    if isinstance(value, list):
        s = CommentedSeq(_flow(v) for v in value)
        if all(not isinstance(v, (dict, list)) for v in value):
            s.fa.set_flow_style()
        return s
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise EditError(f"a {type(value).__name__} is not YAML data")


def _insert(mapping: CommentedMap, key: str, value, *, top: bool = False) -> None:
    """Set key in mapping; a new key goes in TOP_ORDER at the top level, before depends_on in a job."""
    if key in mapping:
        mapping[key] = value
        return
    if isinstance(mapping, CommentedMap) and mapping.fa.flow_style() and not len(mapping):
        mapping.fa.set_block_style()  # `jobs: {}`, `load: {}` become block mappings when their first key arrives
    keys = list(mapping)
    pos = len(keys)
    if top and key in TOP_ORDER:
        after = TOP_ORDER[TOP_ORDER.index(key) + 1:]
        pos = next((i for i, k in enumerate(keys) if k in after), len(keys))
    elif "depends_on" in keys and key != "depends_on":
        pos = keys.index("depends_on")
    if pos == len(keys):
        mapping[key] = value
    else:
        mapping.insert(pos, key, value)


def _in_style_of(old, value):
    """value as it replaces old: a string keeps the hand-written quoting style of the string it replaces."""
    return type(old)(value) if isinstance(old, ScalarString) and isinstance(value, str) else value


def _check_name(name) -> str:
    if not isinstance(name, str) or not ID_RE.match(name):
        raise EditError(f"{name!r} is not a valid job name (letters, digits, _ . -, at most 250)")
    return name


@dataclass
class Document:
    """One pipeline file being edited: its text now, the text on disk when it was loaded, undo/redo."""

    file: str
    text: str
    base_sha: str | None  # sha256 of the file on disk when loaded; None for a pipeline not yet saved
    undo_stack: list[str] = field(default_factory=list)
    redo_stack: list[str] = field(default_factory=list)

    @property
    def dirty(self) -> bool:
        return self.base_sha is None or sha256(self.text) != self.base_sha

    # -- history ------------------------------------------------------------------------------------
    def _commit(self, text: str) -> None:
        if text == self.text:
            return
        self.undo_stack.append(self.text)
        del self.undo_stack[:-HISTORY]
        self.redo_stack.clear()
        self.text = text

    def undo(self) -> None:
        if not self.undo_stack:
            raise EditError("nothing to undo")
        self.redo_stack.append(self.text)
        self.text = self.undo_stack.pop()

    def redo(self) -> None:
        if not self.redo_stack:
            raise EditError("nothing to redo")
        self.undo_stack.append(self.text)
        self.text = self.redo_stack.pop()

    # -- operations ---------------------------------------------------------------------------------
    def apply(self, op: dict) -> None:
        """Apply one operation; on any error the document is unchanged."""
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise EditError("an operation is an object with an 'op' name")
        kind = op["op"]
        if kind == "set_text":
            text = op.get("text")
            if not isinstance(text, str):
                raise EditError("set_text needs a text")
            self._commit(text)
            return
        func = OPERATIONS.get(kind)
        if func is None:
            raise EditError(f"unknown operation '{kind}' (known: set_text, {', '.join(OPERATIONS)})")
        fast = splice(self.text, op)
        if fast is not None:
            self._commit(fast)
            return
        tree, y = parse(self.text)
        if not isinstance(tree, CommentedMap):
            raise EditError("the document is not a mapping: fix it in the text pane first")
        func(tree, op)
        self._commit(_dump(y, tree))


def _jobs(tree: CommentedMap) -> CommentedMap:
    jobs = tree.get("jobs")
    if jobs is None:
        jobs = CommentedMap()
        _insert(tree, "jobs", jobs, top=True)
    if not isinstance(jobs, CommentedMap):
        raise EditError("jobs is not a mapping: fix it in the text pane first")
    return jobs


def _job(tree: CommentedMap, name) -> CommentedMap:
    jobs = _jobs(tree)
    if name not in jobs:
        raise EditError(f"there is no job '{name}'")
    job = jobs[name]
    if job is None:
        job = jobs[name] = CommentedMap()
    if not isinstance(job, CommentedMap):
        raise EditError(f"jobs.{name} is not a mapping: fix it in the text pane first")
    return job


def op_add_job(tree, op) -> None:
    name = _check_name(op.get("name"))
    jobs = _jobs(tree)
    if name in jobs:
        raise EditError(f"there is already a job '{name}'")
    fields = op.get("fields") or {}
    if not isinstance(fields, dict):
        raise EditError("fields must be a mapping")
    job = CommentedMap()
    for k, v in fields.items():
        job[k] = _flow(v)
    _insert(jobs, name, job)


def op_delete_job(tree, op) -> None:
    name = op.get("name")
    jobs = _jobs(tree)
    _job(tree, name)
    del jobs[name]
    for other in jobs:
        _drop_dep(jobs[other], name)


def _drop_dep(job, dep) -> None:
    if not isinstance(job, CommentedMap):
        return
    deps = job.get("depends_on")
    if isinstance(deps, list) and dep in deps:
        while dep in deps:
            deps.remove(dep)
        if not deps:
            del job["depends_on"]


def op_rename_job(tree, op) -> None:
    old, new = op.get("name"), _check_name(op.get("new_name"))
    jobs = _jobs(tree)
    job = _job(tree, old)
    if new == old:
        return
    if new in jobs:
        raise EditError(f"there is already a job '{new}'")
    pos = list(jobs).index(old)
    comment = jobs.ca.items.pop(old, None)
    del jobs[old]
    jobs.insert(pos, new, job)
    if comment is not None:
        jobs.ca.items[new] = comment
    for other in jobs.values():
        _rename_refs(other, old, new)


def _mapped_over(job) -> dict | None:
    """The job's `map.over` when it is a mapping ({output: <job>}), else None."""
    m = job.get("map")
    over = m.get("over") if isinstance(m, dict) else None
    return over if isinstance(over, dict) else None


def _refers_to(job, name: str) -> bool:
    """The job (plain data) names this job: in depends_on, or as the output it is mapped over."""
    if not isinstance(job, dict):
        return False
    deps, over = job.get("depends_on"), _mapped_over(job)
    return (isinstance(deps, list) and name in deps) or (over is not None and over.get("output") == name)


def _rename_refs(job, old: str, new: str) -> None:
    """old -> new wherever the job names another job: depends_on, map.over.output (a quoted value stays
    quoted)."""
    if not isinstance(job, CommentedMap):
        return
    deps = job.get("depends_on")
    if isinstance(deps, list):
        for i, d in enumerate(deps):
            if d == old:
                deps[i] = _in_style_of(d, new)
    over = _mapped_over(job)
    if over is not None and over.get("output") == old:
        over["output"] = _in_style_of(over["output"], new)


def op_connect(tree, op) -> None:
    """source -> target: target depends_on source."""
    _job(tree, op.get("source"))
    _add_dep(tree, op.get("source"), op.get("target"))


def _add_dep(tree, source, target) -> None:
    job = _job(tree, target)
    deps = job.get("depends_on")
    if deps is None:
        _insert(job, "depends_on", _flow([source]))
    elif not isinstance(deps, list):
        raise EditError(f"jobs.{target}.depends_on is not a list: fix it in the text pane first")
    elif source not in deps:
        deps.append(source)


def op_disconnect(tree, op) -> None:
    source, target = op.get("source"), op.get("target")
    job = _job(tree, target)
    if source not in (job.get("depends_on") or []):
        raise EditError(f"{target} does not depend on {source}")
    _drop_dep(job, source)


def _container(tree, path: list) -> CommentedMap:
    if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
        raise EditError("path must be a non-empty list of keys, e.g. [jobs, train, resource_flavor]")
    if path[0] == "jobs":
        if len(path) != 3:
            raise EditError("a job field's path is [jobs, <job>, <field>]")
        return _job(tree, path[1])
    if path[0] in ("dag", "defaults"):
        if len(path) != 2:
            raise EditError(f"a {path[0]} field's path is [{path[0]}, <field>]")
        section = tree.get(path[0])
        if section is None:
            section = CommentedMap()
            _insert(tree, path[0], section, top=True)
        if not isinstance(section, CommentedMap):
            raise EditError(f"{path[0]} is not a mapping: fix it in the text pane first")
        return section
    if len(path) == 1:
        return tree
    raise EditError(f"'{path[0]}' is not a section of a pipeline (dag, defaults, jobs)")


def op_set(tree, op) -> None:
    """Set a field to a value (null included); `unset` removes the key."""
    path = op.get("path")
    target = _container(tree, path)
    key = path[-1]
    if not _FIELD.match(key):
        raise EditError(f"'{key}' is not a field name")
    if key == "depends_on" and path[0] == "jobs":
        raise EditError("depends_on is changed by connect and disconnect")
    if "value" not in op:
        raise EditError("set needs a value (use unset to remove a field)")
    value = _in_style_of(target.get(key), op["value"])
    _insert(target, key, _flow(value), top=len(path) == 1)


def op_unset(tree, op) -> None:
    path = op.get("path")
    target = _container(tree, path)
    if path[-1] == "depends_on" and path[0] == "jobs":
        raise EditError("depends_on is changed by connect and disconnect")
    target.pop(path[-1], None)


OPERATIONS = {"add_job": op_add_job, "delete_job": op_delete_job, "rename_job": op_rename_job,
              "connect": op_connect, "disconnect": op_disconnect, "set": op_set, "unset": op_unset}


# -- the fast path: edit only the lines of the section a change touches ---------------------------------
# Re-parsing and re-dumping a whole round-trip document costs about 4 ms per job in pure-Python
# ruamel.yaml (0.8 s for 200 jobs), far over the studio's 100 ms for a validation round trip. Most edits
# touch one job (a field, an edge, its deletion, a job added after the last) or one section (dag,
# defaults): splice() applies the same operation function to a small document made of just that part's
# lines ("jobs:" + the job's block), dumps it and puts its lines back. It is taken only when it is provably the same change: the file's top level and
# its jobs are plain block keys it can find line by line, the small document reproduces its lines
# exactly, and the whole new text loads to the old data with just the touched part replaced (else None:
# the caller takes the whole-document path, whose result and errors are the reference).

_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)[ \t]*:(?:[ \t]+#.*)?[ \t]*$|^([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]")
_CHILD_KEY = re.compile(r"^( +)([A-Za-z0-9_.-]+|'[^'\n]*'|\"[^\"\\\n]*\")[ \t]*:(?:[ \t]|$)")


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _top_sections(lines: list[str]) -> dict[str, tuple[int, int]] | None:
    starts: list[tuple[str, int]] = []
    for i, ln in enumerate(lines):
        if not _content(ln) or ln[0] in " \t":
            continue
        m = _TOP_KEY.match(ln)
        if m is None:  # a document marker, a flow or quoted top-level key, a directive...
            return None
        starts.append((m.group(1) or m.group(2), i))
    out: dict[str, tuple[int, int]] = {}
    for k, (name, i) in enumerate(starts):
        if name in out:
            return None
        out[name] = (i, starts[k + 1][1] if k + 1 < len(starts) else len(lines))
    return out


def _job_blocks(lines: list[str], start: int, end: int) -> tuple[dict[str, tuple[int, int]], int] | None:
    """The jobs section's job name -> (first line, end line), and the jobs' indent."""
    if lines[start].split("#", 1)[0].strip() != "jobs:":
        return None  # `jobs: {}` or a flow mapping: not line-addressable
    indent, starts = None, []
    for i in range(start + 1, end):
        ln = lines[i]
        if not _content(ln):
            continue
        width = len(ln) - len(ln.lstrip(" "))
        if indent is None:
            indent = width
        if width < indent or ln[:width].count("\t"):
            return None
        if width == indent:
            m = _CHILD_KEY.match(ln)
            if m is None:
                return None
            key = m.group(2)
            starts.append((key[1:-1] if key[0] in "'\"" else key, i))
    blocks: dict[str, tuple[int, int]] = {}
    for k, (name, i) in enumerate(starts):
        if name in blocks:
            return None
        blocks[name] = (i, starts[k + 1][1] if k + 1 < len(starts) else end)
    return blocks, indent or 2


def _edit_part(part: str, indent: int, func) -> tuple[str, Any] | None:
    """Apply func to the small document part; its new text and plain data, or None."""
    tail = "" if part.endswith("\n") else "\n"
    text = part + tail
    try:
        found = _reproducing(text, [i for i in _INDENTS if i[0] == indent])
    except YAMLError:
        return None
    if found is None:
        return None
    tree, y = found
    func(tree)
    new = _dump(y, tree)
    try:
        data = load_yaml(new.encode("utf-8")).data
    except LoadError:
        return None
    return (new[: -len(tail)] if tail and new.endswith(tail) else new), data


def splice(text: str, op: dict) -> str | None:
    """The operation made on the lines it touches only (see above), or None for the whole-document path."""
    kind, path = op.get("op"), op.get("path")
    try:
        old = load_text(text).data
    except LoadError:
        return None
    if not isinstance(old, dict) or not isinstance(old.get("jobs"), dict):
        return None
    lines = text.splitlines(keepends=True)
    sections = _top_sections(lines)
    if sections is None or "jobs" not in sections:
        return None
    found = _job_blocks(lines, *sections["jobs"])
    if found is None:
        return None
    blocks, indent = found
    if list(blocks) != [str(k) for k in old["jobs"]]:
        return None
    jobs = old["jobs"]
    edits: dict[str, Any] = {}  # job name -> func(tree), or None to delete the job
    section = None
    renamed: tuple[str, str] | None = None  # rename_job: (old name, new name)
    if kind in ("set", "unset") and isinstance(path, list) and len(path) == 3 and path[0] == "jobs":
        if path[1] not in blocks or not isinstance(jobs[path[1]], dict):
            return None
        edits[path[1]] = lambda t, f=OPERATIONS[kind]: f(t, op)
    elif kind in ("set", "unset") and isinstance(path, list) and len(path) == 2 and path[0] in ("dag", "defaults"):
        if path[0] not in sections or not isinstance(old.get(path[0]), dict) or not old[path[0]]:
            return None
        section = path[0]
    elif kind == "connect":
        source, target = op.get("source"), op.get("target")
        if source not in blocks or target not in blocks or not isinstance(jobs[target], dict):
            return None
        edits[target] = lambda t: _add_dep(t, source, target)
    elif kind == "disconnect":
        if op.get("target") not in blocks or not isinstance(jobs[op["target"]], dict):
            return None
        edits[op["target"]] = lambda t: op_disconnect(t, op)
    elif kind == "delete_job":
        name = op.get("name")
        if name not in blocks:
            return None
        edits[name] = None
        for other, job in jobs.items():
            if other != name and isinstance(job, dict) and name in (job.get("depends_on") or []):
                edits[other] = lambda t, o=other, gone=name: _drop_dep(_job(t, o), gone)
    elif kind == "rename_job":
        # the renamed job's block and the blocks of the jobs that name it; the rest is untouched
        name, new_name = op.get("name"), op.get("new_name")
        if (name not in blocks or not isinstance(new_name, str) or not ID_RE.match(new_name)
                or new_name in blocks or new_name == name):
            return None
        edits[name] = lambda t: op_rename_job(t, op)
        for other, job in jobs.items():
            if other != name and _refers_to(job, name):
                edits[other] = lambda t, o=other, a=name, b=new_name: _rename_refs(_job(t, o), a, b)
        renamed = (name, new_name)
    elif kind == "add_job":
        # appended after the last job, as the whole-document path does: the edit of the last job's lines
        if not blocks or op.get("name") in blocks or not isinstance(op.get("name"), str):
            return None
        edits[list(blocks)[-1]] = lambda t: op_add_job(t, op)
    else:
        return None

    try:
        expected = dict(old)
        if section is not None:
            s0, s1 = sections[section]
            done = _edit_part("".join(lines[s0:s1]), indent, lambda t: OPERATIONS[kind](t, op))
            if done is None:
                return None
            lines[s0:s1] = [done[0]]
            expected[section] = done[1][section]
        else:
            new_jobs = dict(jobs)
            for name, (b0, b1) in sorted(((n, blocks[n]) for n in edits), key=lambda x: -x[1][0]):
                if edits[name] is None:
                    # as ruamel does: comments after the last job stay (the end of the section's);
                    # comments after any other job go with it (ruamel attaches them to its last value)
                    keep = b1
                    while b1 == sections["jobs"][1] and keep > b0 + 1 and not _content(lines[keep - 1]):
                        keep -= 1
                    del lines[b0:keep]
                    del new_jobs[name]
                    continue
                done = _edit_part("jobs:\n" + "".join(lines[b0:b1]), indent, edits[name])
                if done is None or not done[0].startswith("jobs:\n"):
                    return None
                lines[b0:b1] = [done[0][len("jobs:\n"):]]
                part = done[1].get("jobs") if isinstance(done[1], dict) else None
                key = renamed[1] if renamed and name == renamed[0] else name
                if not isinstance(part, dict) or key not in part:
                    return None
                new_jobs.update(part)  # the job itself, and a job added after it (add_job)
            if renamed:  # the new name in the old one's place
                order = [renamed[1] if k == renamed[0] else k for k in jobs]
                new_jobs = {k: new_jobs[k] for k in order}
            expected["jobs"] = new_jobs
    except EditError:
        return None  # the whole-document path gives the error
    new_text = "".join(lines)
    try:
        got = load_text(new_text).data
    except LoadError:
        return None
    if got != expected or list(got) != list(expected) or list(got["jobs"]) != list(expected["jobs"]):
        return None
    return new_text
