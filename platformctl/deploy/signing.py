"""Signing what deploy and rollback publish (issue 38): the key, checked against the environment before upload.

The private key (ed25519, PEM/PKCS#8, no password) comes from the environment of the command, as CI
secrets are given: ML_PLATFORM_SIGNING_KEY holds the PEM text, or ML_PLATFORM_SIGNING_KEY_FILE names a
file holding it. The environment file lists the public keys allowed to sign (signing.allowed_keys); the
key must be one of them, or nothing is uploaded. The envelope format and the verification are
ml_platform.bundle_format's: the bundle in the image uses the same code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ml_platform import bundle_format as fmt

from ..environments import Environment
from ..errors import BundleSignatureRefused, SigningKeyError

KEY_VAR = "ML_PLATFORM_SIGNING_KEY"
KEY_FILE_VAR = "ML_PLATFORM_SIGNING_KEY_FILE"


@dataclass(frozen=True)
class Trust:
    """What deploy and rollback sign with for one environment: the signer (None: unsigned) and the rules."""

    environment: str
    allowed: tuple[str, ...]
    required: bool
    signer: object | None = None

    @property
    def key_id(self) -> str | None:
        return self.signer.public_key.keyid if self.signer is not None else None  # type: ignore[attr-defined]

    @property
    def checks(self) -> bool:
        """Whether signatures are checked here at all (keys listed or signatures required)."""
        return self.required or bool(self.allowed)

    def sign_manifest(self, version: str, manifest_raw: bytes) -> bytes | None:
        if self.signer is None:
            return None
        return fmt.envelope_bytes(fmt.sign(self.signer, fmt.MANIFEST_PAYLOAD_TYPE,
                                           fmt.manifest_statement(self.environment, version, manifest_raw)))

    def sign_pointer(self, statement: dict) -> dict | None:
        if self.signer is None:
            return None
        return fmt.sign(self.signer, fmt.POINTER_PAYLOAD_TYPE, {**statement, "environment": self.environment})

    def check_stored(self, version: str, manifest_raw: bytes, envelope_raw: bytes | None) -> str | None:
        """Refuse (BundleSignatureRefused) a stored version the instance would not serve: unsigned where signatures
        are required, or a signature that does not verify. Returns the key id that signed it (None: unsigned)."""
        if not self.checks:
            return None
        if envelope_raw is None and not self.required:
            return None
        try:
            envelope = json.loads(envelope_raw) if envelope_raw is not None else None
            return fmt.check_manifest(envelope, list(self.allowed), environment=self.environment, version=version,
                                      manifest_raw=manifest_raw).key_id
        except (ValueError, fmt.TrustFault) as exc:
            raise BundleSignatureRefused(f"{self.environment}: {exc}", "deploy that version again from its commit "
                                   "(it is signed then), or pick another one (make history)") from None


def _key_bytes() -> tuple[bytes | None, str]:
    text = os.environ.get(KEY_VAR)
    if text:
        return text.encode(), f"${KEY_VAR}"
    path = os.environ.get(KEY_FILE_VAR)
    if path:
        try:
            return Path(path).read_bytes(), path
        except OSError as exc:
            raise SigningKeyError(f"cannot read the signing key {path} (${KEY_FILE_VAR}): {exc.strerror}",
                                  f"point {KEY_FILE_VAR} at the private key file, or unset it") from None
    return None, ""


def trust_for(env: Environment) -> Trust:
    """The environment's rules and the signer from this process's environment, checked before anything is
    uploaded: SigningKeyError for a missing key where signatures are required, a key that is not an ed25519
    private key, or one whose public key the environment does not allow."""
    s = env.signing
    data, source = _key_bytes()
    rel = f"environments/{env.name}.yaml"
    if data is None:
        if s.require_signatures:
            raise SigningKeyError(f"{env.name} requires signed bundles and no signing key is set",
                                  f"set {KEY_VAR} (the PEM text) or {KEY_FILE_VAR} (its path), e.g. from a CI "
                                  f"secret; make signing-key makes a key pair")
        return Trust(env.name, tuple(s.allowed_keys), False, None)
    try:
        signer = fmt.load_signer(data)
    except ValueError as exc:
        raise SigningKeyError(f"the signing key in {source} is unusable: {exc}",
                              "give an ed25519 private key in PEM (PKCS#8) without a password") from None
    public = fmt.public_hex(signer)
    if public not in s.allowed_keys:
        allowed = ", ".join(f"{fmt.key_id(k)[:12]} ({k[:12]}...)" for k in s.allowed_keys) or "none"
        raise SigningKeyError(f"the signing key in {source} (public key {public[:12]}..., key id "
                              f"{signer.public_key.keyid[:12]}) is not allowed to sign {env.name}'s bundles "
                              f"(allowed: {allowed})", f"use an allowed key, or add {public} to "
                              f"signing.allowed_keys in {rel}; nothing was uploaded")
    return Trust(env.name, tuple(s.allowed_keys), s.require_signatures, signer)


def new_key_pair(path: Path) -> tuple[str, str]:
    """Write a new ed25519 private key (PEM, mode 0600) to `path`; returns (public key hex, key id)."""
    from securesystemslib.signer import CryptoSigner

    if path.exists():
        raise SigningKeyError(f"{path} exists: not overwriting a key", "choose another --out path")
    signer = CryptoSigner.generate_ed25519()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.private_bytes)
    return fmt.public_hex(signer), signer.public_key.keyid
