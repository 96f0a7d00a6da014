"""Issue 37 against the real registry: a pushed image carries its SBOM and signed provenance; release and
promote to an environment that requires signatures are checked by skopeo with a generated policy.json, and
refuse (one line, registry unchanged) an unsigned digest, a digest signed by an unknown key, and a release
tag moved to another digest. Keys are made here with gpg --batch."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from platformctl.registry.auth import Credentials
from platformctl.supply import attach
from tests.integration.registry.conftest import PASSWORD, USER, tiny_image


class Keys:
    """Three GPG keys in a private GNUPGHOME: a and b (no passphrase), c (passphrase "right")."""

    def __init__(self, d: Path):
        self.home = d / "gnupg"
        self.home.mkdir(mode=0o700)
        self.env = {**os.environ, "GNUPGHOME": str(self.home)}
        self.fpr: dict[str, str] = {}
        for name, protect in (("a", None), ("b", None), ("c", "right")):
            params = (f"Key-Type: RSA\nKey-Length: 2048\nName-Real: test {name}\nName-Email: {name}@localhost\n"
                      f"Expire-Date: 0\n" + (f"Passphrase: {protect}\n" if protect else "%no-protection\n")
                      + "%commit\n")
            subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--gen-key"], input=params.encode(),
                           env=self.env, check=True, capture_output=True)
            out = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys", f"{name}@localhost"],
                                 env=self.env, check=True, capture_output=True, text=True).stdout
            self.fpr[name] = next(ln.split(":")[9] for ln in out.splitlines() if ln.startswith("fpr"))
            secret = d / f"{name}.sec.asc"
            args = ["gpg", "--batch", "--armor", "--export-secret-keys", self.fpr[name]]
            if protect:
                args[1:1] = ["--pinentry-mode", "loopback", "--passphrase", protect]
            secret.write_bytes(subprocess.run(args, env=self.env, check=True, capture_output=True).stdout)
        (d / "right").write_text("right\n")
        (d / "wrong").write_text("wrong\n")
        self.dir = d

    def close(self) -> None:
        """Stop the gpg-agent key generation started for this GNUPGHOME."""
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.env, capture_output=True)

    def public(self, name: str) -> bytes:
        return subprocess.run(["gpg", "--batch", "--armor", "--export", self.fpr[name]], env=self.env, check=True,
                              capture_output=True).stdout

    def signer(self, name: str, passphrase: str | None = None) -> dict[str, str]:
        env = {"PLATFORM_SIGNING_KEY_FILE": str(self.dir / f"{name}.sec.asc")}
        if passphrase:
            env["PLATFORM_SIGNING_PASSPHRASE_FILE"] = str(self.dir / passphrase)
        return env


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    k = Keys(tmp_path_factory.mktemp("keys"))
    yield k
    k.close()


def require_signatures(project, keys: Keys, *names: str) -> None:
    """prod requires signatures by the named keys (their public keys committed under keys/prod/)."""
    (project.path / "keys" / "prod").mkdir(parents=True, exist_ok=True)
    for n in names:
        (project.path / "keys" / "prod" / f"{n}.asc").write_bytes(keys.public(n))
        project.git("add", f"keys/prod/{n}.asc")
    prod = (project.path / "environments" / "prod.yaml").read_text().split("\nsignatures:")[0]
    listed = ", ".join(f"keys/prod/{n}.asc" for n in names)
    project.commit_file("environments/prod.yaml", prod + f"\nsignatures:\n  required: true\n  keys: [{listed}]\n",
                        "test: prod requires signatures")


def state(registry) -> dict:
    return {repo: {t: registry.digest(repo, t) for t in registry.tags(repo)}
            for repo in ("ml/airflow", "ml/airflow-prod")}


def one_line(p: subprocess.CompletedProcess) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stdout + p.stderr
    return lines[0]


def test_a_signed_push_carries_sbom_and_provenance_and_promotes(project, registry, docker, tmp_path, keys):
    require_signatures(project, keys, "a", "b")  # two keys allowed at once: a rotation
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    p = project.run("push", env=keys.signer("a"))
    assert p.returncode == 0, p.stdout + p.stderr
    digest = json.loads((project.path / "build" / "build-record.json").read_text())["digest"]
    hexd = digest.split(":")[1]
    tags = registry.tags("ml/airflow")
    assert f"sha256-{hexd}.sbom" in tags and f"sha256-{hexd}.att" in tags, tags
    assert f"signed {project.repo}@{digest[:19]}" in p.stdout
    s = project.run("sbom")  # where it is and a summary
    assert s.returncode == 0, s.stdout + s.stderr
    assert "SBOM: build/sbom.cdx.json" in s.stdout and f"as {project.repo}:sha256-{hexd}.sbom" in s.stdout
    # attached artifacts, pulled back with oras: the provenance's signature (gpgv) and subject check out
    sig_dir = project.path / ".platform" / "signatures" / f"ml/airflow@sha256={hexd}"
    assert sorted(x.name for x in sig_dir.iterdir()) == ["signature-1"]
    keyring = tmp_path / "a.gpg"
    keyring.write_bytes(subprocess.run(["gpg", "--batch", "--export", keys.fpr["a"]], env=keys.env, check=True,
                                       capture_output=True).stdout)
    chk = attach.verify_attached(project.repo, digest, Credentials(USER, PASSWORD), set(), keyring)
    assert chk.provenance and chk.provenance.fingerprint == keys.fpr["a"] and chk.components >= 1
    # the reviewer's command: skopeo standalone-verify + the attachments
    v = project.run("verify-image", "--env", "prod", "--digest", digest, "--repository", project.repo)
    assert v.returncode == 0, v.stdout + v.stderr
    assert f"signed by {keys.fpr['a']}" in v.stdout and "provenance: signed by" in v.stdout
    # release and promote: skopeo copies under the generated policy
    r = project.run("release", "--version", "0.1.0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "verified (skopeo standalone-verify)" in r.stdout
    pr = project.run("promote", "--env", "prod", "--version", "0.1.0")
    assert pr.returncode == 0, pr.stdout + pr.stderr
    assert registry.digest("ml/airflow-prod", "0.1.0") == digest
    # make status's view: the running digest is signed, by key a (skopeo standalone-verify)
    from platformctl.config import load_config
    from platformctl.environments import load_environment
    from platformctl.registry.auth import authfile
    from platformctl.registry.skopeo import Skopeo
    from platformctl.supply.service import signature_status

    with authfile(Credentials(USER, PASSWORD), project.repo) as auth:
        sig = signature_status(project.path, load_config(project.path, {"registry.repository": (project.repo, "t")}),
                               load_environment(project.path, "prod"), Skopeo(authfile=auth),
                               f"{registry.host}/ml/airflow-prod", digest)
    assert sig == {"required": True, "signed": True, "key": keys.fpr["a"], "note": ""}, sig
    # the signature travelled with the copy: skopeo itself accepts the prod image with a policy of key a
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {"docker": {
        f"{registry.host}/ml/airflow-prod": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(keyring),
                                             "signedIdentity": {"type": "exactRepository",
                                                                "dockerRepository": project.repo}}]}}}))
    regd = tmp_path / "registries.d"
    regd.mkdir()
    store = (project.path / ".platform" / "signatures").as_uri()
    (regd / "default.yaml").write_text(json.dumps({"default-docker": {"lookaside": store}}))
    ok = subprocess.run(["skopeo", f"--policy={policy}", f"--registries.d={regd}", "copy", "--src-tls-verify=false",
                         f"--src-creds={USER}:{PASSWORD}", f"docker://{registry.host}/ml/airflow-prod:0.1.0",
                         f"dir:{tmp_path / 'pulled'}"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    # the release tag moved to another digest: promote refuses, nothing changes
    other = tiny_image(docker, tmp_path, fingerprint=project.fingerprint())
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"--dest-creds={USER}:{PASSWORD}",
                    f"docker-daemon:{other_tag(docker, other)}", f"docker://{project.repo}:0.1.0"],
                   check=True, capture_output=True)
    subprocess.run(["skopeo", "delete", "--tls-verify=false", f"--creds={USER}:{PASSWORD}",
                    f"docker://{registry.host}/ml/airflow-prod:0.1.0"], check=True, capture_output=True)
    before = state(registry)
    moved = project.run("promote", "--env", "prod", "--version", "0.1.0")
    assert moved.returncode == 43 and "now points at" in one_line(moved), moved.stderr
    assert state(registry) == before
    # a tampered SBOM (another file pushed over the .sbom tag) is named by the reviewer's check
    fake = tmp_path / "sbom.cdx.json"
    fake.write_text('{"bomFormat": "CycloneDX", "components": []}\n')
    attach.Attacher(project.repo, Credentials(USER, PASSWORD)).attach(digest, fake, "application/vnd.cyclonedx+json",
                                                                       "sbom")
    t = project.run("verify-image", "--env", "prod", "--digest", digest, "--repository", project.repo)
    assert t.returncode == 46 and "does not match the one its signed provenance names" in one_line(t), t.stderr


def test_make_image_key_then_push_release_promote_is_a_signed_release(project, registry, docker, tmp_path):
    """The README's flow on a fresh clone: `make image-key ENV=prod` (a key in the user's keyring, its public half
    under keys/prod/, prod requiring it), then push, release 0.1.0 and promote to prod with no key variables
    given: the prod image is signed, carries its SBOM, and skopeo's standalone-verify accepts it under the
    policy made from the committed key."""
    home = tmp_path / "gnupg"
    gpg_env = {"GNUPGHOME": str(home)}
    try:
        k = project.run("image-key", "--env", "prod", "--name", "release-2026", env=gpg_env)
        assert k.returncode == 0, k.stdout + k.stderr
        fpr = k.stdout.split("made GPG key ")[1].split()[0]
        assert (project.path / "keys" / "prod" / "release-2026.asc").is_file()
        assert "signatures:\n  required: true\n  keys: [keys/prod/release-2026.asc]\n" in (
            project.path / "environments" / "prod.yaml").read_text()
        project.git("add", "keys/prod/release-2026.asc", "environments/prod.yaml")
        project.git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "prod signs with key")
        project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
        p = project.run("push", env=gpg_env)
        assert p.returncode == 0, p.stdout + p.stderr
        digest = json.loads((project.path / "build" / "build-record.json").read_text())["digest"]
        assert f"sha256-{digest.split(':')[1]}.sbom" in registry.tags("ml/airflow")
        r = project.run("release", "--version", "0.9.0", env=gpg_env)  # 0.1.0 is the first test's (one registry per module)
        assert r.returncode == 0, r.stdout + r.stderr
        pr = project.run("promote", "--env", "prod", "--version", "0.9.0", env=gpg_env)
        assert pr.returncode == 0, pr.stdout + pr.stderr
        assert registry.digest("ml/airflow-prod", "0.9.0") == digest
        v = project.run("verify-image", "--env", "prod", "--digest", digest, "--repository",
                        f"{registry.host}/ml/airflow-prod", env=gpg_env)
        assert v.returncode == 0, v.stdout + v.stderr
        assert f"signed by {fpr}" in v.stdout and "(skopeo standalone-verify)" in v.stdout, v.stdout
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, **gpg_env}, capture_output=True)


def other_tag(docker: str, image_id: str) -> str:
    out = subprocess.run([docker, "image", "inspect", "--format", "{{index .RepoTags 0}}", image_id],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out


def test_unsigned_and_unknown_key_digests_are_refused(project, registry, docker, tmp_path, keys):
    # released while prod did not require signatures: one unsigned, one signed by key b
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    assert project.run("push").returncode == 0
    assert project.run("release", "--version", "0.2.0").returncode == 0
    project.commit_file("README.md", "next\n", "next")
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    p = project.run("push", env=keys.signer("b"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert project.run("release", "--version", "0.3.0").returncode == 0
    require_signatures(project, keys, "a")  # now prod allows key a only
    before = state(registry)
    unsigned = project.run("promote", "--env", "prod", "--version", "0.2.0")
    assert unsigned.returncode == 45, unsigned.stdout + unsigned.stderr
    assert "has no valid signature from a key allowed for prod (no signature in" in one_line(unsigned)
    unknown = project.run("promote", "--env", "prod", "--version", "0.3.0")
    assert unknown.returncode == 45, unknown.stdout + unknown.stderr
    assert "not by an allowed key" in one_line(unknown)
    assert state(registry) == before
    # deploy to prod with nothing signed promoted there: refused before the bundle store is touched
    d = project.run("deploy", "--env", "prod")
    assert d.returncode == 45 and "has no valid signature from a key allowed for prod" in one_line(d), d.stderr
    # a release of an unsigned digest, no key configured: refused before any release tag exists
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    assert project.run("push").returncode == 0
    before = state(registry)
    r = project.run("release", "--version", "0.4.0")
    assert r.returncode == 45 and "no signing key is configured" in one_line(r), r.stdout + r.stderr
    assert state(registry) == before and not (project.path / "releases" / "0.4.0.json").exists()
    # signed by key b only (not allowed): refused by skopeo's policy, no release tag
    r = project.run("release", "--version", "0.4.0", env=keys.signer("b"))
    assert r.returncode == 45 and "no valid signature" in one_line(r), r.stdout + r.stderr
    assert "0.4.0" not in registry.tags("ml/airflow")


def test_a_wrong_passphrase_pushes_nothing(project, registry, docker, tmp_path, keys):
    project.record(tiny_image(docker, tmp_path, fingerprint=project.fingerprint()))
    before = state(registry)
    p = project.run("push", env=keys.signer("c", "wrong"))
    assert p.returncode == 44, p.stdout + p.stderr
    assert "could not unlock signing key" in one_line(p)
    assert state(registry) == before
    ok = project.run("push", env=keys.signer("c", "right"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"with {keys.fpr['c'][-16:]}" in ok.stdout
