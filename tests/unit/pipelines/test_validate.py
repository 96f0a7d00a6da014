"""Every validation error: one message per problem, with file, line and field."""

from __future__ import annotations

import time

import pytest

from platformctl.pipelines.validate import check
from tests.unit.pipelines.samples import FLAVORS, V1, breakages, problems

def test_good_pipeline_has_no_problems():
    c = check("pipelines/p.yaml", V1.encode(), FLAVORS)
    assert c.problems == [] and c.pipeline.dag.name == "churn_model" and c.source_version == 1


@pytest.mark.parametrize("case", breakages("V1", "V2"))
def test_each_error_names_file_line_and_field(case):
    found = problems(case.text())
    assert any(p.startswith(case.problem) for p in found), found


def test_cycle_is_shown():
    text = V1.replace("    command: [python, -m, churn.extract]",
                        "    command: [python, -m, churn.extract]\n    depends_on: [train]")
    (p,) = problems(text)
    assert "dependency cycle: extract -> train -> extract" in p


def test_several_problems_are_all_reported():
    text = V1.replace("gpu-a100", "gpu-a10").replace("[extract]", "[nope]").replace('"0 3 * * *"', '"x"')
    assert len(problems(text)) == 3


def test_missing_version_is_version_1():
    c = check("pipelines/p.yaml", V1.replace("version: 1\n", "").encode(), FLAVORS)
    assert c.problems == [] and c.source_version == 1


HOSTILE = {
    "billion laughs": "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
    "python tag": "dag: !!python/object/apply:os.system ['touch /tmp/pwned-yaml']\n",
    "deep nesting": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "binary": "\x00\x01\x02\xff",
    "not a mapping": "- just\n- a list\n",
    "broken": "dag: {name: [unclosed\n",
    "huge": "a: " + "x" * (300 * 1024) + "\n",
    "empty": "",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_yaml_is_refused_quickly_with_a_message(name):
    raw = HOSTILE[name].encode("latin-1")
    t0 = time.perf_counter()
    c = check("pipelines/evil.yaml", raw, FLAVORS)
    assert time.perf_counter() - t0 < 5
    assert c.pipeline is None and len(c.problems) >= 1
    assert all(str(p).startswith("pipelines/evil.yaml") for p in c.problems)


def test_python_tags_never_execute(tmp_path):
    import os

    check("pipelines/evil.yaml", HOSTILE["python tag"].encode(), FLAVORS)
    assert not os.path.exists("/tmp/pwned-yaml")


def test_trigger_rules_match_airflows():
    from airflow.task.trigger_rule import TriggerRule

    from platformctl.pipelines.model import TRIGGER_RULES

    assert set(TRIGGER_RULES) == {r.value for r in TriggerRule}


@pytest.mark.parametrize("key", ["yes", "on", "true", "1"])
def test_a_job_name_yaml_reads_as_no_text_is_one_problem_line(key):
    raw = (f"dag: {{name: p}}\ndefaults: {{docker_image: r/x:1, resource_flavor: cpu-small}}\n"
           f"jobs:\n  a: {{command: [x]}}\n  {key}: {{command: [y]}}\n").encode()
    c = check("pipelines/p.yaml", raw, FLAVORS)
    assert c.pipeline is None
    bad = [p for p in c.problems if "not text: quote it" in p.message]
    assert len(bad) == 1 and (bad[0].line, bad[0].field) == (5, f"jobs.{key}"), c.problems
    assert f"quote it ('{key}')" in bad[0].message
