#!/usr/bin/env python3
"""bench/lock: the project's `make lock` (cold and warm uv cache) against pip-compile on the same
requirements/airflow.in, in one run, for the host's Python (the only one pip-compile can target).

Prints wall times and ratios; nothing is asserted. Run: make bench-lock (or python bench/lock.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST_PY = "%d.%d" % sys.version_info[:2]


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return dt


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-lock-"))
    try:
        repo = work / "repo"
        (repo / "requirements").mkdir(parents=True)
        shutil.copy(ROOT / "requirements/airflow.in", repo / "requirements")
        (repo / "platform.yaml").write_text(
            f'python_versions: ["{HOST_PY}"]\nimage: {{python: "{HOST_PY}"}}\nlock_sets: {{airflow: []}}\n')
        env = {**os.environ, "PLATFORM_ROOT": str(repo), "UV_CACHE_DIR": str(work / "uv-cache")}
        for var in ("PYTHON", "PYTHONS", "BASE_IMAGE"):
            env.pop(var, None)
        lock = [sys.executable, str(ROOT / "build.py"), "lock"]
        out = repo / "requirements" / f"airflow-py{HOST_PY.replace('.', '')}.txt"

        ours_cold = timed(lock, env, repo)
        out.unlink()
        ours_warm = timed(lock, env, repo)
        ours_noop = timed(lock, env, repo)
        check = timed([sys.executable, str(ROOT / "build.py"), "lock-check"], env, repo)

        pc = [str(BIN / "pip-compile"), "--generate-hashes", "--allow-unsafe", "--strip-extras", "--quiet",
              "--cache-dir", str(work / "pip-cache"), "-o", str(work / "pc.txt"), str(repo / "requirements/airflow.in")]
        pc_cold = timed(pc, env, repo)
        (work / "pc.txt").unlink()
        pc_warm = timed(pc, env, repo)

        print(f"bench/lock: requirements/airflow.in for Python {HOST_PY} ({len(out.read_text().splitlines())} lock lines)")
        print(f"  {'':28} {'seconds':>8}")
        print(f"  {'make lock, cold uv cache':28} {ours_cold:8.2f}")
        print(f"  {'make lock, warm uv cache':28} {ours_warm:8.2f}")
        print(f"  {'make lock, nothing changed':28} {ours_noop:8.2f}")
        print(f"  {'make lock-check':28} {check:8.2f}")
        print(f"  {'pip-compile, cold cache':28} {pc_cold:8.2f}")
        print(f"  {'pip-compile, warm cache':28} {pc_warm:8.2f}")
        print(f"ratio cold: pip-compile / make lock = {pc_cold / ours_cold:.1f}x (goal >= 30x)")
        print(f"ratio warm: pip-compile / make lock = {pc_warm / ours_warm:.1f}x")
        print(f"lock-check: {check:.2f}s (goal < 1 s; includes Python start-up)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
