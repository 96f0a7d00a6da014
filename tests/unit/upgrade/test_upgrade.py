"""The upgrade rehearsal's pure parts (issue #36): the scratch tree, the grouped comparison, conflict lines,
nearest versions, the parse comparison, the step runner, the verdict and the report. The end-to-end rehearsal
with a real relock, image, migration and stacks is tests/integration/test_upgrade_rehearsal.py."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from concurrent.futures import Future
from pathlib import Path

import pytest

from platformctl.config import load_config
from platformctl.errors import ResolutionError, UpgradeApplyRefused, UpgradeInputError
from platformctl.upgrade import report
from platformctl.upgrade.compare import Change, Comparison, classify, compare, group_of
from platformctl.upgrade.lint import lint
from platformctl.upgrade.parse import compare_parses, error_location
from platformctl.upgrade.rehearse import BLOCKED, NEEDS_CHANGES, READY, Rehearsal, apply, decide
from platformctl.upgrade.relock import IndexCheck, blocked_lines, nearest, provider_specs, write_provider_specs
from platformctl.upgrade.scratch import Scratch, add_python, make_scratch, set_airflow
from platformctl.upgrade.stackrun import JobState, SmokeRun, StackRuns
from platformctl.upgrade.steps import FAILED, FINDINGS, NOT_RUN, OK, Runner

ROOT = Path(__file__).resolve().parents[3]


def _digest(paths: list[Path]) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git checkout of this project's platform.yaml and requirements (what the scratch tree and apply touch)."""
    root = tmp_path / "proj"
    (root / "requirements").mkdir(parents=True)
    shutil.copy(ROOT / "platform.yaml", root / "platform.yaml")
    for p in (ROOT / "requirements").iterdir():
        shutil.copy(p, root / "requirements" / p.name)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    return root


# ---------------------------------------------------------------- scratch tree
def test_set_airflow_moves_only_the_version():
    """On the shipped files, whichever version they are on (APPLY=1 then make test runs this on the applied one)."""
    yaml_text = (ROOT / "platform.yaml").read_text()
    in_text = (ROOT / "requirements/airflow.in").read_text()
    current = load_config(ROOT).airflow_version
    other = "3.3.1" if current != "3.3.1" else "3.3.2"
    new_yaml, new_in = set_airflow(yaml_text, in_text, other)
    assert f'airflow_version: "{other}"' in new_yaml and f"apache-airflow=={other}\n" in new_in
    changed = [(a, b) for a, b in zip(yaml_text.splitlines(), new_yaml.splitlines()) if a != b]
    assert len(changed) == 1 and len(new_yaml) == len(yaml_text)
    assert [a for a, b in zip(in_text.splitlines(), new_in.splitlines()) if a != b] == [f"apache-airflow=={current}"]


def test_set_airflow_without_a_line_is_one_clear_error():
    with pytest.raises(UpgradeInputError, match="no apache-airflow==<version> line"):
        set_airflow('airflow_version: "3.3.2"\n', "apache-airflow-providers-amazon\n", "3.3.1")


def test_add_python_appends_to_the_list():
    assert 'python_versions: ["3.12", "3.11", "3.13"]' in add_python('python_versions: ["3.12", "3.11"]\n', "3.13")
    assert add_python('python_versions: ["3.12"]\n', "3.12") == 'python_versions: ["3.12"]\n'


def test_scratch_copy_leaves_the_tree_byte_identical(project: Path):
    (project / "build").mkdir()
    (project / "build/build-record.json").write_text('{"image": "x"}')
    watched = [project / "platform.yaml", project / "build/build-record.json", *sorted((project / "requirements").iterdir())]
    before = _digest(watched)
    s = make_scratch(project, "3.3.2", "3.3.1")
    assert _digest(watched) == before
    assert s.root == project / "build/upgrade/3.3.2--3.3.1/tree"
    assert load_config(s.root).airflow_version == "3.3.1"
    assert (s.root / "build/build-record.json").read_text() == '{"image": "x"}'
    assert "apache-airflow==3.3.1" in (s.root / "requirements/airflow.in").read_text()


# ---------------------------------------------------------------- comparison
@pytest.mark.parametrize("old,new,kind,down", [
    ("1.2.3", "2.0.0", "major", False), ("1.2.3", "1.3.0", "minor", False), ("1.2.3", "1.2.4", "patch", False),
    ("3.3.2", "3.2.2", "minor", True), (None, "1.0", "added", False), ("1.0", None, "removed", False),
])
def test_classify(old, new, kind, down):
    c = classify("x", old, new)
    assert (c.kind, c.down) == (kind, down)


