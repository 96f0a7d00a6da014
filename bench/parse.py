#!/usr/bin/env python3
"""bench/parse: Airflow's DagBag parse time of N rendered pipelines against the same N pipelines
loaded at parse time by dag-factory, measured in one run (default N=200 pipelines of 5 jobs).

FORMAT=2: format version 2 pipelines using what v2 adds: every other pipeline is scheduled
on the asset its predecessor's last job updates (outlets), `train` fans out over three segments
(dynamic task mapping: .partial().expand()), and each DAG has a typed run parameter. dag-factory gets
the same DAGs in its own syntax (schedule and outlets as `__type__: airflow.sdk.Asset` objects, expand, params as typed
`__type__: airflow.sdk.Param` objects like the rendered DAGs').
FORMAT=1 (default): the version 1 pipelines (cron schedules, no mapping).

Both build the same operator class (the kubernetes backend of JobOperator, KubernetesJobOperator):
dag-factory needs a class path, so it gets `ml_platform.backends.kubernetes.KubernetesJobOperator`.
dag-factory is used the common way: one loader .py file calling load_yaml_dags() over the YAML folder.
Each side is parsed in a fresh interpreter, best of REPEATS, with the operator's and dag-factory's
modules imported before the clock starts (a DAG processor has them loaded; without .pyc files their
import alone costs seconds and is the same for both sides). With WARM=1 (default) both sides then get what
the platform's DAG processor does before it forks a parsing process: the bundle's pre-import
(ml_platform.bundle.preload_for_parsing) and Airflow's gc.freeze(). WARM=0 leaves both out (the figures
before 2026-12-05). Prints times and the ratio; asserts nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N = int(os.environ.get("N", 200))
JOBS = 5
REPEATS = int(os.environ.get("REPEATS", 3))
IMAGE = "registry.local/ml/churn:1.4.2"
FLAVORS = ["cpu-small", "cpu-large", "mem-large", "cpu-small", "gpu-a100"]
FORMAT = int(os.environ.get("FORMAT", 1))
WARM = os.environ.get("WARM", "1")  # 0: the cold interpreter of earlier figures (no pre-import, no gc.freeze)
SEGMENTS = ["eu", "us", "apac"]

PARSE = """
import json, os, sys, time
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
# Both sides build the same operator: import it (and dag-factory) before timing, as a long-running
# DAG processor has them imported already. What is timed is the per-DAG work.
import ml_platform.backends.kubernetes, ml_platform.job, dagfactory
if os.environ["BENCH_WARM"] == "1":
    # The DAG processor as the platform runs it, before it forks the parsing processes: the platform
    # bundle's pre-import (job backend, flavor catalog, Airflow's asset URI handlers: 70 ms on the first
    # Asset otherwise), then Airflow's own gc.freeze() (DagFileProcessorManager.before_run); without it
    # one full collection walks every imported object during the timed parse (about 0.18 s here).
    import gc
    from ml_platform.bundle import preload_for_parsing
    preload_for_parsing()
    gc.freeze()
t1 = time.perf_counter()
bag = DagBag(sys.argv[1], safe_mode=False)
t2 = time.perf_counter()
first = bag.dags[min(bag.dag_ids)]
schemas = {k: first.params.get_param(k).schema for k in first.params}
print("RESULT " + json.dumps({"import": t1 - t0, "parse": t2 - t1, "dags": len(bag.dag_ids), "params": schemas,
                              "tasks": sum(len(d.tasks) for d in bag.dags.values()), "errors": len(bag.import_errors)}))
