"""Provenance: an in-toto statement (v1) with a SLSA provenance predicate (v1), in a DSSE envelope signed
with the image's GPG key (securesystemslib's Envelope; the signature is a standard detached OpenPGP
signature over the DSSE pre-authentication encoding, so `gpg --verify` checks it too).

What it says: the image digest (subject), the git commit and whether the tree was dirty, the sha256 of each
lock, the base image and its digest, the engine and its version, the build command.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..config import PlatformConfig
from ..engine import ContainerEngine
from ..errors import SbomError
from ..record import BuildRecord
from . import gpg
from .sbom import image_locks

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT = "https://in-toto.io/Statement/v1"
SLSA = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://github.com/ml-platform/airflow-image/make-build@v1"
MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
PATH = Path("build/provenance.dsse.json")


def _base_digest(engine: ContainerEngine, base: str | None) -> str | None:
    if not base:
        return None
    try:
        info = engine.inspect(base)
    except Exception:  # noqa: BLE001 - a base the engine no longer has: said so in the statement
        return None
    repo_digests = info.get("RepoDigests") or []
    return repo_digests[0].split("@", 1)[1] if repo_digests else info.get("Id")


def statement(root: Path, cfg: PlatformConfig, rec: BuildRecord, repository: str, digest: str,
              engine: ContainerEngine, sbom_sha256: str | None = None) -> dict:
    locks = {}
    for lock in image_locks(root, cfg):
        if lock.exists():
            locks[str(lock.relative_to(root))] = hashlib.sha256(lock.read_bytes()).hexdigest()
    base = rec.base_image
    base_digest = _base_digest(engine, base)
    deps = [{"uri": f"git+{cfg.image.source or 'local'}@{rec.revision or 'unknown'}",
             "digest": {"gitCommit": rec.revision or ""}}]
    deps += [{"name": name, "uri": name, "digest": {"sha256": sha}} for name, sha in sorted(locks.items())]
    if base:
        deps.append({"name": "base-image", "uri": f"docker://{base}",
                     "digest": {"sha256": base_digest.split(":", 1)[1]} if base_digest and ":" in base_digest else {}})
    if sbom_sha256:
        deps.append({"name": "sbom", "uri": "build/sbom.cdx.json", "digest": {"sha256": sbom_sha256}})
    return {
        "_type": STATEMENT,
        "subject": [{"name": repository, "digest": {"sha256": digest.split(":", 1)[1]}}],
        "predicateType": SLSA,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"command": "make build", "python": rec.python_version,
                                       "airflow_version": rec.airflow_version, "base_mode": rec.base_mode,
                                       "base_image": base, "version": rec.version},
                "internalParameters": {"engine": engine.name,
                                       "engine_mode": engine.mode, "engine_version": engine.version(),
                                       "lock_fingerprint": rec.lock_fingerprint, "inputs": rec.inputs},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": "ml-platform make build"},
                "metadata": {"invocationId": rec.image_id or "", "startedOn": rec.created or "",
                             "git": {"commit": rec.revision, "dirty": rec.dirty},
                             "base_image_digest": base_digest, "verification": rec.verification},
            },
        },
    }


class _GpgDetachedSigner:
    """A securesystemslib Signer whose signature is a binary detached OpenPGP signature (hex in memory,
    base64 in the envelope, as DSSE says)."""

    def __init__(self, key: gpg.SigningKey):
        self.key = key

    def sign(self, payload: bytes):
        from securesystemslib.signer import Signature

        return Signature(keyid=self.key.fingerprint, sig=gpg.detached_sign(self.key, payload).hex())


def envelope(stmt: dict, key: gpg.SigningKey) -> dict:
    from securesystemslib.dsse import Envelope

    payload = json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode()
    env = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    env.sign(_GpgDetachedSigner(key))  # type: ignore[arg-type]
    return env.to_dict()


@dataclass(frozen=True)
class ProvenanceCheck:
    fingerprint: str | None
    subject_digest: str
    commit: str | None
    dirty: bool | None

    def line(self) -> str:
        return (f"signed by {self.fingerprint}, subject {self.subject_digest[:19]}, commit {(self.commit or '?')[:12]}"
                f"{' (dirty tree)' if self.dirty else ''}")


def verify(envelope_dict: dict, keyring: Path | None, digest: str) -> ProvenanceCheck:
    """Check a DSSE envelope: gpgv verifies a signature over its PAE by a key in keyring (when given), and its
    statement's subject is `digest`. A mismatch is an SbomError (a tampered or foreign artifact)."""
    from securesystemslib.dsse import Envelope

    try:
        env = Envelope.from_dict(json.loads(json.dumps(envelope_dict)))
        stmt = json.loads(env.payload)
    except (KeyError, ValueError, TypeError) as exc:
        raise SbomError(f"the provenance is not a DSSE envelope of an in-toto statement ({exc})",
                        "push the image again with make push") from None
    fpr = None
    if keyring is not None:
        for sig in env.signatures.values():
            fpr = gpg.verify_detached(keyring, bytes.fromhex(sig.signature), env.pae())
            if fpr:
                break
        if not fpr:
            raise SbomError("the provenance's signature is not valid for any allowed key",
                            "it was changed after signing, or signed by another key")
    subjects = [s.get("digest", {}).get("sha256") for s in stmt.get("subject", [])]
    if digest.split(":", 1)[1] not in subjects:
        raise SbomError(f"the provenance is about {', '.join(str(s)[:12] for s in subjects)}, not {digest[:19]}",
                        "it belongs to another image")
    meta = stmt.get("predicate", {}).get("runDetails", {}).get("metadata", {}).get("git", {})
    return ProvenanceCheck(fpr, digest, meta.get("commit"), meta.get("dirty"))


def pae_b64(envelope_dict: dict) -> str:
    """The DSSE pre-authentication encoding of an envelope, base64 (docs: what a reviewer feeds gpg)."""
    from securesystemslib.dsse import Envelope

    return base64.b64encode(Envelope.from_dict(json.loads(json.dumps(envelope_dict))).pae()).decode()
