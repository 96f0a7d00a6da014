#!/usr/bin/env python3
"""bench/processor: one parse loop of Airflow's real DAG processor over N rendered pipelines served by the
platform's bundle, with the bundle's pre-import (job backend, flavor catalog, asset URI handlers: see
PlatformDagBundle._warm_parsing) against without it (the bundle class with `_warm_parsing` turned into a
no-op: what Airflow's own pre-import of `airflow.*` modules alone gives), and against dag-factory loading the
same pipelines from YAML through one loader file (a LocalDagBundle over its folder), in the same run.

Each side: `airflow dag-processor -n 1` (one loop over every file, then exit), its own copy of one
migrated sqlite database, its own bundle storage, the same version deployed by platformctl's deliver to
a folder store (`store: local`), ML_PLATFORM_BACKEND=kubernetes and PYTHONDONTWRITEBYTECODE=1 as in the
image, Airflow's default parsing processes. The two sides alternate, best of REPEATS. Wall time is the whole
command (Airflow's start-up included, the same on both sides); CPU is user + system of the command and
every process it forked. Checks that each side puts N DAGs in the database (the rendered ones of the
deployed version) with no import error. Prints times and ratios; asserts nothing. N=40 pipelines of 5 jobs (format 2) by default.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.parse import write_projects  # noqa: E402 - the same format 2 pipelines as bench/parse
from platformctl.deploy.bundle import collect  # noqa: E402
from platformctl.deploy.deliver import deploy  # noqa: E402
from platformctl.deploy.store import LocalStore  # noqa: E402

N = int(os.environ.get("N", 40))
REPEATS = int(os.environ.get("REPEATS", 2))
PREFIX = "airflow/bench"
AIRFLOW = str(Path(sys.executable).parent / "airflow")
COLD = """from ml_platform.bundle import PlatformDagBundle


class ColdBundle(PlatformDagBundle):
    def _warm_parsing(self) -> None:  # Airflow's own pre-import of airflow.* modules only
        pass
"""
SIDES = {"pre-import": "ml_platform.bundle.PlatformDagBundle", "without": "cold_bundle.ColdBundle",
         "dag-factory": "airflow.dag_processing.bundles.local.LocalDagBundle"}


def airflow_env(work: Path, home: Path, side: str) -> dict:
    if side == "dag-factory":  # its folder as it is
        kwargs = {"path": str(work / "dagfactory")}
    else:  # the deployed version, through the platform's bundle
        kwargs = {"store": "local", "store_path": str(work / "store"), "prefix": PREFIX}
    bundle = {"name": "ml-platform", "classpath": SIDES[side], "kwargs": {**kwargs, "refresh_interval": 0}}
    return {**os.environ, "AIRFLOW_HOME": str(home), "PYTHONPATH": str(work / "py"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps([bundle]),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "bundles"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "ML_PLATFORM_BACKEND": "kubernetes",
            "ML_PLATFORM_FLAVORS": str(ROOT / "flavors.yaml"), "PYTHONDONTWRITEBYTECODE": "1"}


def one_loop(work: Path, side: str, run: int, version: str) -> dict:
    home = work / f"home-{side}-{run}"
    home.mkdir()
    shutil.copy(work / "migrated.db", home / "airflow.db")
    env = airflow_env(work, home, side)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([AIRFLOW, "dag-processor", "-n", "1"], env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    (work / f"{side}-{run}.log").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        sys.exit(f"{side}: airflow dag-processor failed ({p.returncode}), see {work / f'{side}-{run}.log'}")
    with sqlite3.connect(home / "airflow.db") as db:
        dags = db.execute("select count(*) from dag where bundle_name = 'ml-platform' and not is_stale and "
                          "coalesce(bundle_version, '') = ?", (version if side != "dag-factory" else "",)).fetchone()[0]
        errors = db.execute("select count(*) from import_error").fetchone()[0]
    if dags != N or errors:
        sys.exit(f"{side}: expected {N} DAGs of {version} and no import error, got {dags} DAGs, {errors} errors "
                 f"(see {work / f'{side}-{run}.log'})")
    warmed = "pre-imported KubernetesJobOperator" in p.stdout + p.stderr
    if warmed != (side == "pre-import"):
        sys.exit(f"{side}: the bundle's pre-import log line is {'there' if warmed else 'missing'}")
    return {"wall": wall, "cpu": cpu}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-processor-"))
    repo, _ = write_projects(work, N, 2)  # the dag-factory side reads work/dagfactory
    version = deploy(LocalStore(work / "store"), PREFIX, collect(repo, image_digest="sha256:" + "b" * 64)).version
    (work / "py").mkdir()
    (work / "py/cold_bundle.py").write_text(COLD)
    home = work / "home-migrate"
    home.mkdir()
    m = subprocess.run([AIRFLOW, "db", "migrate"], env=airflow_env(work, home, "without"),
                       capture_output=True, text=True, timeout=600)
    if m.returncode != 0:
        sys.exit(f"airflow db migrate failed:\n{m.stderr[-3000:]}")
    shutil.copy(home / "airflow.db", work / "migrated.db")

    best: dict[str, dict] = {}
    for run in range(REPEATS):
        for side in (list(SIDES) if run % 2 == 0 else list(reversed(SIDES))):
            r = one_loop(work, side, run, version)
            if side not in best or r["wall"] < best[side]["wall"]:
                best[side] = r
    warm, cold, factory = best["pre-import"], best["without"], best["dag-factory"]
    print(f"bench/processor: airflow dag-processor -n 1 over {N} rendered pipelines x 5 jobs (format 2), "
          f"bundle {version}, sqlite, best of {REPEATS}")
    print(f"  rendered, the bundle pre-imports       {warm['wall']:6.2f}s wall  {warm['cpu']:6.2f}s CPU")
    print(f"  rendered, airflow.* pre-import only    {cold['wall']:6.2f}s wall  {cold['cpu']:6.2f}s CPU")
    print(f"  dag-factory (one loader file, YAML)    {factory['wall']:6.2f}s wall  {factory['cpu']:6.2f}s CPU")
    print(f"ratio pre-import / without = {warm['wall'] / cold['wall']:.2f}x wall, {warm['cpu'] / cold['cpu']:.2f}x CPU")
    print(f"ratio rendered (pre-import) / dag-factory = {warm['wall'] / factory['wall']:.2f}x wall, "
          f"{warm['cpu'] / factory['cpu']:.2f}x CPU")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
