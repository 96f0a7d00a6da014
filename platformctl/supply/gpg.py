"""GnuPG behind a small interface: the signing key (from the environment or CI secrets), private keyrings of
allowed public keys, detached signatures, and verification with gpgv (a standard tool, not our code).

The signing key is named by its fingerprint (PLATFORM_SIGNING_KEY or platform.yaml signing.key). It is taken
from the keyring at GNUPGHOME, or, in CI, from an armored secret key in the file PLATFORM_SIGNING_KEY_FILE
(imported into a private, temporary GNUPGHOME that is removed afterwards). A passphrase, if the key has one,
is read from PLATFORM_SIGNING_PASSPHRASE_FILE and handed to gpg and skopeo as a file, never on a command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SigningError, ToolMissingError

_FPR = re.compile(r"^[0-9A-F]{40}$")


def gpg_binary() -> str:
    found = shutil.which("gpg")
    if not found:
        raise ToolMissingError("gpg is not installed", "apt-get install gnupg (make build installs it on Debian)")
    return found


def _run(args: list[str], *, home: str | None, input: bytes | None = None, timeout: int = 60
         ) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if home:
        env["GNUPGHOME"] = home
    return subprocess.run(args, input=input, capture_output=True, env=env, timeout=timeout)


def _last(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no output"


@contextmanager
def private_home() -> Iterator[str]:
    """A fresh GNUPGHOME (0700) removed afterwards; its agent is stopped too."""
    home = tempfile.mkdtemp(prefix="platform-gnupg-")
    os.chmod(home, 0o700)
    try:
        yield home
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": home},
                       capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def fingerprints(key_bytes: bytes) -> list[str]:
    """The primary-key fingerprints in armored or binary public key material (no keyring touched)."""
    p = _run([gpg_binary(), "--batch", "--with-colons", "--import-options", "show-only", "--import"],
             home=None, input=key_bytes)
    out = p.stdout.decode(errors="replace").splitlines()
    fprs, want = [], False
    for line in out:
        f = line.split(":")
        if f[0] in ("pub", "sec"):
            want = True
        elif f[0] == "fpr" and want:
            fprs.append(f[9])
            want = False
    return fprs


def keyring_file(key_paths: list[Path], dest: Path) -> list[str]:
    """Write the allowed public keys into one binary keyring file at dest (what policy.json's keyPaths and
    gpgv read); returns their fingerprints. A file that holds no public key is a SigningError naming it."""
    out = b""
    fprs: list[str] = []
    with private_home() as home:
        for path in key_paths:
            data = path.read_bytes()
            found = fingerprints(data)
            if not found:
                raise SigningError(f"{path}: holds no GPG public key", "export one: gpg --armor --export <FPR>")
            p = _run([gpg_binary(), "--batch", "--import"], home=home, input=data)
            if p.returncode:
                raise SigningError(f"{path}: gpg cannot import it ({_last(p.stderr)})")
            fprs += found
        p = _run([gpg_binary(), "--batch", "--export", *fprs], home=home)
        out = p.stdout
    dest.write_bytes(out)
    return fprs


@dataclass(frozen=True)
class SigningKey:
    """The key make push signs with: its fingerprint, the GNUPGHOME holding it, its passphrase file."""

    fingerprint: str
    home: str | None  # None: the user's default GNUPGHOME
    passphrase_file: str | None = None

    def __repr__(self) -> str:
        return f"SigningKey({self.fingerprint})"


@contextmanager
def signing_key(configured: str | None, environ: dict[str, str] | None = None) -> Iterator[SigningKey | None]:
    """The configured signing key, ready to sign with, or None when none is configured.

    A key named but absent from the keyring, an unreadable key file and a wrong passphrase are SigningErrors
    raised here, before anything is pushed or tagged."""
    env = os.environ if environ is None else environ
    fpr = (env.get("PLATFORM_SIGNING_KEY") or configured or "").replace(" ", "").upper()
    key_file = env.get("PLATFORM_SIGNING_KEY_FILE") or ""
    pass_file = env.get("PLATFORM_SIGNING_PASSPHRASE_FILE") or None
    if not fpr and not key_file:
        yield None
        return
    if pass_file and not Path(pass_file).is_file():
        raise SigningError(f"PLATFORM_SIGNING_PASSPHRASE_FILE={pass_file} is not a file",
                           "point it at a file holding the key's passphrase")
    if key_file:
        path = Path(key_file)
        if not path.is_file():
            raise SigningError(f"PLATFORM_SIGNING_KEY_FILE={key_file} is not a file",
                               "point it at the armored secret key (a CI secret)")
        with private_home() as home:
            p = _run([gpg_binary(), "--batch", "--import"], home=home, input=path.read_bytes())
            if p.returncode:
                raise SigningError(f"PLATFORM_SIGNING_KEY_FILE: gpg cannot import it ({_last(p.stderr)})",
                                   "it must be an armored secret key: gpg --armor --export-secret-keys <FPR>")
            secret = _secret_fingerprints(home)
            if not secret:
                raise SigningError("PLATFORM_SIGNING_KEY_FILE holds no secret key",
                                   "export it with gpg --armor --export-secret-keys <FPR>")
            fpr = fpr or secret[0]
            key = SigningKey(fpr, home, pass_file)
            _check(key, secret)
            yield key
        return
    if not _FPR.match(fpr):
        raise SigningError(f"signing key {fpr!r} is not a 40-hex-digit GPG fingerprint",
                           "set PLATFORM_SIGNING_KEY / signing.key to the key's full fingerprint")
    home = env.get("GNUPGHOME") or None
    key = SigningKey(fpr, home, pass_file)
    _check(key, _secret_fingerprints(home))
    yield key


def _secret_fingerprints(home: str | None) -> list[str]:
    p = _run([gpg_binary(), "--batch", "--with-colons", "--list-secret-keys"], home=home)
    fprs, want = [], False
    for line in p.stdout.decode(errors="replace").splitlines():
        f = line.split(":")
        if f[0] == "sec":
            want = True
        elif f[0] == "fpr" and want:
            fprs.append(f[9])
            want = False
    return fprs


def _check(key: SigningKey, secret: list[str]) -> None:
    if key.fingerprint not in secret:
        raise SigningError(f"no secret key {key.fingerprint} in the GPG keyring"
                           + (f" at GNUPGHOME={key.home}" if key.home else ""),
                           "import it (gpg --import), or set PLATFORM_SIGNING_KEY_FILE to the armored secret key")
    detached_sign(key, b"platform signing check")  # a wrong passphrase fails here, before any push or tag


def detached_sign(key: SigningKey, data: bytes) -> bytes:
    """A binary detached OpenPGP signature of data by key (what `gpg --verify sig data` checks)."""
    args = [gpg_binary(), "--batch", "--yes", "--no-tty", "--local-user", key.fingerprint, "--detach-sign"]
    if key.passphrase_file:
        args[1:1] = ["--pinentry-mode", "loopback", "--passphrase-file", key.passphrase_file]
    p = _run(args + ["--output", "-"], home=key.home, input=data)
    if p.returncode or not p.stdout:
        msg = _last(p.stderr)
        if re.search(r"bad passphrase|no passphrase|inappropriate ioctl|no pinentry|operation cancelled", msg, re.IGNORECASE):
            raise SigningError(f"gpg could not unlock signing key {key.fingerprint} ({msg})",
                               "check the passphrase in PLATFORM_SIGNING_PASSPHRASE_FILE")
        raise SigningError(f"gpg could not sign with {key.fingerprint} ({msg})")
    return p.stdout


def verify_detached(keyring: Path, signature: bytes, data: bytes) -> str | None:
    """The fingerprint of the allowed key (in keyring) that made signature over data, or None. gpgv checks."""
    gpgv = shutil.which("gpgv")
    if not gpgv:
        raise ToolMissingError("gpgv is not installed", "apt-get install gpgv")
    with tempfile.TemporaryDirectory(prefix="platform-verify-") as d:
        sig, dat = Path(d) / "sig", Path(d) / "data"
        sig.write_bytes(signature)
        dat.write_bytes(data)
        p = subprocess.run([gpgv, "--status-fd", "1", "--keyring", str(keyring.resolve()), str(sig), str(dat)],
                           capture_output=True, env={**os.environ, "GNUPGHOME": d})
    for line in p.stdout.decode(errors="replace").splitlines():
        f = line.split()
        if p.returncode == 0 and len(f) > 2 and f[1] == "VALIDSIG":
            return f[-1] if _FPR.match(f[-1]) else f[2]
    return None
