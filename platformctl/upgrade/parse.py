"""Step d: parse the rendered pipelines (dags/) and examples/dags in the current and in the candidate image
(the same files mounted into both) and compare: import errors, and per DAG its task ids, operators and
dependencies. Every difference is listed."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import ContainerEngine

PROBE = Path(__file__).with_name("parse_probe.py")
MARK = "UPGRADE-PARSE "
FOLDERS = {"dags": "dags", "examples/dags": "examples/dags"}  # name in the report -> project folder
BACKENDS = ("kubernetes", "docker")


class ParseProbeError(Exception):
    pass


def parse_in_image(engine: ContainerEngine, image: str, root: Path, timeout: int = 600) -> dict:
    """{"<folder>:<backend>": {"dags": {dag_id: {tasks, edges, file}}, "errors": {file: message}}}."""
    mounts = {name: f"/upgrade-parse/{i}" for i, name in enumerate(FOLDERS)}
    volumes = [f"{PROBE}:/upgrade-parse.py:ro"]
    volumes += [f"{(root / rel).resolve()}:{mounts[name]}:ro" for name, rel in FOLDERS.items()]
    spec = {"folders": mounts, "backends": list(BACKENDS)}
    p = engine.run(image, ["python", "/upgrade-parse.py", json.dumps(spec)], volumes=volumes,
                   # the structure is compared, not the parse time: a busy machine must not time a file out
                   env={"AIRFLOW__CORE__UNIT_TEST_MODE": "True", "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600"},
                   timeout=timeout)
    line = next((ln for ln in reversed(p.stdout.splitlines()) if ln.startswith(MARK)), None)
    if line is None:
        raise ParseProbeError(f"the parse probe in {image} exited {p.returncode}: {(p.stdout + p.stderr)[-1500:]}")
    return json.loads(line[len(MARK):])


@dataclass
class DagChange:
    where: str  # dags/example_etl.py
    dag: str  # "example_etl (docker)"
    what: str  # one line


@dataclass
class ParseComparison:
    dags_current: int = 0
    dags_candidate: int = 0
    errors_current: dict[str, str] = field(default_factory=dict)  # "<folder>/<file> (<backend>)" -> last line
    errors_candidate: dict[str, str] = field(default_factory=dict)
    changes: list[DagChange] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def new_errors(self) -> dict[str, str]:
        return {k: v for k, v in self.errors_candidate.items() if k not in self.errors_current}

    @property
    def fixed_errors(self) -> dict[str, str]:
        return {k: v for k, v in self.errors_current.items() if k not in self.errors_candidate}


def _last_line(text: str) -> str:
    """The exception line of a traceback (the last `Name: message` line), else the last line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout|Warning)\b.*", ln):
            return ln
    return lines[-1] if lines else text.strip()


def error_location(folder: str, file: str, text: str) -> str:
    """folder/file:line of the innermost frame of the error that is in the parsed file itself, else folder/file."""
    lines = re.findall(r'File "[^"]*?' + re.escape(Path(file).name) + r'", line (\d+)', text)
    return f"{folder}/{file}:{lines[-1]}" if lines else f"{folder}/{file}"


def _errors(parsed: dict) -> dict[str, str]:
    out = {}
    for key, res in parsed.items():
        folder, backend = key.rsplit(":", 1)
        for file, text in res.get("errors", {}).items():
            out[f"{error_location(folder, file, text)} ({backend})"] = _last_line(text)
    return out


def compare_parses(current: dict, candidate: dict) -> ParseComparison:
    out = ParseComparison()
    out.errors_current, out.errors_candidate = _errors(current), _errors(candidate)
    out.dags_current = sum(len(r.get("dags", {})) for r in current.values())
    out.dags_candidate = sum(len(r.get("dags", {})) for r in candidate.values())
    for key in sorted(set(current) | set(candidate)):
        folder, backend = key.rsplit(":", 1)
        a = current.get(key, {}).get("dags", {})
        b = candidate.get(key, {}).get("dags", {})
        for dag_id in sorted(set(a) | set(b)):
            label = f"{dag_id} ({backend})"
            da, db = a.get(dag_id), b.get(dag_id)
            where = f"{folder}/{(da or db)['file']}"
            if da is None:
                out.changes.append(DagChange(where, label, "DAG only in the candidate"))
                continue
            if db is None:
                out.changes.append(DagChange(where, label, "DAG missing in the candidate"))
                continue
            ta, tb = da["tasks"], db["tasks"]
            for t in sorted(set(ta) - set(tb)):
                out.changes.append(DagChange(where, label, f"task {t} ({ta[t]}) missing in the candidate"))
            for t in sorted(set(tb) - set(ta)):
                out.changes.append(DagChange(where, label, f"task {t} ({tb[t]}) only in the candidate"))
            for t in sorted(set(ta) & set(tb)):
                if ta[t] != tb[t]:
                    out.changes.append(DagChange(where, label, f"task {t}: operator {ta[t]} -> {tb[t]}"))
            ea, eb = {tuple(e) for e in da["edges"]}, {tuple(e) for e in db["edges"]}
            for u, d in sorted(ea - eb):
                out.changes.append(DagChange(where, label, f"dependency {u} >> {d} missing in the candidate"))
            for u, d in sorted(eb - ea):
                out.changes.append(DagChange(where, label, f"dependency {u} >> {d} only in the candidate"))
    return out


def parse_both(engine: ContainerEngine, current_image: str, candidate_image: str, root: Path) -> ParseComparison:
    t0 = time.perf_counter()
    out = compare_parses(parse_in_image(engine, current_image, root), parse_in_image(engine, candidate_image, root))
    out.seconds = round(time.perf_counter() - t0, 2)
    return out
