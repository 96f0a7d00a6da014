"""A tiny ETL job for the local demo: prints the resource limits it runs under, then does its step.

    python3 /app/etl.py <step> [--fail]

The limits come from the container's cgroup (v1 or v2), so the output shows what the flavor gave it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CG = Path("/sys/fs/cgroup")


def read(*candidates: str) -> str | None:
    for c in candidates:
        p = CG / c
        if p.exists():
            return p.read_text().strip()
    return None


def limits() -> dict:
    cpu_max = read("cpu.max")  # v2: "<quota> <period>" or "max <period>"
    if cpu_max:
        quota, period = cpu_max.split()
        millicores = None if quota == "max" else int(quota) * 1000 // int(period)
    else:  # v1
        quota, period = read("cpu/cpu.cfs_quota_us"), read("cpu/cpu.cfs_period_us")
        millicores = None if quota in (None, "-1") else int(quota) * 1000 // int(period)
    mem = read("memory.max", "memory/memory.limit_in_bytes")
    mem_bytes = None if mem in (None, "max") or int(mem) >= 2**60 else int(mem)
    return {"cpu_millicores": millicores, "memory_bytes": mem_bytes}


def main(argv: list[str]) -> int:
    step = argv[0] if argv else "step"
    print("JOB_LIMITS " + json.dumps({"step": step, **limits()}), flush=True)
    if "--fail" in argv:
        print(f"{step}: failing on purpose (exit 3)", flush=True)
        return 3
    print(f"{step}: done for {os.environ.get('TARGET', 'the demo')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
