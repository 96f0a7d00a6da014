"""`make deploy ENV=...`, `make rollback ENV=... [TO=...]`, `make gc ENV=... [KEEP=N]`, `make history ENV=...` and
`make signing-key OUT=...`."""

from __future__ import annotations

from pathlib import Path

from ..deploy.ledger import check_entry_id
from ..output import say
from ..services.context import context_of

# the deploy service (rendering, signing, image checks) is imported by the handlers that use it: `history`
# and `signing-key` start without it


def deploy(root: Path, args) -> int:
    from ..services import deploy as service

    ctx = context_of(root, args)
    service.deploy(root, ctx.config, args.env, airflow_url=getattr(args, "airflow_url", None),
                   with_image=getattr(args, "image", None))
    return 0


def rollback(root: Path, args) -> int:
    from ..deploy.deliver import check_version
    from ..services import deploy as service

    if not (args.to and check_entry_id(args.to)):  # a version b-..., or a ledger entry e-...
        check_version(args.to)  # before any configuration or store access
    ctx = context_of(root, args)
    service.rollback(root, ctx.config, args.env, args.to, airflow_url=getattr(args, "airflow_url", None))
    return 0


def history(root: Path, args) -> int:
    import json

    from ..deploy.ledger import line as ledger_line
    from ..services.ledger import history as ledger_history

    context_of(root, args).config  # a broken platform.yaml is said first, as for every command
    h = ledger_history(root, args.env, args.limit)
    if args.json:
        say(json.dumps({"environment": args.env, "total": h.total, "incomplete": h.incomplete,
                        "entries": [e.to_json() for e in h.entries]}, indent=2))
        return 0
    if h.total is None:  # the listing stopped after the newest LIMIT entries
        say(f"{args.env}: the newest {len(h.entries)} ledger entries (there are more: LIMIT=0 lists all)")
    else:
        say(f"{args.env}: {h.total} ledger entries, newest first" + (f" (showing {len(h.entries)})"
                                                                       if len(h.entries) < h.total else ""))
    for e in h.entries:
        say("  " + ledger_line(e))
    if h.incomplete:
        among = "" if h.total is not None else " among those shown"
        say(f"  {len(h.incomplete)} INCOMPLETE{among}: {', '.join(h.incomplete[:5])}")
    return 0


def signing_key(root: Path, args) -> int:
    from ..deploy.signing import KEY_FILE_VAR, new_key_pair

    public, keyid = new_key_pair(Path(args.out))
    say(f"wrote an ed25519 private key to {args.out} (mode 0600; keep it secret: a CI secret, "
        f"{KEY_FILE_VAR}={args.out})")
    say(f"public key (add it to signing.allowed_keys of the environments it signs): {public}")
    say(f"key id: {keyid}")
    return 0


def gc(root: Path, args) -> int:
    from ..services import deploy as service

    ctx = context_of(root, args)
    service.gc(root, ctx.config, args.env, keep=args.keep, airflow_url=args.airflow_url, dry_run=args.dry_run)
    return 0


def register(sub) -> None:
    p = sub.add_parser("deploy", help="deliver the DAG bundle to an environment and write its Airflow config")
    p.add_argument("--env", required=True, help="environment name (environments/<env>.yaml, or local)")
    p.add_argument("--airflow-url", default=None, help="ask this Airflow API to refresh the bundle now "
                   "(default: the environment's managed.api_url; none: Airflow follows within the refresh interval)")
    p.add_argument("--image", default=None, metavar="RELEASE", help="ship release RELEASE's image with this bundle "
                   "(its config names that image): needed when the environment's image cannot serve the bundle")
    p.set_defaults(func=deploy)
    r = sub.add_parser("rollback", help="switch an environment back to the previous (or a named) bundle")
    r.add_argument("--env", required=True)
    r.add_argument("--to", default=None, help="bundle version (b-...) or ledger entry (e-..., make history) to go "
                   "back to (default: the previous version)")
    r.add_argument("--airflow-url", default=None, help="as for deploy")
    r.set_defaults(func=rollback)
    g = sub.add_parser("gc", help="remove old bundle versions from an environment's store")
    g.add_argument("--env", required=True)
    g.add_argument("--keep", type=int, default=None, help="newest versions kept (default: bundle.keep_versions)")
    g.add_argument("--airflow-url", default=None, help="keep the versions running DAG runs use, as this "
                   "Airflow API reports (default: the environment's managed.api_url)")
    g.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    g.set_defaults(func=gc)
    h = sub.add_parser("history", help="an environment's deploy ledger, newest first (issue 38)")
    h.add_argument("--env", required=True)
    h.add_argument("--limit", type=int, default=20, help="entries shown (0: all)")
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=history)
    k = sub.add_parser("signing-key", help="make an ed25519 key pair for signing bundles; prints the public key")
    k.add_argument("--out", required=True, help="where the private key is written (must not exist)")
    k.set_defaults(func=signing_key)
