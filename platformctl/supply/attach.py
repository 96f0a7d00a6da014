"""SBOM and provenance attached to an image digest in the registry, with the `oras` SDK.

Each is an OCI artifact manifest whose `subject` is the image (a registry with the referrers API lists it
under the image digest) and which is tagged as cosign tags its attachments, so a registry without that API
(distribution 2.8, the local one) serves it too: `sha256-<hex>.sbom` (CycloneDX JSON) and `sha256-<hex>.att`
(the DSSE envelope). Pulled back, the SBOM's sha256 and the provenance's subject are checked against the
image (a tampered artifact is refused with one line).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import RegistryAuthError, RegistryUnavailable, SbomError
from ..registry.auth import Credentials
from ..registry.refs import is_local_registry, registry_host
from . import provenance as prov
from .sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE

SBOM_SUFFIX, ATT_SUFFIX = "sbom", "att"
ANNOTATION_SHA = "io.ml-platform.content.sha256"


def attachment_tag(digest: str, suffix: str) -> str:
    return f"{digest.replace(':', '-')}.{suffix}"


@dataclass(frozen=True)
class Attached:
    reference: str  # repo:sha256-<hex>.<suffix>
    digest: str  # the artifact manifest's digest
    media_type: str
    sha256: str  # of the attached file


def _import_oras():
    """oras imports jsonschema, which loads its optional rfc3987-syntax checker for the `iri` format: that
    compiles a grammar at import (6 s on this machine, more than the whole attach). oras checks manifests
    against their structure only (no `iri` format), so that optional checker is left out of this process."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # ImportError: jsonschema skips it
    import oras.provider

    return oras.provider


class Attacher:
    """An oras client for one repository's registry (plain HTTP for local/insecure hosts)."""

    def __init__(self, repository: str, creds: Credentials | None, insecure_hosts: set[str] = frozenset()):
        provider = _import_oras()

        logging.getLogger("oras").setLevel(logging.WARNING)
        self.repository = repository
        host = registry_host(repository)
        insecure = host in insecure_hosts or is_local_registry(repository)
        backend = self._auth_scheme(host, insecure)
        self.reg = provider.Registry(hostname=host, insecure=insecure, tls_verify=not insecure, auth_backend=backend)
        if creds:
            self.reg.auth.set_basic_auth(creds.username, creds.password)
        else:  # Docker's own store (config.json, credential helpers), where the engine and skopeo find it too
            docker_config = os.environ.get("DOCKER_CONFIG")  # oras itself looks at ~/.docker only
            self.reg.auth.load_configs(self.reg.get_container(repository),
                                       [str(Path(docker_config) / "config.json")] if docker_config else None)
            if backend == "basic" and getattr(self.reg.auth, "_basic_auth", None) is None:
                raise RegistryAuthError(f"no credentials for {host} (its registry asks for a login)",
                                        "set REGISTRY_USERNAME/REGISTRY_PASSWORD or `docker login <registry>`")

    @staticmethod
    def _auth_scheme(host: str, insecure: bool) -> str:
        """oras's "basic" backend for a registry that challenges with Basic (htpasswd), else "token" (Bearer)."""
        import requests

        try:
            r = requests.get(f"{'http' if insecure else 'https'}://{host}/v2/", timeout=10)
            challenge = r.headers.get("WWW-Authenticate", "")
        except requests.RequestException:
            challenge = ""
        return "basic" if challenge.lower().startswith("basic") else "token"

    def _call(self, what: str, fn):
        import requests

        try:
            return fn()
        except requests.ConnectionError as exc:
            raise RegistryUnavailable(f"{what}: registry unavailable ({type(exc).__name__})",
                                      "check the registry is up, then run the command again") from None
        except ValueError as exc:
            msg = str(exc)
            if "401" in msg or "403" in msg or "nauthorized" in msg:
                raise RegistryAuthError(f"{what}: the registry refused the credentials",
                                        "set REGISTRY_USERNAME/REGISTRY_PASSWORD") from None
            raise SbomError(f"{what}: {msg.splitlines()[0][:300]}") from None

    def subject(self, digest: str) -> object:
        import oras.oci

        manifest = self._call(f"read {self.repository}@{digest[:19]}", lambda: self.reg.do_request(
            f"{self.reg.prefix}://{self.reg.get_container(f'{self.repository}@{digest}').manifest_url()}", "HEAD",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                               "application/vnd.docker.distribution.manifest.v2+json"}))
        if manifest.status_code != 200:
            raise SbomError(f"{self.repository}@{digest[:19]} is not in the registry ({manifest.status_code})",
                            "run make push")
        return oras.oci.Subject(mediaType=manifest.headers.get("Content-Type", "").split(";")[0],
                                digest=digest, size=int(manifest.headers.get("Content-Length") or 0))

    def attach(self, digest: str, path: Path, media_type: str, suffix: str, subject=None) -> Attached:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        ref = f"{self.repository}:{attachment_tag(digest, suffix)}"
        subject = subject or self.subject(digest)
        with tempfile.TemporaryDirectory(prefix="platform-attach-") as d:
            blob = Path(d) / path.name
            blob.write_bytes(data)
            resp = self._call(f"attach {path.name} to {self.repository}@{digest[:19]}", lambda: self.reg.push(
                target=ref, files=[f"{blob}:{media_type}"], disable_path_validation=True,
                manifest_annotations={ANNOTATION_SHA: sha, "org.opencontainers.image.ref.name": digest},
                subject=subject, quiet=True))
        return Attached(ref, resp.headers.get("Docker-Content-Digest", ""), media_type, sha)

    def fetch(self, digest: str, suffix: str) -> bytes | None:
        """The attached file for digest, or None when there is none. Its layer's digest is checked by oras."""
        ref = f"{self.repository}:{attachment_tag(digest, suffix)}"
        import requests

        try:
            manifest = self.reg.get_manifest(ref)
        except ValueError as exc:
            if "404" in str(exc) or "MANIFEST_UNKNOWN" in str(exc) or "not found" in str(exc).lower():
                return None
            raise SbomError(f"read {ref}: {str(exc).splitlines()[0][:300]}") from None
        except requests.ConnectionError:
            raise RegistryUnavailable(f"read {ref}: registry unavailable", "check the registry is up") from None
        subject = (manifest.get("subject") or {}).get("digest")
        if subject and subject != digest:
            raise SbomError(f"{ref} is attached to {subject[:19]}, not {digest[:19]}", "push the image again")
        layers = manifest.get("layers") or []
        if len(layers) != 1:
            raise SbomError(f"{ref} has {len(layers)} layers, expected 1", "push the image again")
        with tempfile.TemporaryDirectory(prefix="platform-fetch-") as d:
            out = Path(d) / "blob"
            container = self.reg.get_container(ref)
            self._call(f"read {ref}", lambda: self.reg.download_blob(container, layers[0]["digest"], str(out)))
            data = out.read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != layers[0]["digest"]:
            raise SbomError(f"{ref}: the blob does not match its digest", "the registry served altered content")
        return data


