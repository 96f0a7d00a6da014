"""services.ship: push, release and promote return typed results; the CLI prints their summary from them, and
the records written from them (releases/<X.Y.Z>.json, deploy/<env>/image.json) keep their keys."""

from __future__ import annotations

import pytest

from platformctl import cli
from platformctl.errors import ReleaseRefused
from platformctl.services import ship
from platformctl.services.ledger import history

DIGEST = "sha256:" + "a" * 64
RELEASE_KEYS = {"version", "repository", "digest", "image", "tags", "lock_fingerprint", "commit", "built_version",
                "airflow_version", "python_version", "date", "previous"}
PROMOTION_KEYS = {"environment", "version", "repository", "digest", "source", "lock_fingerprint", "commit",
                  "promoted_at"}


def released(**kw) -> ship.ReleaseResult:
    return ship.ReleaseResult(**{
        "version": "1.2.0", "repository": "r/ml", "digest": DIGEST, "image": f"r/ml@{DIGEST}",
        "tags": ("1.2.0", "1.2", "1"), "lock_fingerprint": "f" * 64, "commit": "c" * 40, "built_version": "1.2.0",
        "airflow_version": "3.3.2", "python_version": "3.12", "date": "2025-01-01T00:00:00Z", "previous": None,
        **kw})


def promoted(env: str, **kw) -> ship.PromoteResult:
    return ship.PromoteResult(**{
        "environment": env, "version": "1.2.0", "repository": "r/ml-prod", "digest": DIGEST,
        "source": f"r/ml@{DIGEST}", "lock_fingerprint": "f" * 64, "commit": "c" * 40,
        "promoted_at": "2025-01-01T00:00:00Z", **kw})


def test_the_records_keep_their_keys_and_name_serves_only_when_the_image_does():
    assert set(ship._record(released())) == RELEASE_KEYS
    assert ship._record(released(serves="bundle-format 1"))["serves"] == "bundle-format 1"
    assert released().record_file == "releases/1.2.0.json"
    record = ship._record(promoted("prod", already=True, ledger="ledger: e-1"), leave_out=("already", "ledger"))
    assert set(record) == PROMOTION_KEYS and promoted("prod").record_file == "deploy/prod/image.json"


def test_promote_is_recorded_in_the_ledger_and_the_cli_prints_the_result(proj, monkeypatch, capsys):
    calls = []

    def fake(root, cfg, env, version, creds, *, echo):
        calls.append((env.name, version))
        return promoted(env.name, version=version, already=True)

    monkeypatch.setattr(ship, "_promote", fake)
    assert cli.main(["promote", "--env", "local", "--version", "1.2.0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"already promoted: 1.2.0 to local: r/ml-prod@{DIGEST}"
    assert out[1] == "  deploy/local/image.json written; make deploy ENV=local points the instance at it"
    assert out[2].startswith("  ledger: e-") and calls == [("local", "1.2.0")]
    entry = history(proj, "local", 5).entries[0]
    assert (entry.id, entry.action, entry.result) == (out[2].split()[-1], "promote", f"promoted 1.2.0 ({DIGEST})")


def test_a_refused_promotion_prints_no_summary(proj, monkeypatch, capsys):
    def refused(*a, **kw):
        raise ReleaseRefused("1.9.9 is not in the registry", "was the release deleted?")

    monkeypatch.setattr(ship, "_promote", refused)
    assert cli.main(["promote", "--env", "local", "--version", "1.9.9"]) == ReleaseRefused.exit_code
    assert "promoted" not in capsys.readouterr().out


@pytest.mark.parametrize("result", [released(), promoted("prod")])
def test_the_results_are_frozen(result):
    with pytest.raises(AttributeError):
        result.digest = "x"