"""


def asset(i: int) -> str:
    return f"s3://bench/pipeline_{i:03d}/load"


def pipeline(i: int, fmt: int) -> dict:
    names = ["extract", "clean", "features", "train", "load"]
    jobs = {}
    for j, n in enumerate(names):
        jobs[n] = {"resource_flavor": FLAVORS[j], "command": ["python", "-m", f"p{i}.{n}"],
                   "env": {"STEP": n, "PIPELINE": str(i)}, "retries": 1}
        if j:
            jobs[n]["depends_on"] = [names[j - 1]]
    if fmt == 1:
        return {"version": 1, "dag": {"name": f"pipeline_{i:03d}", "schedule": "0 3 * * *", "tags": ["bench"]},
                "defaults": {"docker_image": IMAGE, "resource_flavor": "cpu-small"}, "jobs": jobs}
    jobs["train"]["map"] = {"over": SEGMENTS, "as": "SEGMENT"}
    jobs["load"]["outlets"] = [asset(i)]
    schedule = {"assets": [asset(i - 1)]} if i % 2 else "0 3 * * *"
    return {"version": 2, "dag": {"name": f"pipeline_{i:03d}", "schedule": schedule, "tags": ["bench"],
                                  "params": {"epochs": {"type": "integer", "default": 10}}},
            "defaults": {"docker_image": IMAGE, "resource_flavor": "cpu-small"}, "jobs": jobs}


def dagfactory_config(p: dict) -> dict:
    tasks = {}
    for name, job in p["jobs"].items():
        t = {"operator": "ml_platform.backends.kubernetes.KubernetesJobOperator", "docker_image": IMAGE,
             "resource_flavor": job["resource_flavor"], "command": job["command"], "env": job["env"],
             "retries": job["retries"]}
        if job.get("depends_on"):
            t["dependencies"] = job["depends_on"]
        if job.get("map"):
            del t["env"]
            t["expand"] = {"env": [{**job["env"], job["map"]["as"]: s} for s in job["map"]["over"]]}
        if job.get("outlets"):
            t["outlets"] = [{"__type__": "airflow.sdk.Asset", "uri": a} for a in job["outlets"]]
        tasks[name] = t
    schedule = p["dag"]["schedule"]
    dag = {"default_args": {"owner": "ml-team", "start_date": "2025-01-01"},
           # dag-factory's asset schedule: a list of objects built from `__type__` (its docs, "Asset")
           "schedule": [{"__type__": "airflow.sdk.Asset", "uri": a} for a in schedule["assets"]]
           if isinstance(schedule, dict) else schedule,
           "catchup": False, "tags": p["dag"]["tags"], "tasks": tasks}
    if p["dag"].get("params"):
        # the same typed Param the rendered DAG has (a bare default would skip Airflow's schema check)
        dag["params"] = {k: {"__type__": "airflow.sdk.Param", "default": v["default"], "type": v["type"]}
                         for k, v in p["dag"]["params"].items()}
    return {p["dag"]["name"]: dag}


def parse(folder: Path) -> dict:
    env = {**os.environ, "ML_PLATFORM_BACKEND": "kubernetes", "ML_PLATFORM_FLAVORS": str(ROOT / "flavors.yaml"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
           "AIRFLOW__CORE__DAGS_FOLDER": str(folder), "PYTHONDONTWRITEBYTECODE": "1",  # as in the image
           "BENCH_WARM": WARM}
    best = None
    for _ in range(REPEATS):
        p = subprocess.run([sys.executable, "-c", PARSE, str(folder)], env=env, capture_output=True, text=True)
        line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if not line:
            sys.exit(f"parse failed in {folder}:\n{p.stderr[-3000:]}")
        r = json.loads(line[7:])
        best = r if best is None or r["parse"] < best["parse"] else best
    return best


def write_projects(work: Path, n: int, fmt: int) -> tuple[Path, Path]:
    """The same n pipelines twice under work: a platform repo (pipelines/ rendered into dags/) and a
    dag-factory folder (its YAML and one loader file, the common way)."""
    from platformctl.pipelines.project import render_all

    repo = work / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "templates").mkdir()
    (repo / "templates/dag.py.j2").write_text((ROOT / "templates/dag.py.j2").read_text())
    (repo / "flavors.yaml").write_text((ROOT / "flavors.yaml").read_text())
    factory = work / "dagfactory"
    factory.mkdir()
    for i in range(n):
        p = pipeline(i, fmt)
        (repo / "pipelines" / f"pipeline_{i:03d}.yaml").write_text(yaml.safe_dump(p))
        (factory / f"pipeline_{i:03d}.yml").write_text(yaml.safe_dump(dagfactory_config(p)))
    (factory / "load_dags.py").write_text(
        "# airflow dag loader (dag-factory)\nfrom dagfactory import load_yaml_dags\n\n"
        f"load_yaml_dags(globals_dict=globals(), dags_folder={str(factory)!r})\n")
    render_all(repo)
    return repo, factory


def main() -> None:
    repo, factory = write_projects(Path(tempfile.mkdtemp(prefix="bench-parse-")), N, FORMAT)
    # Both folders as a DAG processor is served them: the image sets PYTHONDONTWRITEBYTECODE and the
    # platform bundle writes each fetched version's bytecode once (ml_platform.bundle.compile_version);
    # the same is done to dag-factory's loader file. The YAML is read and turned into DAGs on every parse.
    from ml_platform.bundle import compile_version

    compile_version(repo / "dags")
    compile_version(factory)

    ours, theirs = parse(repo / "dags"), parse(factory)
    for name, r in (("rendered", ours), ("dag-factory", theirs)):
        if r["dags"] != N or r["errors"]:
            sys.exit(f"{name}: expected {N} DAGs without errors, got {r}")
    if ours["params"] != theirs["params"]:
        sys.exit(f"the two sides built different params: {ours['params']} vs {theirs['params']}")
    if ours["tasks"] != theirs["tasks"]:
        sys.exit(f"the two sides built different DAGs: {ours['tasks']} vs {theirs['tasks']} tasks")
    what = "format 2: assets, mapping over 3, params" if FORMAT == 2 else "format 1"
    warm = "warm: pre-import + gc.freeze" if WARM == "1" else "cold: no pre-import, no gc.freeze"
    print(f"bench/parse: {N} pipelines x {JOBS} jobs ({what}), DagBag parse (best of {REPEATS}, "
          f"fresh interpreter each, {warm})")
    print(f"  rendered DAG files   {ours['parse']:7.2f}s  ({ours['dags']} DAGs, {ours['tasks']} tasks)")
    print(f"  dag-factory (YAML)   {theirs['parse']:7.2f}s  ({theirs['dags']} DAGs, {theirs['tasks']} tasks)")
    print(f"ratio rendered / dag-factory = {ours['parse'] / theirs['parse']:.2f}x (goal <= 0.3x)")


if __name__ == "__main__":
    main()
