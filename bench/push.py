#!/usr/bin/env python3
"""bench/push: shipping the built image, against the naive alternatives, in one run.

  first push      make push's engine push into an empty local registry (bytes uploaded, seconds)
  no-op push      make push again with nothing changed   vs  naive: skopeo copy docker-daemon:<image>
                  (exports the whole image from the engine on every push, then skips existing blobs)
  reuse           make build when the registry has an image with the same inputs (tags it)
                  vs  naive: build it again (make build --no-reuse: warm build cache here, plus
                  the image tests every build runs; a cold CI runner would also pay the full build)

Prints times and ratios; nothing is asserted. Needs the Docker engine, skopeo, docker-registry,
htpasswd, the base image and a built, tested, clean build (make build). Run: make bench-push.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.registry.conftest import PASSWORD, USER, RegistryServer  # noqa: E402
from platformctl import machine  # noqa: E402
from platformctl.record import BuildRecord  # noqa: E402


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return dt, p.stdout


def main() -> None:
    record = BuildRecord.load(ROOT)
    if record is None:
        sys.exit("make build first (the bench pushes that tested build)")
    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    reg = RegistryServer(work)
    reg.start()
    try:
        clone = work / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        machine.copy_to(ROOT, clone)  # the base image, CLI and CA bundle make build resolved here
        (clone / "build").mkdir()
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
        if record.revision != head or record.dirty or not record.tested:
            sys.exit("make build first, from a clean tree at HEAD (the bench pushes that tested build)")
        record.digest = record.repository = None
        record.save(clone)
        env = {**os.environ, "REGISTRY": f"{reg.host}/bench/airflow", "REGISTRY_USERNAME": USER,
               "REGISTRY_PASSWORD": PASSWORD}
        py = [sys.executable, "build.py"]
        first, out = timed([*py, "push"], clone, env)
        print(f"first push      {first:6.2f} s   {out.strip().splitlines()[-1].strip()}")
        noop, out = timed([*py, "push"], clone, env)
        print(f"no-op push      {noop:6.2f} s   {out.strip().splitlines()[-1].strip()}")
        auth = work / "auth.json"
        import base64

        auth.write_text(json.dumps({"auths": {reg.host: {"auth": base64.b64encode(f'{USER}:{PASSWORD}'.encode()).decode()}}}))
        naive, _ = timed(["skopeo", "copy", f"--authfile={auth}", "--dest-tls-verify=false",
                          f"docker-daemon:{record['image']}", f"docker://{reg.host}/bench/airflow:naive"], clone, env)
        print(f"naive no-op     {naive:6.2f} s   skopeo copy docker-daemon: (exports the image every time)")
        # reuse vs rebuild: a docs-only commit, then make build
        (clone / "README.md").write_text("bench\n")
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-qam", "docs"],
                       cwd=clone, check=True)
        reuse, out = timed([*py, "build", "--quiet"], clone, env)
        assert "instead of rebuilding" in out, out
        print(f"reuse           {reuse:6.2f} s   tagged the registry image (same inputs)")
        rebuild, _ = timed([*py, "build", "--quiet", "--no-reuse"], clone, env)
        print(f"naive rebuild   {rebuild:6.2f} s   make build --no-reuse (warm build cache, image tests included)")
        print()
        print(f"no-op push: {naive / noop:.1f}x faster than the naive push")
        print(f"reuse:      {rebuild / reuse:.1f}x faster than building and testing again")
    finally:
        reg.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
