"""Each rendered DAG's page names its pipeline file, the commit it was rendered from and shows the YAML
(issue 40): added at parse time by the platform's dag_policy (the `airflow.policy` entry point), so the
rendered files, and the v1 golden output, stay as they are."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from ml_platform.bundle_format import MANIFEST
from ml_platform.source_doc import MARK, source_doc, with_source

ROOT = Path(__file__).resolve().parents[3]


def bundle_dir(tmp_path: Path, manifest: dict | None) -> Path:
    root = tmp_path / "versions" / "b-1"
    (root / "dags").mkdir(parents=True)
    (root / "pipelines").mkdir()
    shutil.copy(ROOT / "dags/example_etl.py", root / "dags/example_etl.py")
    shutil.copy(ROOT / "pipelines/example_etl.yaml", root / "pipelines/example_etl.yaml")
    shutil.copy(ROOT / "flavors.yaml", root / "flavors.yaml")
    if manifest is not None:
        (root / MANIFEST).write_text(json.dumps(manifest))
    return root


def test_airflow_parses_the_dag_with_its_source_file_commit_and_yaml(tmp_path):
    """Airflow's own DagBag, in a fresh process, loads the policy from the entry point."""
    root = bundle_dir(tmp_path, {"version": "b-1", "commit": "0123456789abcdef0123", "files": {}})
    script = f"""
import json, os
os.environ["ML_PLATFORM_FLAVORS"] = {str(root / "flavors.yaml")!r}
from airflow.dag_processing.dagbag import DagBag
bag = DagBag({str(root / "dags")!r}, safe_mode=False)
assert not bag.import_errors, bag.import_errors
print("RESULT " + json.dumps(bag.dags["example_etl"].doc_md))
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    doc = json.loads(next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))[7:])
    assert doc.startswith(MARK)
    assert "- pipeline file: `pipelines/example_etl.yaml`" in doc
    assert "- git commit: `0123456789abcdef0123`" in doc and "bundle version `b-1`" in doc
    assert "```yaml\n" + (ROOT / "pipelines/example_etl.yaml").read_text().rstrip("\n") + "\n```" in doc


def test_in_the_image_the_commit_is_the_build_record(tmp_path, monkeypatch):
    root = bundle_dir(tmp_path, None)
    monkeypatch.setenv("ML_PLATFORM_IMAGE_REVISION", "feedface")
    monkeypatch.setenv("ML_PLATFORM_IMAGE_VERSION", "1.2.3")
    doc = source_doc(root / "dags/example_etl.py")
    assert "- git commit: `feedface`" in doc and "image 1.2.3" in doc
    monkeypatch.delenv("ML_PLATFORM_IMAGE_REVISION")
    assert "- git commit: unknown" in source_doc(root / "dags/example_etl.py")


def test_a_yaml_that_is_not_the_rendered_one_is_not_shown(tmp_path):
    root = bundle_dir(tmp_path, {"version": "b-1", "commit": "c", "files": {}})
    (root / "pipelines/example_etl.yaml").write_text("dag: {name: other}\n")
    doc = source_doc(root / "dags/example_etl.py")
    assert "sha256 differs" in doc and "```yaml" not in doc and "name: other" not in doc
    (root / "pipelines/example_etl.yaml").unlink()
    assert "is not next to this DAG" in source_doc(root / "dags/example_etl.py")


def test_own_doc_md_kept_first_and_the_policy_is_idempotent(tmp_path):
    root = bundle_dir(tmp_path, {"version": "b-1", "commit": "c", "files": {}})
    f = root / "dags/example_etl.py"
    once = with_source("# Churn\nmy docs  ", f)
    assert once.startswith("# Churn\nmy docs  \n\n" + MARK) and with_source(once, f) == once
    other = tmp_path / "hand_written.py"
    other.write_text("from airflow.sdk import DAG\n")
    assert with_source("x", other) == "x" and source_doc(other) is None
    assert source_doc(tmp_path / "missing.py") is None


def test_rendered_files_carry_no_commit():
    """render-check stays stable: the commit is read where the DAG is served, never written by make render."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()
    assert head
    for f in (ROOT / "dags").glob("*.py"):
        assert head not in f.read_text() and head[:7] not in f.read_text()
    assert 'ml_platform = "ml_platform.policy"' in (ROOT / "operators/pyproject.toml").read_text()
