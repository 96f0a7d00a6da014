"""Who may publish a bundle version, and what a version needs from the image: Airflow-free (securesystemslib only).

Used by both sides: `make deploy` / `make rollback` sign (platformctl.deploy), the DAG bundle in the image
verifies (ml_platform.bundle) before a version is activated.

Two signed statements, each a DSSE envelope (securesystemslib.dsse.Envelope) with an ed25519 key:

    P/bundles/<version>/bundle-manifest.dsse.json   payload {"environment", "version", "manifest_sha256"}
    P/current.json  field "envelope"                payload {"environment", "prefix", "version",
                                                             "manifest_sha256", "switched_at", "switch_id",
                                                             "ledger_entry"}

The manifest statement lets a worker that fetches a pinned version check it without the pointer; the
pointer statement says which version is live. Both name the environment and the sha256 of the exact
manifest bytes, so a valid signature made for another environment or over another manifest (a replay) is
refused. The allowed public keys are the environment's (`signing.allowed_keys`, two during a rotation);
each is the 64 hex digits of a raw ed25519 public key; its key id is securesystemslib's default key id.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

MANIFEST_SIGNATURE = "bundle-manifest.dsse.json"
MANIFEST_PAYLOAD_TYPE = "application/vnd.ml-platform.bundle-manifest.v1+json"
POINTER_PAYLOAD_TYPE = "application/vnd.ml-platform.bundle-pointer.v1+json"
_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")

# What the operator package in this image serves: the pipeline format versions whose rendered DAGs it runs.
# A bundle's manifest records the formats its DAGs were rendered from and the ml_platform version they were
# rendered for; the bundle class refuses a version this image cannot serve.
SERVED_PIPELINE_FORMATS: tuple[int, ...] = (1, 2)


class TrustFault(Exception):
    """A version may not be served: the message says why (unsigned, tampered, replayed, key not allowed)."""


# ----------------------------------------------------------------------------------------------- keys
def key_problem(text: str) -> str | None:
    """Why `text` is not an allowed-key entry (64 hex digits of a raw ed25519 public key), or None."""
    if not isinstance(text, str) or not _HEX_KEY.match(text.strip().lower()):
        return "must be 64 hex digits: a raw ed25519 public key (make signing-key prints one)"
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.strip()))
    except ValueError as exc:
        return f"is not an ed25519 public key ({exc})"
    return None


def public_key(hex_key: str):
    """The securesystemslib key (SSlibKey, ed25519, its default key id) of an allowed-key entry."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from securesystemslib.signer import SSlibKey

    return SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key.strip())))


def key_id(hex_key: str) -> str:
    return public_key(hex_key).keyid


