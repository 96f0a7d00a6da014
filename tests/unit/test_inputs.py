"""The inputs fingerprint changes with what enters the image and only with that."""

from __future__ import annotations

from pathlib import Path

from platformctl.engine import BuildSpec
from platformctl.image.inputs import context_files, inputs_fingerprint, inputs_tag


def project(tmp: Path) -> Path:
    (tmp / ".dockerignore").write_text("*\n!operators/\n!flavors.yaml\n!requirements/*.txt\n**/__pycache__\noperators/build\n")
    (tmp / "Dockerfile").write_text("FROM x\n")
    (tmp / "operators" / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp / "operators" / "build").mkdir()
    (tmp / "operators" / "pkg" / "a.py").write_text("a = 1\n")
    (tmp / "operators" / "pkg" / "__pycache__" / "a.pyc").write_text("x")
    (tmp / "operators" / "build" / "junk").write_text("x")
    (tmp / "requirements").mkdir()
    (tmp / "requirements" / "a.txt").write_text("x==1\n")
    (tmp / "requirements" / "a.in").write_text("x\n")
    (tmp / "flavors.yaml").write_text("flavors: {}\n")
    (tmp / "README.md").write_text("docs\n")
    return tmp


def spec(tmp: Path, **args) -> BuildSpec:
    return BuildSpec(context=tmp, dockerfile=tmp / "Dockerfile", tags=("t:1",),
                     build_args={"PYTHON_VERSION": "3.12", "VERSION": "1", "REVISION": "a", "CREATED": "t", **args},
                     secrets={}, target="platform", platform=None)


def test_context_is_the_allow_list_minus_exclusions(tmp_path):
    assert context_files(project(tmp_path)) == ["flavors.yaml", "operators/pkg/a.py", "requirements/a.txt"]


def test_fingerprint_ignores_labels_and_files_outside_the_context(tmp_path):
    root = project(tmp_path)
    fp = inputs_fingerprint(root, spec(root), "sha256:base")
    assert fp == inputs_fingerprint(root, spec(root, VERSION="2", REVISION="b", CREATED="u"), "sha256:base")
    # the source label follows the clone's remote: an ssh and an https clone build the same software
    assert fp == inputs_fingerprint(root, spec(root, SOURCE="https://git.example.invalid/org/repo"), "sha256:base")
    (root / "README.md").write_text("other docs\n")
    (root / "requirements" / "a.in").write_text("y\n")
    assert inputs_fingerprint(root, spec(root), "sha256:base") == fp
    assert inputs_tag(fp).startswith("inputs-") and len(inputs_tag(fp)) == 39


def test_fingerprint_changes_with_sources_args_and_base(tmp_path):
    root = project(tmp_path)
    fp = inputs_fingerprint(root, spec(root), "sha256:base")
    assert inputs_fingerprint(root, spec(root), "sha256:other") != fp
    assert inputs_fingerprint(root, spec(root, PYTHON_VERSION="3.11"), "sha256:base") != fp
    (root / "operators" / "pkg" / "a.py").write_text("a = 2\n")
    assert inputs_fingerprint(root, spec(root), "sha256:base") != fp
    assert inputs_fingerprint(root, spec(root), None) is None  # base not local: unknown, always build


def test_no_allow_list_means_no_fingerprint(tmp_path):
    root = project(tmp_path)
    (root / ".dockerignore").write_text("**/__pycache__\n")
    assert inputs_fingerprint(root, spec(root), "sha256:base") is None