def test_groups():
    direct, team_only = {"pydantic"}, {"annotated-types"}
    assert group_of("apache-airflow-core", direct, team_only) == "airflow"
    assert group_of("apache-airflow-providers-amazon", direct, team_only) == "providers"
    assert group_of("pydantic", direct, team_only) == "team direct"
    assert group_of("annotated-types", direct, team_only) == "team transitive"
    assert group_of("sqlalchemy", direct, team_only) == "other"


def _lock(path: Path, pins: dict[str, str]) -> None:
    path.write_text("".join(f"{n}=={v} \\\n    --hash=sha256:{'0' * 64}\n" for n, v in pins.items()))


def test_compare_groups_every_change(tmp_path: Path):
    cur, new = tmp_path / "cur", tmp_path / "new"
    for r in (cur, new):
        (r / "requirements").mkdir(parents=True)
        (r / "requirements/team.in").write_text("pydantic>=2\n")
    _lock(cur / "requirements/airflow-py311.txt", {"apache-airflow": "3.3.2", "apache-airflow-providers-amazon": "9.1.0",
                                                   "arrow": "1.4.0", "sqlalchemy": "2.0.1"})
    _lock(new / "requirements/airflow-py311.txt", {"apache-airflow": "3.2.2", "apache-airflow-providers-amazon": "10.0.0",
                                                   "sqlalchemy": "2.0.1", "new-dep": "0.1"})
    _lock(cur / "requirements/team-py311.txt", {"pydantic": "2.7.0", "annotated-types": "0.6.0", "sqlalchemy": "2.0.1"})
    _lock(new / "requirements/team-py311.txt", {"pydantic": "2.8.0", "annotated-types": "0.6.1", "sqlalchemy": "2.0.1"})
    c = compare(cur, new, "3.11")
    texts = {g: [x.text() for x in v] for g, v in c.groups.items()}
    assert texts == {
        "airflow": ["apache-airflow 3.3.2 -> 3.2.2 (minor, down)"],
        "providers": ["apache-airflow-providers-amazon 9.1.0 -> 10.0.0 (major)"],
        "team direct": ["pydantic 2.7.0 -> 2.8.0 (minor)"],
        "team transitive": ["annotated-types 0.6.0 -> 0.6.1 (patch)"],
        "other": ["arrow 1.4.0 (removed)", "new-dep 0.1 (added)"],
    }
    assert c.unchanged == 1 and c.counts("other") == {"major": 0, "minor": 0, "patch": 0, "added": 1, "removed": 1}


# ---------------------------------------------------------------- relock: conflicts, index, providers
def test_conflict_names_the_in_line(tmp_path: Path):
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/airflow.in").write_text("# c\napache-airflow==3.2.2\napache-airflow-providers-amazon>=99\n")
    (tmp_path / "requirements/team.in").write_text("pydantic>=2.7\n")
    cfg = load_config(tmp_path)
    err = ResolutionError("cannot be resolved: Because apache-airflow-providers-amazon>=99 depends on "
                          "apache-airflow>=3.3.0 and you require apache-airflow==3.2.2, we can conclude ...",
                          where="requirements/airflow.in")
    lines = [c.line() for c in blocked_lines(tmp_path, cfg, err)]
    assert lines[0].startswith("requirements/airflow.in:2: apache-airflow==3.2.2 holds the resolution back: Because")
    assert lines[1].startswith("requirements/airflow.in:3: apache-airflow-providers-amazon>=99 holds")
    assert len(lines) == 2  # pydantic is not named by the resolver


def test_nearest_versions():
    versions = ["3.3.2", "3.3.1", "3.3.0", "3.2.2", "3.2.1", "2.11.0", "3.4.0b1"]
    assert nearest("3.3.5", versions) == ["3.3.2", "3.3.1", "3.3.0"]
    assert nearest("3.2.9", versions, 2) == ["3.2.2", "3.2.1"]


def _done(value) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f


