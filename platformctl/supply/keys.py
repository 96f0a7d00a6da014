"""`make image-key ENV=prod`: a new GPG key for signing an environment's images, set up the way the rest
of issue 37 reads it (docs/supply-chain.md):

- the key pair is made in the keyring `make push` signs from (GNUPGHOME, or gpg's default);
- its public half is written to keys/<env>/<name>.asc (to commit);
- environments/<env>.yaml gets `signatures: {required: true, keys: [...]}` (the key appended when the
  environment already lists others: a rotation), edited round-trip so comments and layout stay;
- this machine remembers `signing.key: <fingerprint>` in .platform/local.yaml, so `make push` signs with it.

CI does not run this: it is given the armored secret key as a secret (PLATFORM_SIGNING_KEY_FILE).
Nothing is written unless the key was made: a name already used, or an environment file that cannot be
edited, is refused before gpg runs.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import machine
from ..environments import environment_file
from ..errors import ConfigError, SigningError
from ..yamlfile import round_trip_yaml
from .gpg import _last, _run, gpg_binary

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class ImageKey:
    """What `make image-key` made and changed."""

    fingerprint: str
    public_key: str  # keys/<env>/<name>.asc, relative to the repository
    environment_file: str  # environments/<env>.yaml
    keys: tuple[str, ...]  # the environment's signatures.keys now
    gnupg_home: str | None  # None: gpg's default keyring
    remembered: bool  # signing.key written to .platform/local.yaml


def _environment_file(root: Path, env: str) -> Path:
    path, rel = environment_file(root, env)  # a name that is not one, an unknown environment: the usual line
    if not path.is_file():
        raise ConfigError(f"environment '{env}' is built in and has no file to list the key in",
                          f"create {rel} (make image-key then adds the signatures block)", where=rel)
    return path


def _drop_commented_example(text: str) -> str:
    """The shipped environment files show the block commented out (`# signatures:` and its `#   ` lines):
    the real block replaces it."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if re.match(r"^# signatures:\s*$", line):
            skipping = True
            continue
        if skipping and re.match(r"^#\s{2,}\S", line):
            continue
        skipping = False
        out.append(line)
    return "".join(out)


def _with_key(text: str, rel_env: str, key_path: str) -> tuple[str, tuple[str, ...]]:
    """The environment file's text with signatures.required true and key_path listed in signatures.keys."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    y = round_trip_yaml()
    try:
        doc = y.load(_drop_commented_example(text))
    except Exception as exc:  # ruamel's errors have no common public base worth naming here
        raise ConfigError(f"cannot be edited: {str(exc).splitlines()[0]}", f"fix {rel_env} first",
                          where=rel_env) from None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise ConfigError("must be a mapping of settings", f"fix {rel_env} first", where=rel_env)
    sig = doc.get("signatures")
    if sig is None:
        sig = CommentedMap()
        doc["signatures"] = sig
    if not isinstance(sig, dict):
        raise ConfigError("signatures must be a mapping (required, keys)", f"fix {rel_env} first", where=rel_env)
    keys = sig.get("keys")
    if keys is None:
        keys = sig["keys"] = CommentedSeq()
    if not isinstance(keys, list):
        raise ConfigError("signatures.keys must be a list of key files", f"fix {rel_env} first", where=rel_env)
    if not keys:
        keys.fa.set_flow_style()  # a new or empty list is written on one line: keys: [keys/prod/a.asc]
    if key_path not in keys:
        keys.append(key_path)
    sig["required"] = True
    if list(sig)[0] != "required":  # required first, as the docs show it
        sig.move_to_end("keys")
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue(), tuple(str(k) for k in keys)


def new_image_key(root: Path, env: str, name: str, *, passphrase_file: Path | None = None,
                  environ: dict[str, str] | None = None) -> ImageKey:
    environ = os.environ if environ is None else environ
    if not _NAME.match(name):
        raise ConfigError(f"key name {name!r} is not a simple file name",
                          "lower-case letters, digits, '.', '_' and '-', e.g. NAME=release-2026")
    env_path = _environment_file(root, env)
    rel_env = str(env_path.relative_to(root))
    rel_key = f"keys/{env}/{name}.asc"
    key_file = root / rel_key
    if key_file.exists():
        raise ConfigError("the key file exists already", "choose another NAME= (a rotation keeps the old key listed "
                          "until nothing running is signed by it only)", where=rel_key)
    if passphrase_file is not None and not passphrase_file.is_file():
        raise SigningError(f"passphrase file {passphrase_file} is not a file", "point PASSPHRASE_FILE= at one")
    new_text, keys = _with_key(env_path.read_text(), rel_env, rel_key)  # refused here, before gpg runs

    home = environ.get("GNUPGHOME") or None
    if home:
        Path(home).mkdir(mode=0o700, parents=True, exist_ok=True)
    params = (f"Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\nName-Real: ml-platform {env} images ({name})\n"
              f"Name-Email: {name}@{env}.ml-platform.invalid\nExpire-Date: 0\n"
              + ("%no-protection\n" if passphrase_file is None else "")
              + "%commit\n")
    args = [gpg_binary(), "--batch", "--status-fd", "1", "--gen-key"]
    if passphrase_file is not None:
        args[1:1] = ["--pinentry-mode", "loopback", "--passphrase-file", str(passphrase_file)]
    p = _run(args, home=home, input=params.encode(), timeout=120)
    made = [ln.split()[-1] for ln in p.stdout.decode(errors="replace").splitlines() if ln.startswith("[GNUPG:] KEY_CREATED")]
    if p.returncode or not made:
        raise SigningError(f"gpg could not make the key ({_last(p.stderr)})",
                           "check that GNUPGHOME is writable and gpg-agent can start")
    fpr = made[0]
    exported = _run([gpg_binary(), "--batch", "--armor", "--export", fpr], home=home)
    if exported.returncode or not exported.stdout:
        raise SigningError(f"gpg could not export the public key {fpr} ({_last(exported.stderr)})")
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(exported.stdout)
    tmp = env_path.with_suffix(".yaml.tmp")
    tmp.write_text(new_text)
    tmp.replace(env_path)
    remembered = bool(machine.remember(root, {"signing.key": fpr}))
    return ImageKey(fpr, rel_key, rel_env, keys, home, remembered)

