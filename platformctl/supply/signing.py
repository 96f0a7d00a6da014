"""Image signatures: GPG simple signing by skopeo (`--sign-by`, a lookaside store), checked by skopeo.

Signing (make push, and make release for a digest pushed before a key was configured): skopeo copies the
pushed digest onto its own version tag with `--sign-by <fingerprint> --sign-identity <repo>:<tag>`; the
registry is unchanged (same manifest) and the signature lands in the lookaside store
(`<store>/<repository path>@sha256=<hex>/signature-N`, containers-registries.d's layout).

Verification is skopeo's, never only ours: release and promote copy with `--policy <generated policy.json>`
whose requirement for the source repository is `signedBy` (GPGKeys, keyPaths: the allowed public keys, two
during a rotation) with `matchRepository`; skopeo refuses an unsigned digest, a signature by another key, a
tampered signature before it copies anything. Deploy and status, which copy nothing, ask
`skopeo standalone-verify` about the manifest the registry serves and each signature in the store.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PlatformConfig
from ..environments import Environment, known_environments, load_environment
from ..errors import RegistryAuthError, RegistryError, RegistryUnavailable, SignatureRefused, SigningError
from ..registry.refs import is_local_registry, registry_host
from ..registry.skopeo import Skopeo
from . import gpg

REGISTRIES_D = "default.yaml"


def lookaside_dir(root: Path, cfg: PlatformConfig) -> Path:
    p = Path(cfg.signing.lookaside)
    return p if p.is_absolute() else root / p


def repo_path(repository: str) -> str:
    """`host:port/ml/airflow` -> `ml/airflow` (the lookaside store's folder for the repository)."""
    return repository.split("/", 1)[1] if registry_host(repository) != "docker.io" else repository


def signature_files(store: Path, repository: str, digest: str) -> list[Path]:
    d = store / f"{repo_path(repository)}@{digest.replace(':', '=')}"
    return sorted(d.glob("signature-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name[10:].isdigit() else 0)


@dataclass(frozen=True)
class TrustPolicy:
    """The keys allowed for a set of repositories: what the generated policy.json says."""

    key_paths: tuple[Path, ...]
    repositories: tuple[str, ...]  # the first is where signatures are made (the build repository)
    sources: tuple[str, ...] = ()  # environments whose policy this is (for messages)

    @property
    def empty(self) -> bool:
        return not self.key_paths


def environment_policy(root: Path, cfg: PlatformConfig, env: Environment) -> TrustPolicy | None:
    """The policy of an environment that requires signatures, else None."""
    if not env.signatures.required:
        return None
    repos = [cfg.registry.repository]
    own = env.registry.repository
    if own and own not in repos:
        repos.append(own)
    return TrustPolicy(tuple(_key_path(root, env, k) for k in env.signatures.keys), tuple(repos), (env.name,))


def release_policy(root: Path, cfg: PlatformConfig) -> TrustPolicy | None:
    """make release checks the digest against every key some environment allows, when any requires them."""
    keys: list[Path] = []
    names: list[str] = []
    for name in known_environments(root):
        pol = environment_policy(root, cfg, load_environment(root, name))
        if pol:
            keys += [k for k in pol.key_paths if k not in keys]
            names.append(name)
    return TrustPolicy(tuple(keys), (cfg.registry.repository,), tuple(names)) if keys else None


def _key_path(root: Path, env: Environment, rel: str) -> Path:
    path = root / rel
    if not path.is_file():
        raise SignatureRefused(f"environments/{env.name}.yaml: signatures.keys names {rel}, which does not exist",
                               "commit the armored public key there (gpg --armor --export <FPR>)")
    return path


@dataclass
class Workspace:
    """Generated files skopeo reads: registries.d (the lookaside store), the keyring, policy.json."""

    dir: Path
    store: Path
    registries_d: Path
    keyring: Path | None = None
    policy: Path | None = None
    fingerprints: list[str] = field(default_factory=list)

    def global_args(self) -> list[str]:
        args = [f"--registries.d={self.registries_d}"]
        if self.policy:
            args.append(f"--policy={self.policy}")
        return args


@contextmanager
def workspace(store: Path, policy: TrustPolicy | None = None) -> Iterator[Workspace]:
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="platform-trust-") as d:
        ws = Workspace(Path(d), store.resolve(), Path(d) / "registries.d")
        ws.registries_d.mkdir()
        url = ws.store.as_uri()
        # containers-registries.d(5): the lookaside store for every docker repository
        (ws.registries_d / REGISTRIES_D).write_text(json.dumps(
            {"default-docker": {"lookaside": url, "lookaside-staging": url}}) + "\n")
        if policy and not policy.empty:
            ws.keyring = Path(d) / "allowed.gpg"
            ws.fingerprints = gpg.keyring_file(list(policy.key_paths), ws.keyring)
            ws.policy = Path(d) / "policy.json"
            ws.policy.write_text(json.dumps(policy_json(policy, ws.keyring), indent=2) + "\n")
        yield ws


def policy_json(policy: TrustPolicy, keyring: Path) -> dict:
    """containers-policy.json(5): reject everything but the policy's repositories, each signedBy an allowed key.
    The build repository's signatures are made there; a promoted copy keeps them (exactRepository: any tag
    of the build repository)."""
    first = policy.repositories[0]
    scopes = {}
    for repo in policy.repositories:
        ident = {"type": "matchRepository"} if repo == first else {
            "type": "exactRepository", "dockerRepository": first}
        scopes[repo] = [{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": [str(keyring)],
                         "signedIdentity": ident}]
    return {"default": [{"type": "reject"}], "transports": {"docker": scopes}}


def _tls(ref: str, insecure: set[str], flag: str) -> list[str]:
    return [f"{flag}=false"] if registry_host(ref) in insecure or is_local_registry(ref) else []


# ------------------------------------------------------------------------------------------------ sign
@dataclass(frozen=True)
class Signed:
    repository: str
    digest: str
    fingerprint: str
    identity: str
    signature: str  # path of the signature file in the store


def sign_digest(sk: Skopeo, ws: Workspace, key: gpg.SigningKey, repository: str, digest: str, tag: str) -> Signed:
    """Sign repository@digest as repository:tag: skopeo copies the digest onto the tag it already has (the
    registry does not change) and writes the signature into the lookaside store."""
    identity = f"{repository}:{tag}"
    before = set(signature_files(ws.store, repository, digest))
    extra = ["--sign-by", key.fingerprint, "--sign-identity", identity]
    if key.passphrase_file:
        extra += ["--sign-passphrase-file", key.passphrase_file]
    signer = Skopeo(authfile=sk.authfile, insecure_hosts=sk.insecure_hosts, attempts=sk.attempts, echo=sk.echo,
                    # signing is not a check: the digest may be unsigned yet (the verifying copies use the policy)
                    global_args=[f"--registries.d={ws.registries_d}", "--insecure-policy"],
                    env=None if key.home is None else {**_environ(), "GNUPGHOME": key.home})
    try:
        signer.copy(f"{repository}@{digest}", identity, extra)
    except (RegistryAuthError, RegistryUnavailable):
        raise
    except RegistryError as exc:
        if re.search(r"passphrase|gpg|sign|key", exc.message, re.IGNORECASE):
            raise SigningError(f"skopeo could not sign {repository}@{digest[:19]}: {exc.message}",
                               "check the key and PLATFORM_SIGNING_PASSPHRASE_FILE") from None
        raise
    new = [p for p in signature_files(ws.store, repository, digest) if p not in before]
    sig = new[-1] if new else (signature_files(ws.store, repository, digest) or [None])[-1]
    if sig is None:
        raise SigningError(f"skopeo reported no error but wrote no signature for {repository}@{digest[:19]} "
                           f"into {ws.store}", "check signing.lookaside is writable")
    return Signed(repository, digest, key.fingerprint, identity, str(sig))


def _environ() -> dict[str, str]:
    import os

    return dict(os.environ)


# ---------------------------------------------------------------------------------------------- verify
def copy_verified(sk: Skopeo, ws: Workspace, src: str, dst: str, policy: TrustPolicy) -> None:
    """skopeo copy src -> dst under the generated policy: skopeo refuses (nothing copied) unless src carries a
    valid signature by an allowed key. The signatures travel with the copy into the destination's store path."""
    checker = Skopeo(authfile=sk.authfile, insecure_hosts=sk.insecure_hosts, attempts=sk.attempts, echo=sk.echo,
                     global_args=ws.global_args())
    try:
        checker.copy(src, dst)
    except (RegistryAuthError, RegistryUnavailable):
        raise
    except RegistryError as exc:
        if "rejected" in exc.message or "signature" in exc.message.lower():
            why = exc.message.split(": ", 1)[-1]
            raise SignatureRefused(
                f"{src.split('@')[0]}@{src.split('@')[-1][:19]} has no valid signature from a key allowed for "
                f"{', '.join(policy.sources) or 'this target'} (skopeo: {why})",
                "sign it with an allowed key (PLATFORM_SIGNING_KEY=<fpr> make push) or allow its key in the "
                "environment's signatures.keys") from None
        raise


@dataclass
class SignatureCheck:
    """What standalone verification found for one digest: signed by which allowed key, or why not."""

    digest: str
    signed: bool
    fingerprint: str | None = None
    identity: str | None = None
    note: str = ""


def check_digest(sk: Skopeo, ws: Workspace, repository: str, digest: str, policy: TrustPolicy) -> SignatureCheck:
    """Whether repository@digest has a signature by an allowed key, asked of `skopeo standalone-verify` for each
    signature in the store (the manifest is the registry's; its sha256 must be the digest)."""
    sigs = signature_files(ws.store, repository, digest)
    if not sigs:
        return SignatureCheck(digest, False, note=f"no signature in {ws.store}")
    manifest = sk.raw_manifest(f"{repository}@{digest}")
    if "sha256:" + hashlib.sha256(manifest).hexdigest() != digest:
        return SignatureCheck(digest, False, note="the registry serves a manifest that does not match the digest")
    with tempfile.TemporaryDirectory(prefix="platform-sv-") as d:
        mf = Path(d) / "manifest.json"
        mf.write_bytes(manifest)
        home = Path(d) / "gnupg"
        home.mkdir(mode=0o700)
        env = {**_environ(), "GNUPGHOME": str(home)}
        if ws.keyring:
            subprocess.run(["gpg", "--batch", "--import", str(ws.keyring)], env=env, capture_output=True)
        notes = []
        for sig in sigs:
            identity = _signed_identity(sig, env)
            if identity is None:
                notes.append(f"{sig.name}: unreadable")
                continue
            if identity.rsplit(":", 1)[0].rsplit("@", 1)[0] not in policy.repositories:
                notes.append(f"{sig.name}: signed for {identity}, not {' or '.join(policy.repositories)}")
                continue
            for fpr in ws.fingerprints:
                p = subprocess.run(["skopeo", "standalone-verify", str(mf), identity, fpr, str(sig)], env=env,
                                   capture_output=True, text=True)
                if p.returncode == 0:
                    return SignatureCheck(digest, True, fpr, identity)
            notes.append(f"{sig.name}: not by an allowed key")
        return SignatureCheck(digest, False, note="; ".join(notes))


def _signed_identity(sig: Path, env: dict[str, str]) -> str | None:
    """The docker-reference a simple-signing signature claims (read only to ask skopeo about it)."""
    p = subprocess.run(["gpg", "--batch", "--skip-verify", "--decrypt", str(sig)], env=env, capture_output=True)
    try:
        return json.loads(p.stdout)["critical"]["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return None


def require_signed(sk: Skopeo, ws: Workspace, repository: str, digest: str, policy: TrustPolicy) -> SignatureCheck:
    chk = check_digest(sk, ws, repository, digest, policy)
    if not chk.signed:
        raise SignatureRefused(f"{repository}@{digest[:19]} has no valid signature from a key allowed for "
                               f"{', '.join(policy.sources)} ({chk.note})",
                               "promote a release signed by an allowed key (make push signs with "
                               "PLATFORM_SIGNING_KEY)")
    return chk