def test_index_check_names_nearest_and_unsupported_python():
    every = ["3.3.2", "3.3.1", "3.2.2"]
    with pytest.raises(UpgradeInputError, match=r"3\.3\.9 is not on the package index.*nearest available: 3\.3\.2, 3\.3\.1"):
        IndexCheck("3.3.9", "3.11", _done(every), _done(every)).verify()
    with pytest.raises(UpgradeInputError, match=r"does not support Python 3\.9.*3\.2\.2"):
        IndexCheck("3.3.1", "3.9", _done(every), _done(["3.2.2"])).verify()
    IndexCheck("3.3.1", "3.11", _done(every), _done(every)).verify()
    IndexCheck("3.3.1", "3.11", _done([]), _done([])).verify()  # pip could not ask: the resolver decides


def test_provider_specs(tmp_path: Path):
    assert provider_specs("all") == (True, [])
    assert provider_specs("") == (False, [])
    with pytest.raises(UpgradeInputError, match="not an Airflow provider"):
        provider_specs("requests==2")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/airflow.in").write_text("apache-airflow==3.3.2\napache-airflow-providers-amazon\n")
    write_provider_specs(tmp_path, ["apache-airflow-providers-amazon>=9", "apache-airflow-providers-http"])
    assert (tmp_path / "requirements/airflow.in").read_text() == (
        "apache-airflow==3.3.2\napache-airflow-providers-amazon>=9\napache-airflow-providers-http\n")


# ---------------------------------------------------------------- parse comparison
def _bag(tasks: dict, edges: list, errors: dict | None = None) -> dict:
    return {"dags:docker": {"dags": {"etl": {"tasks": tasks, "edges": edges, "file": "etl.py"}}, "errors": errors or {}}}


def test_parse_comparison_lists_each_change():
    cur = _bag({"a": "x.Op", "b": "x.Op", "c": "x.Op"}, [["a", "b"], ["b", "c"]])
    new = _bag({"a": "x.Op", "b": "y.Other", "d": "x.Op"}, [["a", "b"]],
               {"broken.py": 'Traceback\n  File "/upgrade-parse/0/broken.py", line 7, in <module>\nImportError: no x'})
    p = compare_parses(cur, new)
    assert [c.what for c in p.changes] == [
        "task c (x.Op) missing in the candidate", "task d (x.Op) only in the candidate",
        "task b: operator x.Op -> y.Other", "dependency b >> c missing in the candidate"]
    assert {c.where for c in p.changes} == {"dags/etl.py"}
    assert p.new_errors == {"dags/broken.py:7 (docker)": "ImportError: no x"}
    assert compare_parses(cur, cur).changes == []


def test_error_location_without_a_frame():
    assert error_location("dags", "x.py", "SyntaxError") == "dags/x.py"