def load_signer(pem: bytes):
    """A CryptoSigner for an ed25519 private key (PEM, PKCS#8), its public key with the default key id.
    ValueError when the bytes are not such a key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner, SSlibKey

    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM private key without a password ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"an ed25519 key is needed, this is {type(key).__name__.lstrip('_')}")
    return CryptoSigner(key, SSlibKey.from_crypto(key.public_key()))


def public_hex(signer) -> str:
    return signer.public_key.keyval["public"]


# ----------------------------------------------------------------------------------------- statements
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(doc: dict) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def sign(signer, payload_type: str, statement: dict) -> dict:
    """A DSSE envelope (as a dict) over the canonical JSON of `statement`."""
    from securesystemslib.dsse import Envelope

    env = Envelope(_canonical(statement), payload_type, {})
    env.sign(signer)
    return env.to_dict()


def manifest_statement(environment: str, version: str, manifest_raw: bytes) -> dict:
    return {"environment": environment, "version": version, "manifest_sha256": sha256_hex(manifest_raw)}


def envelope_bytes(envelope: dict) -> bytes:
    return (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Verified:
    statement: dict
    key_id: str


def verify(envelope: dict | None, payload_type: str, allowed: list[str], what: str) -> Verified:
    """The statement of a DSSE envelope signed by one of `allowed` (hex ed25519 public keys); TrustFault
    naming why otherwise."""
    from securesystemslib import exceptions
    from securesystemslib.dsse import Envelope

    if envelope is None:
        raise TrustFault(f"{what} is unsigned and this environment requires signatures")
    try:
        env = Envelope.from_dict(json.loads(json.dumps(envelope)))  # from_dict changes its argument
    except Exception as exc:  # noqa: BLE001 - any malformed envelope is one reason
        raise TrustFault(f"{what}'s signature envelope is malformed ({type(exc).__name__})") from None
    if env.payload_type != payload_type:
        raise TrustFault(f"{what}'s signature is over a {env.payload_type!r}, not a {payload_type!r} (replayed)")
    keys = [public_key(k) for k in allowed]
    if not keys:
        raise TrustFault(f"{what} is signed but this environment lists no allowed keys")
    ids = {k.keyid for k in keys}
    if not ids & set(env.signatures):
        signed_by = ", ".join(sorted(k[:12] for k in env.signatures)) or "nobody"
        raise TrustFault(f"{what} is signed by key {signed_by}, which is not an allowed key here")
    try:
        accepted = env.verify(keys, 1)
    except (exceptions.VerificationError, ValueError):
        raise TrustFault(f"{what}'s signature does not verify (tampered after signing)") from None
    try:
        statement = json.loads(env.payload)
    except ValueError:
        raise TrustFault(f"{what}'s signed payload is not JSON") from None
    if not isinstance(statement, dict):
        raise TrustFault(f"{what}'s signed payload is not a statement")
    return Verified(statement, next(iter(accepted)))


def check_manifest(envelope: dict | None, allowed: list[str], *, environment: str, version: str,
                   manifest_raw: bytes, pointer_statement: dict | None = None) -> Verified:
    """The manifest of `version` as signed for `environment` (and, when given, as the signed pointer names it)."""
    v = verify(envelope, MANIFEST_PAYLOAD_TYPE, allowed, f"{version}'s manifest")
    s = v.statement
    if s.get("environment") != environment:
        raise TrustFault(f"{version}'s manifest signature was made for environment {s.get('environment')!r}, "
                         f"not {environment!r} (replayed)")
    if s.get("version") != version:
        raise TrustFault(f"{version}'s manifest signature names version {s.get('version')!r} (replayed)")
    digest = sha256_hex(manifest_raw)
    if s.get("manifest_sha256") != digest:
        raise TrustFault(f"{version}'s manifest signature is over another manifest (sha256 "
                         f"{str(s.get('manifest_sha256'))[:12]}..., the stored one has {digest[:12]}...; "
                         f"replayed or tampered)")
    if pointer_statement is not None and pointer_statement.get("manifest_sha256") != digest:
        raise TrustFault(f"the signed pointer names another manifest for {version} (sha256 "
                         f"{str(pointer_statement.get('manifest_sha256'))[:12]}...; replayed or tampered)")
    return v


def check_pointer(pointer: dict, allowed: list[str], *, environment: str) -> Verified:
    """The signed pointer statement of a current.json read from the store."""
    v = verify(pointer.get("envelope"), POINTER_PAYLOAD_TYPE, allowed, f"the pointer to {pointer.get('version')}")
    s = v.statement
    if s.get("environment") != environment:
        raise TrustFault(f"the pointer to {pointer.get('version')} was signed for environment "
                         f"{s.get('environment')!r}, not {environment!r} (replayed)")
    if s.get("version") != pointer.get("version"):
        raise TrustFault(f"the pointer names {pointer.get('version')} but its signature names "
                         f"{s.get('version')} (tampered or replayed)")
    return v


# ------------------------------------------------------------------------------- what the image serves
def _vtuple(v: str) -> tuple[int, ...]:
    out = []
    for part in str(v).split("."):
        digits = re.match(r"\d+", part)
        out.append(int(digits.group()) if digits else 0)
    return tuple(out)


def image_problem(manifest: dict, *, served_formats, ml_platform_version: str) -> str | None:
    """Why an image (its operator package version and the pipeline formats it serves) cannot serve a
    bundle's manifest, or None. A manifest without the fields (older deploys) is served as before."""
    need = manifest.get("pipeline_formats") or []
    missing = sorted(set(need) - set(served_formats))
    if missing:
        return (f"its DAGs were rendered from pipeline format {', '.join(map(str, missing))}, which this image's "
                f"ml_platform {ml_platform_version} does not serve (it serves {', '.join(map(str, served_formats))}); "
                f"promote an image that does first")
    want = manifest.get("ml_platform_version")
    if want and _vtuple(want) > _vtuple(ml_platform_version):
        return (f"its DAGs were rendered for ml_platform {want}, this image has {ml_platform_version}; promote an "
                f"image with ml_platform >= {want} first")
    return None


def this_image_problem(manifest: dict) -> str | None:
    """image_problem for the image this code runs in."""
    from . import __version__

    return image_problem(manifest, served_formats=SERVED_PIPELINE_FORMATS, ml_platform_version=__version__)
