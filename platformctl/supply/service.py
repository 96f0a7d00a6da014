"""The supply-chain steps of push, release, promote, deploy and status: small functions the registry and deploy
code call at one place each (services/ship.py, services/deploy.py, status.py).

Order, so nothing is half-done:
- push: the signing key is unlocked and the SBOM made BEFORE any upload (a wrong passphrase or an image
  without a Python environment pushes nothing); after the push the SBOM and the signed provenance are
  attached and the digest is signed.
- release: the digest's signature is checked (and made, when the digest was pushed unsigned and a key is
  configured) BEFORE the release tag names it; every tag is then copied by skopeo under the policy.
- promote: skopeo copies under the environment's policy: it refuses what is not signed by an allowed key,
  and nothing reaches the environment's repository.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import PlatformConfig
from ..engine import ContainerEngine
from ..environments import Environment
from ..errors import SignatureRefused
from ..output import say
from ..record import BuildRecord
from ..registry.auth import Credentials
from ..registry.skopeo import Skopeo
from . import attach, gpg, provenance, sbom, signing

Copier = Callable[[str, str], None]


@dataclass
class PushTrust:
    """What push attaches and signs; `seconds` per step (make bench-push reports them)."""

    root: Path
    cfg: PlatformConfig
    rec: BuildRecord
    engine: ContainerEngine
    key: gpg.SigningKey | None
    sbom: sbom.SbomResult
    seconds: dict[str, float] = field(default_factory=dict)
    result: dict = field(default_factory=dict)

    def finish(self, sk: Skopeo, creds: Credentials | None, repository: str, digest: str, tag: str,
               echo=say) -> dict:
        """Attach the SBOM and the signed provenance to repository@digest and sign the digest: the three
        are independent (the provenance names the SBOM's sha256, known already), so they run at once."""
        insecure = set(self.cfg.registry.insecure_hosts)

        def timed(name: str, fn):
            def run():
                t = time.perf_counter()
                try:
                    return fn()
                finally:
                    self.seconds[name] = round(time.perf_counter() - t, 3)
            return run

        def make_provenance() -> Path | None:
            if not self.key:
                return None
            stmt = provenance.statement(self.root, self.cfg, self.rec, repository, digest, self.engine,
                                        self.sbom.sha256)
            path = self.root / provenance.PATH
            path.write_text(json.dumps(provenance.envelope(stmt, self.key), indent=2, sort_keys=True) + "\n")
            return path

        def sign():
            if not self.key:
                return None
            with signing.workspace(signing.lookaside_dir(self.root, self.cfg)) as ws:
                return signing.sign_digest(sk, ws, self.key, repository, digest, tag)

        t0 = time.perf_counter()
        attacher = attach.Attacher(repository, creds, insecure)
        subject = attacher.subject(digest)
        with ThreadPoolExecutor(max_workers=3) as pool:
            f_prov = pool.submit(timed("provenance", make_provenance))
            f_sbom = pool.submit(timed("attach", lambda: attacher.attach(
                digest, self.sbom.path, sbom.MEDIA_TYPE, attach.SBOM_SUFFIX, subject)))
            f_sign = pool.submit(timed("sign", sign))
            prov_path = f_prov.result()
            att_prov = attacher.attach(digest, prov_path, provenance.MEDIA_TYPE, attach.ATT_SUFFIX, subject) \
                if prov_path else None
            att = attach.AttachResult(f_sbom.result(), att_prov)
            signed = f_sign.result()
        self.seconds["wall"] = round(time.perf_counter() - t0, 3)
        echo(f"  SBOM attached: {att.sbom.reference} ({self.sbom.components} components)")
        if att.provenance:
            echo(f"  provenance (in-toto/SLSA, DSSE signed by {self.key.fingerprint[-16:]}) attached: "
                 f"{att.provenance.reference}")
        if signed:
            echo(f"  signed {repository}@{digest[:19]} with {signed.fingerprint[-16:]} (signature "
                 f"{Path(signed.signature).relative_to(signing.lookaside_dir(self.root, self.cfg).resolve())} in "
                 f"{self.cfg.signing.lookaside})")
        else:
            echo("  not signed: no signing key (set PLATFORM_SIGNING_KEY or signing.key); no provenance attached; "
                 "environments that require signatures will refuse this digest")
        echo("  supply chain steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.seconds.items())
             + " (provenance, attach and sign run at once: wall is their total)")
        self.result = {"sbom": asdict(att.sbom), "provenance": asdict(att.provenance) if att.provenance else None,
                       "signature": asdict(signed) if signed else None, "seconds": self.seconds}
        self.rec.extra["supply"] = {"digest": digest, "sbom_sha256": self.sbom.sha256,
                                    "signed_by": signed.fingerprint if signed else None}
        return self.result


def attached_sbom(rec: BuildRecord) -> str | None:
    """Where make push attached the SBOM of this record's image (repo:sha256-<hex>.sbom), or None: not pushed,
    or pushed before it was attached (the record's "supply" entry names the digest it was attached to)."""
    supplied = rec.extra.get("supply") or {}
    if rec.digest and supplied.get("digest") == rec.digest:
        return f"{rec.repository}:{attach.attachment_tag(rec.digest, attach.SBOM_SUFFIX)}"
    return None


@contextmanager
def push_trust(root: Path, cfg: PlatformConfig, rec: BuildRecord, engine: ContainerEngine,
               echo=say) -> Iterator[PushTrust]:
    """Before the push: unlock the signing key (if any) and have the image's SBOM (made by make build, or now)."""
    t = time.perf_counter()
    with gpg.signing_key(cfg.signing.key) as key:
        t_key = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        made = sbom.current(root, rec)
        if made is None:
            echo("  making the image's SBOM (once per image; make sbom makes it ahead)")
            made = sbom.generate(root, cfg, engine, rec)
        trust = PushTrust(root, cfg, rec, engine, key, made, {"key": t_key, "sbom": round(time.perf_counter() - t, 3)})
        yield trust


# ------------------------------------------------------------------------------------ release / promote
@contextmanager
def release_copier(root: Path, cfg: PlatformConfig, sk: Skopeo, repository: str, digest: str, tag: str,
                   echo=say) -> Iterator[Copier]:
    """How release copies the digest to its tags: plain when no environment requires signatures; otherwise
    the digest is signed first if needed (key configured) and every copy runs under the policy."""
    policy = signing.release_policy(root, cfg)
    if policy is None:
        yield sk.copy
        return
    with signing.workspace(signing.lookaside_dir(root, cfg), policy) as ws:
        chk = signing.check_digest(sk, ws, repository, digest, policy)
        if not chk.signed:
            with gpg.signing_key(cfg.signing.key) as key:
                if key is None:
                    raise SignatureRefused(
                        f"{repository}@{digest[:19]} is not signed ({chk.note}) and no signing key is configured; "
                        f"{', '.join(policy.sources)} require(s) signatures",
                        "set PLATFORM_SIGNING_KEY (or PLATFORM_SIGNING_KEY_FILE) and run make release again")
                signing.sign_digest(sk, ws, key, repository, digest, tag)
                echo(f"  signed {repository}@{digest[:19]} with {key.fingerprint[-16:]} before tagging it")
        else:
            echo(f"  signature by {chk.fingerprint[-16:]} verified (skopeo standalone-verify)")
        yield lambda src, dst: signing.copy_verified(sk, ws, src, dst, policy)


@contextmanager
def promote_copier(root: Path, cfg: PlatformConfig, env: Environment, sk: Skopeo, repository: str, digest: str,
                   echo=say) -> Iterator[Copier]:
    """How promote copies: under the environment's policy when it requires signatures (checked before the
    copy too, so an already-promoted unsigned digest is refused as well)."""
    policy = signing.environment_policy(root, cfg, env)
    if policy is None:
        yield sk.copy
        return
    with signing.workspace(signing.lookaside_dir(root, cfg), policy) as ws:
        chk = signing.require_signed(sk, ws, repository, digest, policy)
        echo(f"  {env.name} requires signatures: {digest[:19]} signed by {chk.fingerprint[-16:]} (verified by skopeo)")
        yield lambda src, dst: signing.copy_verified(sk, ws, src, dst, policy)


def check_deploy(root: Path, cfg: PlatformConfig, env: Environment, image: dict, sk: Skopeo, echo=say) -> None:
    """make deploy to an environment that requires signatures: the image it names must be signed."""
    policy = signing.environment_policy(root, cfg, env)
    if policy is None:
        return
    digest, repo = image.get("digest"), image.get("repository")
    if not digest or not repo:
        raise SignatureRefused(f"{env.name} requires signed images, but the deploy names no pushed digest",
                               f"make promote ENV={env.name} VERSION=X.Y.Z first")
    with signing.workspace(signing.lookaside_dir(root, cfg), policy) as ws:
        chk = signing.require_signed(sk, ws, repo, digest, policy)
    echo(f"  image {digest[:19]} signed by {chk.fingerprint[-16:]} (verified by skopeo)")


def signature_status(root: Path, cfg: PlatformConfig, env: Environment, sk: Skopeo, repository: str,
                     digest: str) -> dict:
    """make status: is the running digest signed, by which allowed key (environments without a policy: any
    signature in the store is reported, checked against nothing)."""
    policy = signing.environment_policy(root, cfg, env)
    if policy is None:
        files = signing.signature_files(signing.lookaside_dir(root, cfg), repository, digest)
        return {"required": False, "signed": bool(files), "key": None,
                "note": f"{len(files)} signature(s) in the store, not checked (no policy)" if files else "unsigned"}
    with signing.workspace(signing.lookaside_dir(root, cfg), policy) as ws:
        chk = signing.check_digest(sk, ws, repository, digest, policy)
    return {"required": True, "signed": chk.signed, "key": chk.fingerprint, "note": chk.note}


# ------------------------------------------------------------------------------------------ make build
def before_build(root: Path, cfg: PlatformConfig, echo=say) -> None:
    """audit.on_build: make audit gates the build (AuditFailed / AuditError stop it before anything is built)."""
    if not cfg.audit.on_build:
        return
    from .audit import audit, gate

    res = audit(root, cfg)
    gate(res)
    echo(f"audit passed: {res.packages} pins in {len(res.locks)} locks against {res.osv_url} ({res.seconds}s)")


def after_build(root: Path, cfg: PlatformConfig, engine: ContainerEngine, rec: BuildRecord, echo=say) -> None:
    """sbom.on_build: a tested image gets its SBOM next to the build record now (else make push makes it)."""
    if not rec.tested or not cfg.sbom.on_build:
        return
    t = time.perf_counter()
    res = sbom.ensure(root, cfg, engine, rec)
    rec.timings["sbom"] = round(time.perf_counter() - t, 2)
    rec.save(root)
    echo(f"  sbom:     {res.path.relative_to(root)} ({res.summary()})")