# ---------------------------------------------------------------- lint
def test_lint_reports_air3_with_file_line(tmp_path: Path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags/old.py").write_text('from airflow import DAG\nwith DAG("x", schedule_interval="@daily"):\n    pass\n')
    res = lint(tmp_path)
    assert ("dags/old.py:2:15", "AIR301") in {(f.where, f.code) for f in res.findings}
    assert lint(ROOT).findings == []  # the project itself is clean


# ---------------------------------------------------------------- runner, verdict, apply, report
def test_runner_stops_dependents():
    lines: list[str] = []
    r = Runner(echo=lines.append)

    def boom():
        raise UpgradeInputError("build broke")

    r.run("relock", "a", lambda: (OK, "fine"))
    r.run("build", "c", boom, needs=("relock",))
    r.run("checks", "c2", lambda: (OK, "never"), needs=("build",))
    r.run("lint", "e", lambda: (FINDINGS, "2 findings"))
    assert [s.status for s in r.steps] == [OK, FAILED, NOT_RUN, FINDINGS]
    assert "needs build, which did not pass" in r.steps[2].summary
    assert len(lines) == 4 and "build broke" in lines[1]


def _rehearsal(tmp_path: Path) -> Rehearsal:
    out = tmp_path / "build/upgrade/3.3.2--3.3.1"
    (out / "tree").mkdir(parents=True)
    return Rehearsal("3.3.2", "3.3.1", "3.11", Scratch(out / "tree", out), "img:cur", "img:cand")


def test_verdicts(tmp_path: Path):
    r = _rehearsal(tmp_path)
    r.runner = Runner(echo=lambda *_: None)
    r.runner.run("relock", "a. relock", lambda: (OK, ""))
    decide(r)
    assert r.verdict == READY
    r.current_runs = StackRuns("cur", "p", runs=[SmokeRun("example_etl", "success", 30.0)])
    r.candidate_runs = StackRuns("new", "p", runs=[SmokeRun("example_etl", "failed", 20.0,
                                                            [JobState("load", "failed", 3.0)])])
    decide(r)
    assert r.verdict == NEEDS_CHANGES and r.changes[0].where == "pipelines/example_etl.yaml"
    assert "jobs: load" in r.changes[0].what
    r.runner.run("build", "c. candidate image", lambda: (_ for _ in ()).throw(UpgradeInputError("no")),
                 needs=("relock",))
    r.runner.run("parse", "d. parse", lambda: (OK, ""), needs=("build",))
    r.blockers, r.changes = [], []
    decide(r)
    assert r.verdict == BLOCKED and [b.what for b in r.blockers] == [
        "c. candidate image: no", "d. parse: not run (needs build, which did not pass)"]


def test_apply_refuses_unless_ready(tmp_path: Path):
    r = _rehearsal(tmp_path)
    r.verdict = NEEDS_CHANGES
    with pytest.raises(UpgradeApplyRefused, match="nothing was written"):
        apply(r, tmp_path)


def test_report_is_self_contained(tmp_path: Path):
    r = _rehearsal(tmp_path)
    r.runner = Runner(echo=lambda *_: None)
    r.runner.run("relock", "a. relock every set", lambda: (OK, "8 locks"))
    r.runner.run("build", "c. candidate image", lambda: (_ for _ in ()).throw(UpgradeInputError("no <engine>")),
                 needs=("relock",))
    r.comparison = Comparison("3.11")
    r.comparison.groups["airflow"].append(Change("apache-airflow", "3.3.2", "3.3.1", "patch", True))
    decide(r)
    md, page, js = report.write(r, tmp_path)
    text = md.read_text()
    assert "Verdict: **blocked**" in text and "apache-airflow 3.3.2 -> 3.3.1 (patch, down)" in text
    assert "| c. candidate image | failed |" in text
    h = page.read_text()
    assert "no &lt;engine&gt;" in h and "<script" not in h and "http" not in h.replace("<!doctype html>", "")
    assert '"verdict": "blocked"' in js.read_text()
    summary = report.summary_lines(r, tmp_path)
    assert summary[-2].startswith("verdict: BLOCKED")


def test_a_failed_smoke_run_is_tried_once_more_and_reported(monkeypatch, tmp_path: Path):
    from platformctl.upgrade import stackrun

    class API:
        def __init__(self, url):
            self.url = url

        def healthy(self):
            return True

    monkeypatch.setattr("platformctl.stack.api.AirflowAPI", API)
    states = {"flaky": ["failed", "success"], "broken": ["failed", "failed"], "fine": ["success"]}

    def one(api, stack, name, timeout):
        return SmokeRun(name, states[name].pop(0), 10.0)

    monkeypatch.setattr(stackrun, "_one_run", one)
    stack = type("S", (), {"url": "http://127.0.0.1:1"})()
    runs = {r.pipeline: r for r in stackrun.smoke(stack, ["flaky", "broken", "fine"])}
    assert (runs["flaky"].state, runs["flaky"].earlier) == ("success", ["failed in 10s"])
    assert (runs["broken"].state, runs["broken"].earlier) == ("failed", ["failed in 10s"])
    assert (runs["fine"].state, runs["fine"].earlier) == ("success", [])
    assert report._run_text(runs["flaky"]) == "success in 10.0s (on try 2; before: failed in 10s)"


def test_one_rehearsal_of_a_pair_at_a_time(tmp_path: Path):
    from platformctl.upgrade.scratch import exclusive

    with exclusive(tmp_path / "x"):
        with pytest.raises(UpgradeInputError, match="another rehearsal is using"):
            with exclusive(tmp_path / "x"):
                pass
    with exclusive(tmp_path / "x"):
        pass


def test_error_summary_is_the_exception_line():
    from platformctl.upgrade.parse import _last_line

    text = ("Traceback (most recent call last):\n  File \"x.py\", line 3\nairflow.exceptions.AirflowTaskTimeout: "
            "DagBag import timeout for x.py after 30.0s.\nPlease take a look at these docs:\n* https://example/x, PID: 1")
    assert _last_line(text).startswith("airflow.exceptions.AirflowTaskTimeout: DagBag import timeout")
