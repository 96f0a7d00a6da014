"""`make sbom`, `make audit`, `make verify-image` (issue 37): thin commands over platformctl/supply."""

from __future__ import annotations

import json

from ..config import collect_overrides, load_config
from ..output import say


def cmd_sbom(root, args) -> int:
    from ..engine import connect
    from ..registry.records import load_build
    from ..supply import sbom
    from ..supply.service import attached_sbom

    cfg = load_config(root, collect_overrides(args.sets))
    rec = load_build(root)
    res = None if args.force else sbom.current(root, rec)
    if res is None:
        say(f"making the SBOM of {rec.image} ({(rec.image_id or '')[:19]}) from its installed environment")
        res = sbom.generate(root, cfg, connect(cfg.image.docker), rec)
    say(f"SBOM: {res.path.relative_to(root)} for image {res.image_id[:19]} (Python {res.python})")
    say(f"  {res.summary()}")
    ref = attached_sbom(rec)
    say(f"  attached to {rec.repository}@{rec.digest[:19]} as {ref}" if ref
        else "  not attached yet: make push attaches it to the pushed digest")
    return 0


def cmd_audit(root, args) -> int:
    from ..supply.audit import audit, gate

    cfg = load_config(root, collect_overrides(args.sets))
    res = audit(root, cfg)
    if args.json:
        say(json.dumps({"ok": res.ok, "packages": res.packages, "locks": res.locks, "seconds": res.seconds,
                        "findings": [f.__dict__ for f in res.findings],
                        "expired": [e.id for e in res.expired]}, indent=2, default=str))
    else:
        say(f"audited {res.packages} pins in {len(res.locks)} locks against {res.osv_url} "
            f"(policy {res.policy}) in {res.seconds}s")
        for f in res.findings:
            say(f"  {'FAIL' if f in res.failing else 'ok  '} {f.line()}")
        for a in res.unused_allow:
            say(f"  note: allowlist entry {a} matches no finding any more: remove it")
    gate(res)
    say("audit passed")
    return 0


def cmd_verify_image(root, args) -> int:
    """What a reviewer runs: the digest's signature (skopeo, with the environment's policy), its attached SBOM
    and provenance (signature, subject, SBOM sha256)."""
    from ..environments import load_environment
    from ..registry.auth import authfile, from_environment
    from ..registry.skopeo import Skopeo
    from ..supply import attach, signing

    cfg = load_config(root, collect_overrides(args.sets))
    env = load_environment(root, args.env)
    repo = args.repository or env.registry.repository or cfg.registry.repository
    policy = signing.environment_policy(root, cfg, env)
    if policy is None:
        from ..errors import SignatureRefused

        raise SignatureRefused(f"{env.name} requires no signatures: there is no key to verify against",
                               f"set signatures.required and signatures.keys in environments/{env.name}.yaml")
    creds = from_environment()
    with authfile(creds, repo) as auth, signing.workspace(signing.lookaside_dir(root, cfg), policy) as ws:
        sk = Skopeo(authfile=auth, insecure_hosts=set(cfg.registry.insecure_hosts))
        chk = signing.require_signed(sk, ws, repo, args.digest, policy)
        say(f"{repo}@{args.digest}: signed by {chk.fingerprint} as {chk.identity} (skopeo standalone-verify)")
        src = cfg.registry.repository
        att = attach.verify_attached(src, args.digest, creds, set(cfg.registry.insecure_hosts), ws.keyring)
        say(f"  SBOM {src}:{attach.attachment_tag(args.digest, attach.SBOM_SUFFIX)}: sha256 {att.sbom_sha256}, "
            f"{att.components} components")
        say(f"  provenance: {att.provenance.line() if att.provenance else 'none attached'}")
    return 0


def cmd_image_key(root, args) -> int:
    import datetime
    from pathlib import Path

    from ..supply.keys import new_image_key

    name = args.name or f"release-{datetime.date.today().year}"
    k = new_image_key(root, args.env, name,
                      passphrase_file=Path(args.passphrase_file) if args.passphrase_file else None)
    where = f"GNUPGHOME={k.gnupg_home}" if k.gnupg_home else "gpg's default keyring"
    say(f"made GPG key {k.fingerprint} in {where} (its secret half never leaves it)")
    say(f"  public key: {k.public_key}")
    say(f"  {k.environment_file}: signatures.required true, keys {', '.join(k.keys)}")
    if k.remembered:
        say(f"  this machine signs with it: signing.key {k.fingerprint} in .platform/local.yaml")
    say(f"commit both: git add {k.public_key} {k.environment_file}; in CI give the secret half as "
        f"PLATFORM_SIGNING_KEY_FILE (gpg --armor --export-secret-keys {k.fingerprint})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("sbom", help="where the image's SBOM (CycloneDX) is and a summary; makes it if missing")
    p.add_argument("--force", action="store_true", help="make it again from the image")
    p.set_defaults(func=cmd_sbom)
    p = sub.add_parser("audit", help="pip-audit every lock against the OSV service, gated by audit.yaml")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)
    p = sub.add_parser("verify-image", help="check a digest's signature, SBOM and provenance as a reviewer would")
    p.add_argument("--env", required=True, help="whose keys (environments/<env>.yaml signatures.keys)")
    p.add_argument("--digest", required=True, help="sha256:...")
    p.add_argument("--repository", default=None, help="default: the environment's repository")
    p.set_defaults(func=cmd_verify_image)
    p = sub.add_parser("image-key", help="make a GPG key that signs an environment's images; lists its public "
                       "key in environments/<env>.yaml signatures.keys and remembers it for make push")
    p.add_argument("--env", required=True, help="the environment whose images it signs (e.g. prod)")
    p.add_argument("--name", default=None, help="the key's file name under keys/<env>/ (default release-<year>)")
    p.add_argument("--passphrase-file", default=None, help="protect the key with the passphrase in this file")
    p.set_defaults(func=cmd_image_key)
