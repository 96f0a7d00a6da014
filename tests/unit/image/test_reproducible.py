"""make verify-reproducible's comparison over OCI layouts made here, and its refusals (no engine run)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from platformctl.errors import NotReproducible, ReproducibleRefused
from platformctl.image import reproducible as rp


def _layer(files: dict[str, tuple[bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, (data, mtime) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _put(layout: Path, data: bytes) -> str:
    d = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / d).write_bytes(data)
    return f"sha256:{d}"


def _layout(path: Path, layers: list[dict[str, tuple[bytes, int]]], label: str = "x") -> Path:
    tars = [_layer(files) for files in layers]
    digests = [_put(path, t) for t in tars]
    config = {"config": {"Labels": {"l": label}}, "rootfs": {"type": "layers", "diff_ids": digests},
              "history": [{"created_by": f"COPY step{i}"} for i in range(len(tars))]}
    cfg = _put(path, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "config": {"digest": cfg},
                "layers": [{"digest": d, "mediaType": "application/vnd.oci.image.layer.v1.tar"} for d in digests]}
    m = _put(path, json.dumps(manifest).encode())
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{"digest": m}]}))
    return path


BASE = {"etc/os": (b"debian", 0)}
DAGS = {"opt/airflow/dags/a.py": (b"print(1)", 0), "opt/airflow/dags/b.py": (b"print(2)", 0)}


def test_same_layers_and_config_are_the_same_image(tmp_path):
    r = rp.compare_layouts(_layout(tmp_path / "e", [BASE, DAGS]), _layout(tmp_path / "a", [BASE, DAGS]))
    assert r.same and r.first is None


def test_a_changed_mtime_names_the_layer_its_step_and_the_file(tmp_path):
    changed = {**DAGS, "opt/airflow/dags/b.py": (b"print(2)", 1700000000)}
    r = rp.compare_layouts(_layout(tmp_path / "e", [BASE, DAGS]), _layout(tmp_path / "a", [BASE, changed]))
    assert not r.same and r.first.index == 1 and r.first.step == "COPY step1"
    assert [f.path for f in r.first.files] == ["/opt/airflow/dags/b.py"]
    assert r.first.files[0].what == "mtime 0 != 1700000000"
    err = rp.report_error(r)
    assert isinstance(err, NotReproducible) and err.exit_code == 18
    assert "layer 2 differs (COPY step1): /opt/airflow/dags/b.py: mtime 0 != 1700000000" in err.message


def test_content_and_extra_files_are_named(tmp_path):
    other = {"opt/airflow/dags/a.py": (b"print(9)", 0), "opt/airflow/dags/c.py": (b"x", 0)}
    r = rp.compare_layouts(_layout(tmp_path / "e", [DAGS]), _layout(tmp_path / "a", [other]))
    what = {f.path: f.what for f in r.first.files}
    assert what["/opt/airflow/dags/b.py"] == "only in the expected image"
    assert what["/opt/airflow/dags/c.py"] == "only in the rebuild"
    assert what["/opt/airflow/dags/a.py"].startswith("content ")


def test_same_layers_other_config(tmp_path):
    r = rp.compare_layouts(_layout(tmp_path / "e", [BASE], "v1"), _layout(tmp_path / "a", [BASE], "v2"))
    assert r.first is None and r.config_only and not r.same
    assert "same layers but another image config" in rp.report_error(r).message


class _Engine:
    def __init__(self, name):
        self.name = name


def test_refused_with_the_docker_engine_and_on_a_dirty_tree(tmp_path):
    with pytest.raises(ReproducibleRefused) as e:
        rp.refuse_unless_clean(tmp_path, _Engine("docker"))
    assert "ignores SOURCE_DATE_EPOCH" in e.value.message and "ENGINE=podman" in e.value.hint
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    rp.refuse_unless_clean(tmp_path, _Engine("podman"))  # clean: no refusal
    (tmp_path / "f").write_text("2")
    with pytest.raises(ReproducibleRefused) as e:
        rp.refuse_unless_clean(tmp_path, _Engine("podman"))
    assert "uncommitted changes" in e.value.message and e.value.exit_code == 19
