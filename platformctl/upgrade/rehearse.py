"""`make upgrade-test AIRFLOW=<version>`: the whole rehearsal as a sequence of steps on a scratch copy, and
its verdict. The working tree is not written; apply() copies the candidate's files back when ready."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from ..config import PlatformConfig, collect_overrides, load_config
from ..engine import ContainerEngine, detect
from ..errors import UpgradeApplyRefused, UpgradeInputError
from ..lock.core import assert_fresh, targets
from ..record import BuildRecord
from . import stackrun
from .candidate import CandidateImage, ImageChecks, build_candidate, candidate_tag, check_candidate
from .compare import Comparison, compare
from .lint import LintResult, lint
from .parse import ParseComparison, parse_both
from .relock import IndexCheck, RelockResult, provider_specs, relock, write_provider_specs
from .scratch import AIRFLOW_IN, PLATFORM_YAML, Scratch, exclusive, make_scratch, rehearsal_dir
from .steps import FINDINGS, OK, Runner

READY, NEEDS_CHANGES, BLOCKED = "ready", "needs changes", "blocked"


@dataclass(frozen=True)
class UpgradeRequest:
    to_version: str
    python: str | None = None  # PYTHON=: the image's Python for the candidate (default: the current one)
    providers: str = ""  # PROVIDERS=all or a comma list of provider specs
    smoke_pipelines: tuple[str, ...] | None = None  # default: platform.yaml upgrade.smoke_pipelines


@dataclass(frozen=True)
class Item:
    where: str  # file:line, or "" when there is no file
    what: str


@dataclass
class Rehearsal:
    from_version: str
    to_version: str
    python: str
    scratch: Scratch
    current_image: str
    candidate_tag: str
    runner: Runner = field(default_factory=Runner)
    relock: RelockResult | None = None
    comparison: Comparison | None = None
    candidate: CandidateImage | None = None
    checks: ImageChecks | None = None
    parse: ParseComparison | None = None
    lint: LintResult | None = None
    current_runs: stackrun.StackRuns | None = None
    migration: stackrun.Migration | None = None
    candidate_runs: stackrun.StackRuns | None = None
    verdict: str = BLOCKED
    blockers: list[Item] = field(default_factory=list)
    changes: list[Item] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lower(self) -> bool:
        return Version(self.to_version) < Version(self.from_version)


# ---------------------------------------------------------------- before anything runs: bad input, one line
def current_build(root: Path, cfg: PlatformConfig, engine: ContainerEngine) -> BuildRecord:
    rec = BuildRecord.load(root)
    if rec is None or not rec.image_id:
        raise UpgradeInputError("there is no current image to compare with (build/build-record.json is missing)",
                                "run make build first")
    if not rec.tested:
        raise UpgradeInputError(f"the current image {rec.image} did not pass its image tests",
                                "run make build until it passes, then rehearse")
    if rec.airflow_version != cfg.airflow_version:
        raise UpgradeInputError(f"the current image {rec.image} is of Airflow {rec.airflow_version}, platform.yaml "
                                f"says {cfg.airflow_version}", "run make build first", where=str(PLATFORM_YAML))
    if engine.image_id(rec.image_id) is None:
        raise UpgradeInputError(f"the engine no longer has the current image {rec.image}", "run make build first")
    return rec


def preflight(root: Path, req: UpgradeRequest) -> tuple[PlatformConfig, ContainerEngine, BuildRecord]:
    cfg = load_config(root, collect_overrides())
    python = req.python or cfg.image.python
    if req.to_version == cfg.airflow_version:
        raise UpgradeInputError(f"the project is already on Airflow {req.to_version}",
                                "name another version: make upgrade-test AIRFLOW=<version>")
    try:
        Version(req.to_version)
    except ValueError:
        raise UpgradeInputError(f"'{req.to_version}' is not a version", "e.g. make upgrade-test AIRFLOW=3.3.1") from None
    provider_specs(req.providers)  # a malformed PROVIDERS= is refused before any work
    with ThreadPoolExecutor(max_workers=2) as pool:  # the target exists, for the image's Python (~1 s)
        IndexCheck.start(pool, req.to_version, python).verify()
    assert_fresh(root, cfg)  # a stale committed lock is fixed first (make lock): it is the comparison's baseline
    engine = detect(cfg.image.docker, cfg.image.engine)  # no engine: the set-up hint, before the relock
    return cfg, engine, current_build(root, cfg, engine)


# ---------------------------------------------------------------- the steps
def rehearse(root: Path, req: UpgradeRequest, *, echo=None) -> Rehearsal:
    from ..output import say

    echo = echo or say
    t_all = time.perf_counter()
    cfg, engine, rec = preflight(root, req)
    with exclusive(rehearsal_dir(root, cfg.airflow_version, req.to_version)):
        return _rehearse(root, req, cfg, engine, rec, echo, t_all)


def _rehearse(root: Path, req: UpgradeRequest, cfg: PlatformConfig, engine: ContainerEngine, rec: BuildRecord,
              echo, t_all: float) -> Rehearsal:
    python = req.python or cfg.image.python
    scratch = make_scratch(root, cfg.airflow_version, req.to_version,
                           python=python if python not in cfg.python_versions else None)
    upgrade_all, specs = provider_specs(req.providers)
    if specs:
        write_provider_specs(scratch.root, specs)
    overrides = {**collect_overrides(), "image.python": (python, "PYTHON")}
    tcfg = load_config(scratch.root, overrides)
    r = Rehearsal(cfg.airflow_version, req.to_version, python, scratch, rec.image, candidate_tag(tcfg, req.to_version))
    r.runner.echo = echo
    pipelines = list(req.smoke_pipelines or cfg.upgrade.smoke_pipelines)
    out = scratch.out
    echo(f"upgrade rehearsal Airflow {r.from_version} -> {r.to_version} (python {python}) in {out.relative_to(root)}")
    run = r.runner.run

    def s_relock():
        r.relock = relock(scratch.root, tcfg, upgrade_providers=upgrade_all)
        if not r.relock.ok:
            moved = [c.package for c in r.relock.conflicts if c.package in specs]
            if moved:
                raise UpgradeInputError(f"Airflow {req.to_version} cannot take PROVIDERS= {', '.join(moved)}",
                                        "drop or relax it (the conflict lines are in the report)")
            raise UpgradeInputError(f"{len(r.relock.conflicts)} requirement(s) block the relock: "
                                    + "; ".join(c.line() for c in r.relock.conflicts)[:600])
        return OK, f"{len(r.relock.locks)} locks relocked"

    def s_compare():
        r.comparison = compare(root, scratch.root, python)
        c = r.comparison
        parts = [f"{g}: {len(v)}" for g, v in c.groups.items() if v]
        return OK, f"{c.total()} image packages changed ({', '.join(parts) or 'none'}), {c.unchanged} unchanged"

    def s_build():
        r.candidate = build_candidate(scratch.root, tcfg, engine, r.candidate_tag, out / "candidate-build.log")
        if r.comparison is not None:
            r.comparison.size_current = int(engine.inspect(rec.image_id).get("Size") or 0)
            r.comparison.size_candidate = r.candidate.size
        return OK, f"{r.candidate_tag} ({r.candidate.image_id[:19]}, {r.candidate.size / 1e6:.0f} MB)"

    def s_checks():
        r.checks = check_candidate(scratch.root, tcfg, engine, r.candidate.image_id)
        if not r.checks.ok:
            raise UpgradeInputError("image checks failed: " + "; ".join(r.checks.failures)[:600])
        again = f" (try {len(r.checks.earlier) + 1}: an earlier try timed out)" if r.checks.earlier else ""
        return OK, ", ".join(f"{g} {v}" for g, v in r.checks.groups.items()) + again

    def s_parse():
        r.parse = parse_both(engine, rec.image_id, r.candidate.image_id, root)
        p = r.parse
        status = FINDINGS if (p.new_errors or p.changes) else OK
        return status, (f"{p.dags_current} -> {p.dags_candidate} DAG parses, {len(p.new_errors)} new import errors, "
                        f"{len(p.changes)} structure changes")

    def s_lint():
        r.lint = lint(root)
        return (FINDINGS if r.lint.findings else OK), f"{len(r.lint.findings)} AIR3 findings ({r.lint.ruff})"

    dump = out / "current-db.sql"
    revision: list[str] = []

    def s_smoke_current():
        runs, rev = stackrun.run_current(scratch.root, tcfg, engine, rec.image, stackrun.project_name(
            r.from_version, r.to_version, "current"), pipelines, dump)
        r.current_runs = runs
        revision.append(rev)
        if not runs.ok:
            raise UpgradeInputError("the smoke pipelines fail on the CURRENT image: "
                                    + ", ".join(f"{x.pipeline} {x.state}" for x in runs.runs), "fix them first")
        return OK, "; ".join(_run_line(x) for x in runs.runs) + f" (db at {rev})"

    cand_stack: list = []

    def s_migrate():
        m, stack = stackrun.migrate_copy(scratch.root, tcfg, engine, current_image=rec.image,
                                         candidate_image=r.candidate.image_id,
                                         project=stackrun.project_name(r.from_version, r.to_version, "candidate"),
                                         dump=dump, revision_before=revision[0], lower=r.lower)
        r.migration = m
        if not m.ok:
            if stack is not None:
                stackrun.down(stack)
            raise UpgradeInputError(m.error or "the migration failed")
        cand_stack.append(stack)
        return OK, f"{m.revision_before} -> {m.revision_after}" + (" (downgraded by the current image)" if m.downgraded else "")

    def s_smoke_candidate():
        r.candidate_runs = stackrun.run_candidate(cand_stack[0], r.candidate.image_id, pipelines)
        status = OK if r.candidate_runs.ok else FINDINGS
        return status, "; ".join(_run_line(x) for x in r.candidate_runs.runs)

    run("relock", "a. relock every set", s_relock)
    run("compare", "b. dependency comparison", s_compare, needs=("relock",))
    run("build", "c. candidate image", s_build, needs=("relock",))
    run("image-checks", "c. image checks (all groups)", s_checks, needs=("build",))
    run("parse", "d. DAG parse comparison", s_parse, needs=("build",))
    run("lint", "e. ruff AIR3", s_lint)
    run("smoke-current", "g. smoke runs, current image", s_smoke_current, needs=("image-checks",))
    run("migrate", "f. migrate a copy of the DB", s_migrate, needs=("image-checks", "smoke-current"))
    run("smoke-candidate", "g. smoke runs, candidate", s_smoke_candidate, needs=("migrate",))
    for stack in cand_stack:  # removed by its smoke step; never left behind
        if stack.env_file.exists():
            stackrun.down(stack)
    decide(r)
    r.seconds = round(time.perf_counter() - t_all, 1)
    return r


def _run_line(x: stackrun.SmokeRun) -> str:
    return f"{x.pipeline} {x.state} in {x.seconds:.0f}s" + (f" (try {len(x.earlier) + 1})" if x.earlier else "")


# ---------------------------------------------------------------- the verdict
def decide(r: Rehearsal) -> None:
    for s in r.runner.steps:
        if s.status == "failed":
            if s.name == "relock" and r.relock and r.relock.conflicts:
                r.blockers += [Item(c.where, f"{c.package}: {c.reason}") for c in r.relock.conflicts]
            else:
                r.blockers.append(Item("", f"{s.title}: {s.summary}"))
        elif s.status == "not run":
            r.blockers.append(Item("", f"{s.title}: not run ({s.summary})"))
    if r.parse:
        r.changes += [Item(where.rsplit(" (", 1)[0], f"new import error ({where.rsplit(' (', 1)[1]}: {msg}")
                      for where, msg in r.parse.new_errors.items()]
        r.changes += [Item(c.where, f"{c.dag}: {c.what}") for c in r.parse.changes]
    if r.lint:
        r.changes += [Item(f.where, f"{f.code} {f.message}") for f in r.lint.findings]
    if r.candidate_runs and r.current_runs:
        before = {x.pipeline: x.state for x in r.current_runs.runs}
        for x in r.candidate_runs.runs:
            if x.state != "success":
                failed = [j.task for j in x.jobs if j.state not in ("success", "skipped")]
                r.changes.append(Item(f"pipelines/{x.pipeline}.yaml",
                                      f"{x.pipeline} ended {x.state} on the candidate ({before.get(x.pipeline)} on the "
                                      f"current image)" + (f"; jobs: {', '.join(failed)}" if failed else "")
                                      + (f"; {x.error}" if x.error else "")))
    r.verdict = BLOCKED if r.blockers else NEEDS_CHANGES if r.changes else READY


# ---------------------------------------------------------------- APPLY=1
def applied_files(r: Rehearsal, root: Path) -> list[str]:
    tcfg = load_config(r.scratch.root, {**collect_overrides(), "image.python": (r.python, "PYTHON")})
    return [str(PLATFORM_YAML), str(AIRFLOW_IN), *[t.out_rel for t in targets(tcfg)]]


def apply(r: Rehearsal, root: Path) -> list[str]:
    """Copy the candidate's locks, airflow.in and platform.yaml into the working tree: only when ready."""
    if r.verdict != READY:
        raise UpgradeApplyRefused(f"verdict is {r.verdict}: nothing was written to the working tree",
                                  f"see {r.scratch.report_md}; rehearse again once it is ready")
    files = applied_files(r, root)
    for rel in files:
        src, dst = r.scratch.root / rel, root / rel
        tmp = dst.with_name(dst.name + ".upgrade-tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    return files
