"""services.deploy: typed results for deploy, rollback and gc (the CLI prints them through echo)."""

from __future__ import annotations

from platformctl.config import load_config
from platformctl.services import deploy as svc


def test_deploy_rollback_gc_return_what_they_did(proj):
    cfg = load_config(proj, {})
    lines: list[str] = []
    first = svc.deploy(proj, cfg, "local", echo=lines.append)
    assert isinstance(first, svc.DeployResult) and first.changed and first.environment == "local"
    assert first.delivery.uploaded_files > 0 and first.values_file.is_file() and first.env_file.is_file()
    assert first.image["tag"] == "0.1.0-dev.1" and first.store_url.startswith("file://")
    assert any(f"{first.version} live at" in ln for ln in lines)
    (proj / "pipelines" / "example_etl.yaml").write_text(
        (proj / "pipelines" / "example_etl.yaml").read_text().replace("cpu-medium", "cpu-large", 1))
    second = svc.deploy(proj, cfg, "local", echo=lines.append)
    assert second.changed and second.version != first.version
    back = svc.rollback(proj, cfg, "local", echo=lines.append)
    assert (back.environment, back.from_version, back.to_version) == ("local", second.version, first.version)
    assert back.entry and back.entry.startswith("e-")  # the ledger entry written around the switch (#38)
    kept = svc.gc(proj, cfg, "local", keep=1, dry_run=True, echo=lines.append)
    assert isinstance(kept, svc.GcOutcome) and kept.dry_run and not kept.asked_airflow
    assert set(kept.result.kept) == {first.version, second.version}  # live and rollback target
    assert kept.result.protected == {first.version: "live", second.version: "rollback target"}
