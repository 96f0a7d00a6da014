"""Each studio edit operation -> the exact YAML text: comments survive, diffs stay minimal, hostile
strings stay data; every file in pipelines/ round-trips byte for byte when nothing changes."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from platformctl.pipelines.validate import check
from platformctl.studio.document import NEW_PIPELINE, Document, EditError, _dump, parse, sha256

ROOT = Path(__file__).resolve().parents[3]
FLAVORS = ["cpu-small", "cpu-medium", "cpu-large", "mem-large", "gpu-a100"]

SRC = """\
# top comment
version: 1
dag:
  name: demo   # the DAG id
  schedule: '0 3 * * *'
  tags: [a, "b"]
defaults:
  docker_image: img:1.0
  resource_flavor: cpu-small
jobs:
  # the first job
  extract:
    command: [python, x.py]   # keep me
  train:
    resource_flavor: cpu-large
    command:
      - python
      - train.py
    depends_on: [extract]
# trailing comment
"""


def doc(text: str = SRC) -> Document:
    return Document("pipelines/demo.yaml", text, sha256(text))


def changed_lines(a: str, b: str) -> list[str]:
    return [line for line in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_every_pipeline_round_trips_byte_identical(path):
    text = path.read_text()
    tree, y = parse(text)
    assert _dump(y, tree) == text


def test_untouched_set_is_byte_identical_and_no_undo_step():
    d = doc()
    d.apply({"op": "set", "path": ["jobs", "train", "resource_flavor"], "value": "cpu-large"})
    assert d.text == SRC and not d.undo_stack and not d.dirty


def test_set_field_changes_one_line_and_keeps_comments():
    d = doc()
    d.apply({"op": "set", "path": ["jobs", "train", "resource_flavor"], "value": "gpu-a100"})
    assert changed_lines(SRC, d.text) == ["-    resource_flavor: cpu-large", "+    resource_flavor: gpu-a100"]
    assert "# keep me" in d.text and "# the first job" in d.text and "# trailing comment" in d.text


def test_set_keeps_the_quoting_of_the_value_it_replaces():
    d = doc()
    d.apply({"op": "set", "path": ["dag", "schedule"], "value": "0 4 * * *"})
    assert changed_lines(SRC, d.text) == ["-  schedule: '0 3 * * *'", "+  schedule: '0 4 * * *'"]


def test_new_field_goes_before_depends_on_in_flow_style():
    d = doc()
    d.apply({"op": "set", "path": ["jobs", "train", "env"], "value": {"A": "1"}})
    assert changed_lines(SRC, d.text) == ["+    env: {A: '1'}"]
    assert d.text.index("env: {A: '1'}") < d.text.index("depends_on: [extract]")


def test_set_null_is_spelled_out_and_unset_removes_the_line():
    d = doc()
    d.apply({"op": "set", "path": ["dag", "schedule"], "value": None})
    assert "  schedule: null\n" in d.text
    d.apply({"op": "unset", "path": ["dag", "tags"]})
    assert changed_lines(SRC, d.text) == ["-  schedule: '0 3 * * *'", "-  tags: [a, \"b\"]", "+  schedule: null"]


def test_add_job_appends_a_block_with_flow_lists():
    d = doc()
    d.apply({"op": "add_job", "name": "load", "fields": {"command": ["python", "load.py"]}})
    assert changed_lines(SRC, d.text) == ["+  load:", "+    command: [python, load.py]"]
    assert d.text.endswith("    depends_on: [extract]\n  load:\n    command: [python, load.py]\n# trailing comment\n")
    d.apply({"op": "add_job", "name": "empty"})
    assert d.text.endswith("  empty: {}\n# trailing comment\n")
    d.apply({"op": "set", "path": ["jobs", "empty", "retries"], "value": 2})
    assert d.text.endswith("  empty:\n    retries: 2\n# trailing comment\n")


def test_connect_and_disconnect():
    d = doc()
    d.apply({"op": "add_job", "name": "load"})
    d.apply({"op": "connect", "source": "train", "target": "load"})
    assert "  load:\n    depends_on: [train]\n" in d.text
    d.apply({"op": "connect", "source": "extract", "target": "load"})
    assert "    depends_on: [train, extract]\n" in d.text
    d.apply({"op": "connect", "source": "extract", "target": "load"})  # already there: no change
    assert d.text.count("extract]") == 2
    d.apply({"op": "disconnect", "source": "train", "target": "load"})
    d.apply({"op": "disconnect", "source": "extract", "target": "load"})
    assert d.text.endswith("    depends_on: [extract]\n  load: {}\n# trailing comment\n")
    with pytest.raises(EditError, match="does not depend"):
        d.apply({"op": "disconnect", "source": "extract", "target": "load"})


def test_rename_job_keeps_position_comments_and_references():
    d = doc()
    d.apply({"op": "rename_job", "name": "extract", "new_name": "fetch"})
    assert changed_lines(SRC, d.text) == ["-  extract:", "+  fetch:", "-    depends_on: [extract]",
                                          "+    depends_on: [fetch]"]
    assert "# the first job\n  fetch:" in d.text
    with pytest.raises(EditError, match="already a job"):
        d.apply({"op": "rename_job", "name": "fetch", "new_name": "train"})


def test_delete_job_removes_its_edges():
    d = doc()
    d.apply({"op": "delete_job", "name": "extract"})
    assert "extract" not in d.text.replace("# the first job", "")
    assert "depends_on" not in d.text
    assert "# top comment" in d.text and "# trailing comment" in d.text


def test_undo_redo_restore_exact_texts():
    d = doc()
    d.apply({"op": "add_job", "name": "a"})
    after_a = d.text
    d.apply({"op": "add_job", "name": "b"})
    d.undo()
    assert d.text == after_a
    d.undo()
    assert d.text == SRC and not d.dirty
    d.redo()
    d.redo()
    assert d.text.endswith("  a: {}\n  b: {}\n# trailing comment\n")
    with pytest.raises(EditError):
        d.redo()
    d.undo()
    d.apply({"op": "add_job", "name": "c"})  # a new edit drops the redo branch
    assert not d.redo_stack


HOSTILE = ["it's \"quoted\"", "two\nlines", "{{ dag_run.conf }}", "__import__('os').system('id')", "a: b", "- x",
           "#not a comment", "null", "true", "0755", "&anchor", "*alias", "!!python/object:os.system", " lead", "tab\t"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_stay_data(value):
    d = doc()
    d.apply({"op": "set", "path": ["jobs", "train", "env"], "value": {"X": value}})
    d.apply({"op": "set", "path": ["jobs", "train", "command"], "value": ["sh", "-c", value]})
    d.apply({"op": "set", "path": ["dag", "description"], "value": value})
    data = yaml.safe_load(d.text)
    assert data["jobs"]["train"]["env"] == {"X": value}
    assert data["jobs"]["train"]["command"] == ["sh", "-c", value]
    assert data["dag"]["description"] == value
    res = check("pipelines/demo.yaml", d.text.encode(), FLAVORS)
    assert not res.problems and res.pipeline.jobs["train"].env == {"X": value}


def test_hostile_job_names_and_keys_are_refused():
    d = doc()
    for bad in ["a b", "../x", "{{x}}", "", "x" * 300, 3]:
        with pytest.raises(EditError):
            d.apply({"op": "add_job", "name": bad})
    with pytest.raises(EditError, match="not a field name"):
        d.apply({"op": "set", "path": ["jobs", "train", "a: b"], "value": 1})
    with pytest.raises(EditError, match="connect and disconnect"):
        d.apply({"op": "set", "path": ["jobs", "train", "depends_on"], "value": ["x"]})
    with pytest.raises(EditError, match="unknown operation"):
        d.apply({"op": "eval"})
    with pytest.raises(EditError):
        d.apply({"op": "set", "path": ["jobs", "train", "x"], "value": object()})
    assert d.text == SRC


def test_structural_edit_of_unparseable_text_is_refused_text_kept():
    d = doc()
    d.apply({"op": "set_text", "text": "dag: [unclosed\n"})
    with pytest.raises(EditError, match="not valid YAML"):
        d.apply({"op": "add_job", "name": "x"})
    assert d.text == "dag: [unclosed\n"
    d.undo()
    assert d.text == SRC


def test_alias_bomb_is_refused_before_ruamel_reads_it():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh"))
    d = doc()
    d.apply({"op": "set_text", "text": bomb})
    with pytest.raises(EditError, match="aliases|expands"):
        d.apply({"op": "add_job", "name": "x"})


def test_new_pipeline_grows_into_a_block_document():
    d = Document("pipelines/new.yaml", NEW_PIPELINE.format(name="new"), None)
    assert d.dirty
    d.apply({"op": "set", "path": ["defaults", "docker_image"], "value": "img:1"})
    d.apply({"op": "add_job", "name": "a"})
    d.apply({"op": "set", "path": ["jobs", "a", "command"], "value": ["run"]})
    assert d.text == ("# yaml-language-server: $schema=../schemas/pipeline.schema.json\nversion: 1\ndag:\n  name: new\n"
                      "defaults:\n  docker_image: img:1\njobs:\n  a:\n    command: [run]\n")
