#!/usr/bin/env python3
"""bench/supply (make bench-supply; issue 37): what trust costs, measured in one run.

  push            make push of the built image into an empty local registry with a signing key: the whole
                  push, and of it the supply-chain steps (key unlock, SBOM, provenance, attach, sign)
  no-op push      make push again: today's no-op push plus the supply-chain steps (attach + sign again)
  sbom            making the SBOM from the image (make build does it once per image; push reuses it)
  audit           make audit over the shipped locks against an OSV-compatible service on 127.0.0.1
                  vs  naive: one pip-audit run per lock file

Goals (issue 37): supply-chain steps <= 3 s per push; make audit <= 5 s against a local service.
Prints times and ratios; nothing is asserted. Needs a built image (make build, or PLATFORM_IMAGE=<id>).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.push import timed  # one timed command runner for both push benches
from platformctl.record import BuildRecord
from tests.integration.helpers import working_tree_copy
from tests.integration.registry.conftest import PASSWORD, USER, RegistryServer
from tests.integration.registry.test_trust import Keys
from tests.integration.supply.osv_server import OsvServer, advisory


def steps(out: str) -> dict[str, float]:
    line = next((ln for ln in out.splitlines() if "supply chain steps:" in ln), "")
    return {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s", line.split(":", 1)[-1].split(" (")[0])}


def cost(s: dict[str, float]) -> float:
    """What the supply chain adds to a push: key unlock + SBOM (reused) + provenance/attach/sign (at once)."""
    return s.get("key", 0) + s.get("sbom", 0) + s.get("wall", 0)


def main() -> None:
    rec = BuildRecord.load(ROOT)
    image = os.environ.get("PLATFORM_IMAGE") or (rec.image_id if rec else None)
    if not image:
        sys.exit("make build first (or PLATFORM_IMAGE=<image id>)")
    work = Path(tempfile.mkdtemp(prefix="bench-supply-"))
    reg = RegistryServer(work)
    reg.start()
    try:
        clone = working_tree_copy(work / "repo")
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
        from platformctl.config import load_config
        from platformctl.image.build import image_lock_fingerprint

        record = BuildRecord(image="bench", tags=[f"ml-platform-airflow:0.1.0-dev.1-g{head[:7]}"], image_id=image,
                             version="0.1.0-dev.1", revision=head, tested=True, python_version="3.12",
                             base_image=rec.base_image if rec else None,
                             lock_fingerprint=image_lock_fingerprint(clone, load_config(clone, {})))
        record.save(clone)
        (work / "keys").mkdir()
        keys = Keys(work / "keys")
        env = {**os.environ, "REGISTRY": f"{reg.host}/bench/airflow", "REGISTRY_USERNAME": USER,
               "REGISTRY_PASSWORD": PASSWORD, **keys.signer("a")}
        py = [sys.executable, "build.py"]
        t_sbom, _ = timed([*py, "sbom", "--force"], clone, env)
        print(f"sbom            {t_sbom:6.2f} s   make sbom --force (once per image: make push, or make build with sbom.on_build)")
        first, out = timed([*py, "push"], clone, env)
        s1 = steps(out)
        print(f"first push      {first:6.2f} s   of which supply chain {cost(s1):.2f} s ({s1})")
        noop, out = timed([*py, "push"], clone, env)
        s2 = steps(out)
        supply = cost(s2)
        print(f"no-op push      {noop:6.2f} s   of which supply chain {supply:.2f} s ({s2})")
        print(f"  today's no-op push {noop - supply:.2f} s; trust adds {supply:.2f} s "
              f"({'within' if supply <= 3 else 'OVER'} the 3 s goal)")
        from platformctl.lock.files import read_pins

        pin = read_pins((clone / "requirements" / "airflow-py312.txt").read_text())["jinja2"]
        with OsvServer([advisory("GHSA-bench-0001", "jinja2", pin, "99.0.0")]) as osv:
            env_a = {**env, "AUDIT_OSV_URL": osv.url}
            (clone / "audit.yaml").write_text("fail_at: critical\n")
            t_audit, out = timed([*py, "audit"], clone, env_a)
            print(f"audit           {t_audit:6.2f} s   {out.strip().splitlines()[0]} "
                  f"({'within' if t_audit <= 5 else 'OVER'} the 5 s goal)")
            t0 = time.perf_counter()
            exe = Path(sys.executable).with_name("pip-audit")
            for lock in sorted((clone / "requirements").glob("*-py*.txt")):
                subprocess.run([str(exe), "--require-hashes", "--disable-pip", "--strict", "-s", "osv", "--osv-url",
                                f"{osv.url}/v1/query", "-r", str(lock), "-f", "json", "--progress-spinner", "off",
                                "--cache-dir", str(work / "pa-cache")], capture_output=True)
            naive = time.perf_counter() - t0
            print(f"naive audit     {naive:6.2f} s   one pip-audit per lock file, one after another")
            print()
            print(f"audit: {naive / t_audit:.1f}x faster than one run per lock")
    finally:
        if (work / "keys" / "gnupg").exists():
            home = str(work / "keys" / "gnupg")
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": home},
                           capture_output=True)
        reg.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
