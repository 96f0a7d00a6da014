"""`make image-key`: a GPG key for an environment's images, its public half committed, the environment
requiring it (round-trip edit), this machine remembering it; refusals before gpg runs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from platformctl import machine
from platformctl.environments import load_environment
from platformctl.errors import ConfigError, SigningError
from platformctl.supply import gpg
from platformctl.supply.keys import _with_key, new_image_key

ROOT = Path(__file__).resolve().parents[3]

PROD = """\
# production
registry:
  repository: 127.0.0.1:5000/ml/airflow-prod   # by digest
allowed_flavors: null          # every flavor
# Signed images only: make image-key writes this block
# signatures:
#   required: true
#   keys: [keys/prod/release-2026.asc]    # two while a key is rotated
executor: CeleryExecutor
"""


def test_the_environment_file_gains_the_key_and_keeps_its_comments_and_nulls():
    text, keys = _with_key(PROD, "environments/prod.yaml", "keys/prod/release-2026.asc")
    assert keys == ("keys/prod/release-2026.asc",)
    assert "allowed_flavors: null          # every flavor\n" in text
    assert "repository: 127.0.0.1:5000/ml/airflow-prod   # by digest\n" in text
    assert "# signatures:" not in text and "#   required" not in text  # the commented example is replaced
    assert text.endswith("signatures:\n  required: true\n  keys: [keys/prod/release-2026.asc]\n")


def test_a_second_key_is_a_rotation_both_listed():
    once, _ = _with_key(PROD, "environments/prod.yaml", "keys/prod/release-2026.asc")
    twice, keys = _with_key(once, "environments/prod.yaml", "keys/prod/release-2027.asc")
    assert keys == ("keys/prod/release-2026.asc", "keys/prod/release-2027.asc")
    assert twice.count("signatures:") == 1
    again, keys = _with_key(twice, "environments/prod.yaml", "keys/prod/release-2027.asc")
    assert again == twice and len(keys) == 2


def test_required_false_becomes_true_and_stays_first():
    text, _ = _with_key("signatures:\n  keys: []\n  required: false\n", "environments/dev.yaml", "keys/dev/a.asc")
    assert text == "signatures:\n  required: true\n  keys: [keys/dev/a.asc]\n"


@pytest.mark.parametrize("bad, says", [
    ("signatures: [a]\n", "signatures must be a mapping"),
    ("signatures:\n  keys: keys/a.asc\n", "signatures.keys must be a list"),
    ("- a\n", "must be a mapping"),
    ("a: [\n", "cannot be edited"),
])
def test_an_environment_file_that_cannot_take_the_key_is_one_line(bad, says):
    with pytest.raises(ConfigError) as exc:
        _with_key(bad, "environments/dev.yaml", "keys/dev/a.asc")
    assert says in exc.value.message and exc.value.where == "environments/dev.yaml"


def _repo(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir(parents=True)
    (tmp_path / "environments" / "prod.yaml").write_text((ROOT / "environments" / "prod.yaml").read_text())
    return tmp_path


def _kill_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)},
                   capture_output=True)


def test_a_key_is_made_exported_listed_and_remembered(tmp_path):
    root = _repo(tmp_path / "repo")
    home = tmp_path / "gnupg"
    try:
        k = new_image_key(root, "prod", "release-2026", environ={"GNUPGHOME": str(home)})
        pub = root / "keys" / "prod" / "release-2026.asc"
        assert k.public_key == "keys/prod/release-2026.asc" and pub.read_bytes().startswith(b"-----BEGIN PGP PUBLIC")
        assert gpg.fingerprints(pub.read_bytes()) == [k.fingerprint]
        assert machine.load(root) == {"signing.key": k.fingerprint} and k.remembered
        env = load_environment(root, "prod")  # the shipped file, edited, still validates
        assert env.signatures.required and env.signatures.keys == ["keys/prod/release-2026.asc"]
        # the key signs, and make push would find it (a SigningKey check signs once)
        with gpg.signing_key(None, environ={"GNUPGHOME": str(home), "PLATFORM_SIGNING_KEY": k.fingerprint}) as key:
            sig = gpg.detached_sign(key, b"data")
        keyring = tmp_path / "ring.gpg"
        assert gpg.keyring_file([pub], keyring) == [k.fingerprint]
        assert gpg.verify_detached(keyring, sig, b"data") == k.fingerprint
        # the same name again: refused, nothing changed
        before = (root / "environments" / "prod.yaml").read_text()
        with pytest.raises(ConfigError, match="exists already"):
            new_image_key(root, "prod", "release-2026", environ={"GNUPGHOME": str(home)})
        assert (root / "environments" / "prod.yaml").read_text() == before
    finally:
        _kill_agent(home)


def test_refusals_come_before_gpg_runs(tmp_path):
    root = _repo(tmp_path / "repo")
    home = tmp_path / "gnupg"  # never created: gpg never ran
    with pytest.raises(ConfigError, match="unknown environment 'nope'"):
        new_image_key(root, "nope", "a", environ={"GNUPGHOME": str(home)})
    (root / "platform.yaml").write_text("airflow_version: x\n")  # a name that is a path reached it before
    with pytest.raises(ConfigError, match="is not an environment name"):
        new_image_key(root, "../platform", "a", environ={"GNUPGHOME": str(home)})
    assert (root / "platform.yaml").read_text() == "airflow_version: x\n"
    with pytest.raises(ConfigError, match="'local' is built in and has no file"):
        new_image_key(root, "local", "a", environ={"GNUPGHOME": str(home)})
    with pytest.raises(ConfigError, match="not a simple file name"):
        new_image_key(root, "prod", "../x", environ={"GNUPGHOME": str(home)})
    with pytest.raises(SigningError, match="is not a file"):
        new_image_key(root, "prod", "a", passphrase_file=tmp_path / "missing", environ={"GNUPGHOME": str(home)})
    (root / "environments" / "prod.yaml").write_text("signatures: [a]\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        new_image_key(root, "prod", "a", environ={"GNUPGHOME": str(home)})
    assert not home.exists() and not (root / "keys").exists() and not machine.path(root).exists()
