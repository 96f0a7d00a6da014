"""ml_platform.bundle_format: the one definition of what a bundle store holds (keys, manifest, pointer, version)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ml_platform import bundle_format as bf

ROOT = Path(__file__).resolve().parents[3]


def test_keys_follow_the_layout():
    assert bf.pointer_key("airflow/qa") == "airflow/qa/current.json"
    assert bf.pointer_key("") == "current.json"
    assert bf.version_prefix("/airflow/qa/", "b-0123456789abcdef") == "airflow/qa/bundles/b-0123456789abcdef"
    assert bf.manifest_key("p", "b-0123456789abcdef") == "p/bundles/b-0123456789abcdef/bundle-manifest.json"
    assert bf.lock_key("p") == "p/deploy.lock"
    assert bf.bundles_prefix("") == "bundles"
    assert bf.join("a/", "", "/b", "c") == "a/b/c"


def test_version_is_a_content_address():
    files = {"dags/a.py": "aa" * 32, "pipelines/a.yaml": "bb" * 32}
    v = bf.version_hash(files, "sha256:" + "c" * 64)
    assert bf.is_version(v) and bf.VERSION_RE.match(v)
    assert bf.version_hash(dict(reversed(list(files.items()))), "sha256:" + "c" * 64) == v  # order-free
    assert bf.version_hash(files, None) != v  # the image is part of the version
    assert bf.version_hash({**files, "dags/a.py": "dd" * 32}, "sha256:" + "c" * 64) != v
    # the hash the store already holds versions under (deploys made before this module): pinned
    assert bf.version_hash({"dags/x.py": "0" * 64}, None) == "b-" + __import__("hashlib").sha256(
        f"dags/x.py\0{'0' * 64}\nimage\0\n".encode()).hexdigest()[:16]


def test_manifest_round_trip_keeps_bytes_and_unknown_keys():
    m = bf.Manifest.build({"dags/b.py": bf.FileEntry("b" * 64, 2), "dags/a.py": bf.FileEntry("a" * 64, 1)},
                          image_digest="sha256:" + "1" * 64, commit="abc", created="2026-01-01T00:00:00Z")
    assert m.version == m.content_version() == bf.version_of(m.to_dict())
    raw = m.to_bytes()
    assert raw.endswith(b"\n") and list(json.loads(raw)) == sorted(json.loads(raw))
    assert bf.Manifest.parse(raw) == m and bf.Manifest.parse(raw).to_bytes() == raw
    signed = json.loads(raw) | {"signatures": [{"keyid": "k"}]}  # a newer writer's field
    again = bf.Manifest.parse(bf.to_bytes(signed))
    assert again.extra == {"signatures": [{"keyid": "k"}]} and json.loads(again.to_bytes()) == signed
    assert m.size == 3


@pytest.mark.parametrize("raw, what", [(b"not json", "not JSON"), (b"[1]", "not a JSON object"),
                                       (b'{"version": "b-x"}', "no 'files'"),
                                       (b'{"files": {"a": {"size": 1}}}', "has no sha256")])
def test_bad_manifest_is_a_format_error(raw, what):
    with pytest.raises(bf.FormatError, match=what):
        bf.Manifest.parse(raw, "p/bundles/b-x/bundle-manifest.json")


def test_changed_manifest_does_not_hash_to_its_version():
    m = bf.Manifest.build({"dags/a.py": bf.FileEntry("a" * 64, 1)}, image_digest=None, commit=None, created=None)
    doc = m.to_dict()
    doc["files"]["dags/a.py"]["sha256"] = "f" * 64
    assert bf.Manifest.from_dict(doc).content_version() != m.version


def test_pointer_switch_and_parse():
    first = bf.switched_pointer("env", {"image_digest": "d1", "commit": "c1"}, "b-1111111111111111", None,
                                switched_at="t1", switch_id="s1")
    assert first.prefix == "env/bundles/b-1111111111111111" and first.history == []
    second = bf.switched_pointer("env", {}, "b-2222222222222222", first.to_dict(), switched_at="t2", switch_id="s2",
                                 history_limit=1)
    assert second.history == ["b-1111111111111111"]
    back = bf.switched_pointer("env", {}, "b-1111111111111111", second, switched_at="t3", switch_id="s3")
    assert back.history == ["b-2222222222222222"]  # the version made live never appears in its own history
    assert bf.Pointer.parse(second.to_bytes(), "env") == second
    assert set(json.loads(second.to_bytes())) == {"version", "prefix", "switched_at", "switch_id", "image_digest",
                                                  "commit", "history"}
    # an old pointer without 'prefix': the version folder under the environment's prefix
    assert bf.Pointer.parse(b'{"version": "b-3333333333333333"}', "env").prefix == "env/bundles/b-3333333333333333"
    with pytest.raises(bf.FormatError, match="no 'version'"):
        bf.Pointer.parse(b'{"prefix": "x"}')


@pytest.mark.parametrize("rel, ok", [("dags/a.py", True), ("a", True), ("/etc/passwd", False),
                                     ("dags/../../x", False), ("", False), (".", False)])
def test_safe_rel(rel, ok):
    assert (bf.safe_rel(rel) is not None) is ok


def test_module_imports_only_the_standard_library():
    """Cheap on both sides: neither Airflow nor platformctl (nor anything outside the standard library at module
    level; the signatures load securesystemslib and its crypto backend when they are used, issue 38)."""
    tree = ast.parse((ROOT / "operators/ml_platform/bundle_format.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    imported = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    lazy = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    lazy |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert lazy - imported <= {"securesystemslib", "cryptography"}, lazy - imported
    out = subprocess.run([sys.executable, "-c", "import sys, ml_platform.bundle_format; "
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'platformctl')))"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_format_is_defined_once():
    """Both sides take the names and the hash from bundle_format; nobody spells them again."""
    from ml_platform import bundle
    from platformctl.deploy import bundle as deploy_bundle, deliver, live

    assert bundle.POINTER is bf.POINTER and deliver.POINTER is bf.POINTER
    assert bundle.version_of is bf.version_of and deploy_bundle.MANIFEST is bf.MANIFEST
    for path in [*(ROOT / "platformctl").rglob("*.py"), *(ROOT / "operators/ml_platform").rglob("*.py")]:
        if path.name == "bundle_format.py":
            continue
        text = path.read_text()
        for literal in ('"current.json"', '"bundle-manifest.json"', '"deploy.lock"', '"b-" + '):
            assert literal not in text, f"{path.relative_to(ROOT)} spells {literal}: use ml_platform.bundle_format"
    assert live.read_live  # the reader side imports cleanly
