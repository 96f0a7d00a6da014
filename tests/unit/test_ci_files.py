"""The example CI pipelines: linted, schema-valid, only Makefile targets, the job order docs/ci.md gives."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

GITHUB = ROOT / "examples" / "ci" / "github" / "platform.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml"
BIN = Path(sys.executable).parent
GITLAB_KEYWORDS = {"workflow", "stages", "variables", "default", "include", "image", "services", "cache"}
ALLOWED_NON_MAKE = re.compile(r'^git push "?\S+"? "HEAD:refs/heads/\S+" "refs/tags/v\$\{VERSION\}"$')


def tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or pytest.fail(f"{name} missing: run make venv")


def gh() -> dict:
    return yaml.safe_load(GITHUB.read_text())


def gl() -> dict:
    return yaml.safe_load(GITLAB.read_text())


def gl_jobs() -> dict[str, dict]:
    return {k: v for k, v in gl().items() if k not in GITLAB_KEYWORDS and not k.startswith(".")}


def commands() -> dict[str, dict[str, list[str]]]:
    """ci -> job -> its command lines."""
    out = {"github": {}, "gitlab": {}}
    for name, job in gh()["jobs"].items():
        out["github"][name] = [ln.strip() for s in job["steps"] if "run" in s for ln in s["run"].splitlines()
                               if ln.strip()]
    for name, job in gl_jobs().items():
        out["gitlab"][name] = [ln.strip() for ln in job.get("script", [])]
    return out


def make_calls(line: str) -> list[str]:
    return re.findall(r"(?:^|;|then|else|&&)\s*make ([a-z][a-z-]*)", line)


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))


def doc_table() -> list[dict[str, str]]:
    text = (ROOT / "docs" / "ci.md").read_text()
    block = text.split("## Jobs, in order", 1)[1]
    lines = block.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| "))
    rows: list[str] = []
    for ln in lines[start:]:  # the first table only
        if not ln.startswith("|"):
            break
        rows.append(ln)
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    return [dict(zip(head, (c.strip() for c in r.strip("|").split("|")))) for r in rows[2:]]


def test_actionlint_passes_and_can_fail(tmp_path):
    lint = tool("actionlint")
    p = subprocess.run([lint, "-no-color", str(GITHUB)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(GITHUB.read_text().replace("needs: release\n", "needs: relase\n"))
    p = subprocess.run([lint, "-no-color", str(broken)], capture_output=True, text=True)
    assert p.returncode != 0 and 'needs job "relase"' in p.stdout


@pytest.mark.parametrize("path,schema", [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")])
def test_files_validate_against_their_schemastore_schema(path, schema, tmp_path):
    check = tool("check-jsonschema")
    p = subprocess.run([check, "--builtin-schema", schema, str(path)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    bad = tmp_path / path.name
    bad.write_text(path.read_text().replace("needs: [build]", "needs: {build: 1}").replace(
        "needs: build\n", "needs: {build: 1}\n"))
    p = subprocess.run([check, "--builtin-schema", schema, str(bad)], capture_output=True, text=True)
    assert p.returncode != 0  # the schema does reject a broken file


def test_every_line_is_an_existing_make_target():
    targets = makefile_targets()
    for ci, jobs in commands().items():
        for job, cmds in jobs.items():
            for line in cmds:
                called = make_calls(line)
                if not called:
                    assert ALLOWED_NON_MAKE.match(line), f"{ci} {job}: not a make target: {line}"
                for t in called:
                    assert t in targets, f"{ci} {job}: make {t} is not a Makefile target"


def test_jobs_needs_and_targets_match_the_docs():
    rows = doc_table()
    assert [r["job"] for r in rows] == list(gh()["jobs"]) == list(gl_jobs())
    cmds = commands()
    norm = lambda v: [] if v in (None, "-") else [v] if isinstance(v, str) else list(v)  # noqa: E731
    for r in rows:
        job = r["job"]
        assert norm(gh()["jobs"][job].get("needs")) == norm(r["needs (GitHub)"].replace("-", "") or None), job
        assert norm(gl_jobs()[job].get("needs")) == norm(r["needs (GitLab)"].replace("-", "") or None), job
        want = [t.strip() for t in r["make targets"].split(",")]
        for ci in ("github", "gitlab"):
            got = list(dict.fromkeys(t for ln in cmds[ci][job] for t in make_calls(ln)))
            assert got == want, f"{ci} {job}: {got} != docs {want}"
    stages = gl()["stages"]
    order = [stages.index(gl_jobs()[r["job"]]["stage"]) for r in rows]
    assert order == sorted(order)


def test_deploys_are_serialised_and_prod_needs_approval():
    jobs = gh()["jobs"]
    for job, group in (("deploy-dev", "deploy-dev"), ("promote-prod", "deploy-prod")):
        assert jobs[job]["concurrency"] == {"group": group, "cancel-in-progress": False}
        assert gl_jobs()[job]["resource_group"] == group
    assert jobs["promote-prod"]["environment"] == "prod" and jobs["deploy-dev"]["environment"] == "dev"
    assert gl_jobs()["promote-prod"]["environment"]["name"] == "prod"
    assert all(r.get("when") == "manual" for r in gl_jobs()["promote-prod"]["rules"])
    assert all(r.get("when") == "manual" for r in gl_jobs()["release"]["rules"])


def test_build_record_is_passed_as_an_artifact():
    build = gh()["jobs"]["build"]["steps"]
    up = [s for s in build if s.get("uses", "").startswith("actions/upload-artifact")]
    assert up and up[0]["with"]["path"] == "build/build-record.json"
    for job in ("deploy-dev", "release"):
        down = [s for s in gh()["jobs"][job]["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
        assert down and down[0]["with"] == {"name": up[0]["with"]["name"], "path": "build"}
    assert "build/build-record.json" in gl_jobs()["build"]["artifacts"]["paths"]


def test_no_inline_credentials():
    text = GITHUB.read_text()
    for var in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD"):
        values = re.findall(rf"{var}: (.+)", text)
        assert values and all(v.strip() == f"${{{{ secrets.{var} }}}}" for v in values)
    assert "AWS_SECRET_ACCESS_KEY" not in text and "aws-access-key-id" not in text  # OIDC roles only
    for name, job in gh()["jobs"].items():
        if any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"]):
            assert job["permissions"]["id-token"] == "write", name
    gtext = GITLAB.read_text()
    assert not re.search(r"(PASSWORD|SECRET|TOKEN)\w*:\s*\S", gtext)  # never assigned in the file