@dataclass(frozen=True)
class AttachResult:
    sbom: Attached
    provenance: Attached | None


def attach_all(repository: str, digest: str, creds: Credentials | None, insecure: set[str], sbom_path: Path,
               provenance_path: Path | None) -> AttachResult:
    a = Attacher(repository, creds, insecure)
    subject = a.subject(digest)
    s = a.attach(digest, sbom_path, SBOM_MEDIA_TYPE, SBOM_SUFFIX, subject)
    p = a.attach(digest, provenance_path, prov.MEDIA_TYPE, ATT_SUFFIX, subject) if provenance_path else None
    return AttachResult(s, p)


@dataclass(frozen=True)
class AttachmentCheck:
    sbom_sha256: str | None
    components: int
    provenance: prov.ProvenanceCheck | None


def verify_attached(repository: str, digest: str, creds: Credentials | None, insecure: set[str],
                    keyring: Path | None, expected_sbom_sha256: str | None = None) -> AttachmentCheck:
    """Pull the SBOM and provenance attached to repository@digest and check them: the provenance's signature
    (gpgv, against keyring) and subject, and that it names the attached SBOM's sha256 (when it names one)."""
    a = Attacher(repository, creds, insecure)
    sbom = a.fetch(digest, SBOM_SUFFIX)
    if sbom is None:
        raise SbomError(f"{repository}@{digest[:19]} has no SBOM attached", "run make push")
    sha = hashlib.sha256(sbom).hexdigest()
    if expected_sbom_sha256 and sha != expected_sbom_sha256:
        raise SbomError(f"the SBOM attached to {digest[:19]} (sha256 {sha[:12]}) is not the one make build "
                        f"recorded ({expected_sbom_sha256[:12]})", "a tampered artifact: push the image again")
    try:
        comps = len(json.loads(sbom).get("components", []))
    except ValueError:
        raise SbomError(f"the SBOM attached to {digest[:19]} is not JSON", "push the image again") from None
    att = a.fetch(digest, ATT_SUFFIX)
    check = None
    if att is not None:
        envelope = json.loads(att)
        check = prov.verify(envelope, keyring, digest)
        from securesystemslib.dsse import Envelope

        stmt = json.loads(Envelope.from_dict(envelope).payload)
        named = [d.get("digest", {}).get("sha256") for d in
                 stmt["predicate"]["buildDefinition"]["resolvedDependencies"] if d.get("name") == "sbom"]
        if named and named[0] != sha:
            raise SbomError(f"the SBOM attached to {digest[:19]} (sha256 {sha[:12]}) does not match the one its "
                            f"signed provenance names ({named[0][:12]})", "a tampered SBOM: push the image again")
    return AttachmentCheck(sha, comps, check)
