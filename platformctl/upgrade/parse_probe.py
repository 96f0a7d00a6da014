"""Run INSIDE an image (python /upgrade-parse.py '<spec json>'): parse DAG folders with Airflow's DagBag and
print one line `UPGRADE-PARSE <json>`: per folder and backend, every DAG's tasks (operator class) and
dependencies, and the import errors. Standard library and Airflow only."""

import json
import os
import sys

MARK = "UPGRADE-PARSE "


def parse(folder, backend):
    from airflow.dag_processing.dagbag import DagBag

    os.environ["ML_PLATFORM_BACKEND"] = backend
    bag = DagBag(folder, safe_mode=False)
    dags = {}
    for dag_id, dag in sorted(bag.dags.items()):
        tasks = {t.task_id: f"{type(t).__module__}.{type(t).__name__}" for t in dag.tasks}
        edges = sorted([up.task_id, down] for up in dag.tasks for down in sorted(up.downstream_task_ids))
        dags[dag_id] = {"tasks": tasks, "edges": edges, "file": os.path.relpath(dag.fileloc, folder)}
    errors = {os.path.relpath(k, folder): str(v)[-3000:] for k, v in bag.import_errors.items()}
    return {"dags": dags, "errors": errors}


def main(spec):
    out = {}
    for name, folder in spec["folders"].items():
        for backend in spec["backends"]:
            try:
                out[f"{name}:{backend}"] = parse(folder, backend)
            except Exception as exc:  # noqa: BLE001 - reported to the host as this folder's error
                out[f"{name}:{backend}"] = {"dags": {}, "errors": {"(parse)": f"{type(exc).__name__}: {exc}"}}
    sys.stdout.write("\n" + MARK + json.dumps(out) + "\n")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
