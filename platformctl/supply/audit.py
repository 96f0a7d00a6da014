"""make audit: pip-audit over every lock (hash-checked, no resolution), the OSV source, strict.

The locks' distinct pins (most are shared by the two Pythons' locks) are written, each with its --hash lines
verbatim, into a few hashed requirement files that pip-audit audits at the same time: each pin is asked for
once, and pip-audit's one-request-per-pin OSV client runs in parallel.

pip-audit asks the OSV service (`audit.osv_url`, default the public API; `<url>/v1/query` per pin) and, with
`--strict`, fails on a pin the service cannot answer for: it never passes silently. Severities come from
the same service (`<url>/v1/vulns/<id>`: the GHSA `database_specific.severity`, else a numeric `severity`
score); a finding with no severity counts as critical (fails closed).

The policy file (audit.yaml) says at which severity the audit fails and which findings are accepted for a
while: allowlist entries each with an id, a reason and an expiry date; an expired entry fails, naming it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import PlatformConfig
from ..errors import AuditError, AuditFailed
from ..lock.core import REQ_DIR
from ..yamlfile import line_of, read_yaml

SEVERITIES = ("low", "medium", "high", "critical")
_GHSA = {"low": "low", "moderate": "medium", "medium": "medium", "high": "high", "critical": "critical"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AllowEntry(_Model):
    id: str = Field(..., min_length=3, description="The advisory id (GHSA-..., PYSEC-..., CVE-...).")
    reason: str = Field(..., min_length=3, description="Why it is accepted (not exploitable here, fix pending...).")
    expires: dt.date = Field(..., description="Until when (YYYY-MM-DD); an expired entry fails the audit.")


class AuditPolicy(_Model):
    fail_at: Literal["low", "medium", "high", "critical"] = Field(
        "medium", description="The audit fails on a finding at or above this severity.")
    allowlist: list[AllowEntry] = Field(default_factory=list)


def load_policy(root: Path, cfg: PlatformConfig) -> tuple[AuditPolicy, str]:
    rel = cfg.audit.policy
    path = root / rel
    if not path.exists():
        return AuditPolicy(), f"{rel} (absent: defaults)"
    data, text = read_yaml(path, rel, hint="see docs/supply-chain.md")
    try:
        return AuditPolicy.model_validate(data or {}), rel
    except ValidationError as exc:
        err = exc.errors()[0]
        line = line_of(text, err["loc"])
        field = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is missing: every allowlist entry needs an id, a reason and an expiry date"
        raise AuditError(f"{field}: {msg}", "e.g. {id: GHSA-xxxx, reason: ..., expires: 2027-01-31}",
                         where=f"{rel}:{line}" if line else rel) from None


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    severity: str
    fix_versions: tuple[str, ...]
    locks: tuple[str, ...]
    allowed_by: str | None = None  # the allowlist entry's id when accepted

    def line(self) -> str:
        fix = f", fixed in {', '.join(self.fix_versions)}" if self.fix_versions else ", no fix yet"
        allowed = f" [allowed: {self.allowed_by}]" if self.allowed_by else ""
        return f"{self.package}=={self.version}: {self.id} ({self.severity}{fix}) in {', '.join(self.locks)}{allowed}"


@dataclass
class AuditResult:
    locks: list[str]
    packages: int
    findings: list[Finding]
    failing: list[Finding]
    expired: list[AllowEntry]
    policy: str
    osv_url: str
    seconds: float
    unused_allow: list[str]  # allowlist ids that matched no finding

    @property
    def ok(self) -> bool:
        return not self.failing and not self.expired


def all_locks(root: Path) -> dict[str, list[Path]]:
    """Every lock, by Python."""
    out: dict[str, list[Path]] = {}
    for p in sorted((root / REQ_DIR).glob("*-py*.txt")):
        m = re.search(r"-py(\d+)\.txt$", p.name)
        if m:
            out.setdefault(m[1], []).append(p)
    return out


def _pip_audit(locks: list[Path], osv_url: str, timeout: int, cache: str) -> list[dict]:
    exe = Path(sys.executable).with_name("pip-audit")
    cmd = [str(exe) if exe.exists() else "pip-audit", "--require-hashes", "--disable-pip", "--strict",
           "-s", "osv", "--osv-url", f"{osv_url.rstrip('/')}/v1/query", "--timeout", str(timeout),
           "--cache-dir", cache, "-f", "json", "--progress-spinner", "off"]
    for lock in locks:
        cmd += ["-r", str(lock)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_NO_INPUT": "1"})
    names = f"{sum(1 for lk in locks for ln in lk.read_text().splitlines() if ln[:1].isalnum())} pins"
    if p.stdout.strip().startswith("{"):
        try:
            return json.loads(p.stdout)["dependencies"]
        except (ValueError, KeyError):
            pass
    err = p.stderr
    if re.search(r"ConnectionError|Connection refused|Failed to establish|Max retries|ConnectTimeout|"
                 r"Could not connect", err):
        raise AuditError(f"the OSV service at {osv_url} cannot be reached (auditing {names})",
                         "start it or set audit.osv_url / AUDIT_OSV_URL to one that answers")
    if re.search(r"JSONDecodeError|Expecting value|KeyError|TypeError|is not valid JSON|InvalidVersion", err):
        raise AuditError(f"the OSV service at {osv_url} answered something that is not OSV JSON (auditing {names})",
                         "check audit.osv_url points at an OSV API (POST /v1/query)")
    if re.search(r"HTTPError|ServiceError|\b[45]\d\d\b", err):
        raise AuditError(f"the OSV service at {osv_url} refused the queries (auditing {names}): "
                         f"{_last(err)}", "check audit.osv_url")
    raise AuditError(f"pip-audit failed on {names}: {_last(err or p.stdout)}",
                     "a pin pip-audit cannot audit fails the audit (--strict)")


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def severity_of(osv_url: str, ids: list[str], timeout: int) -> tuple[str, str]:
    """(id the service knows, severity): GHSA's database_specific.severity, else a numeric score; "unknown"
    when none of the ids (pip-audit's and its aliases) has a record there."""
    doc, vuln_id = None, ids[0]
    for vid in ids:
        try:
            r = requests.get(f"{osv_url.rstrip('/')}/v1/vulns/{vid}", timeout=timeout)
            if r.status_code == 404:
                continue
            r.raise_for_status()
            doc, vuln_id = r.json(), vid
            break
        except requests.RequestException as exc:
            raise AuditError(f"the OSV service at {osv_url} did not answer for {vid} ({type(exc).__name__})",
                             "check audit.osv_url") from None
        except ValueError:
            raise AuditError(f"the OSV service at {osv_url} answered something that is not OSV JSON for {vid}",
                             "check audit.osv_url") from None
    if doc is None:
        return vuln_id, "unknown"
    return vuln_id, _severity(doc)


def _severity(doc: dict) -> str:
    sev = str((doc.get("database_specific") or {}).get("severity") or "").lower()
    if sev in _GHSA:
        return _GHSA[sev]
    for s in doc.get("severity") or []:
        try:
            score = float(s.get("score"))
        except (TypeError, ValueError):
            continue
        return "critical" if score >= 9 else "high" if score >= 7 else "medium" if score >= 4 else "low"
    return "unknown"


def pin_blocks(locks: list[Path]) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], list[str]]]:
    """Every distinct pin of the locks as its block of lines (the requirement and its --hash lines, verbatim),
    and the locks each pin is in. The locks of the two Pythons share most pins: each is asked for once."""
    from packaging.utils import canonicalize_name

    from ..lock.files import _PIN_RE

    blocks: dict[tuple[str, str], str] = {}
    where: dict[tuple[str, str], list[str]] = {}
    for lock in locks:
        key, lines = None, []
        for line in lock.read_text().splitlines() + [""]:
            m = _PIN_RE.match(line)
            if m or not line.startswith((" ", "\t")):
                if key is not None:
                    blocks.setdefault(key, "\n".join(lines).rstrip(" \\") + "\n")
                    where.setdefault(key, []).append(lock.name)
                key, lines = ((canonicalize_name(m[1]), m[3]), [line]) if m else (None, [])
            elif key is not None and line.strip().startswith("--hash="):
                lines.append(line)
    return blocks, where


def audit(root: Path, cfg: PlatformConfig, today: dt.date | None = None, workers: int = 3) -> AuditResult:
    t0 = time.perf_counter()
    policy, policy_name = load_policy(root, cfg)
    today = today or dt.date.today()
    locks = [p for ps in all_locks(root).values() for p in ps]
    if not locks:
        raise AuditError(f"no locks in {REQ_DIR}/", "run make lock")
    blocks, where = pin_blocks(locks)
    url = cfg.audit.osv_url
    keys = sorted(blocks)
    n = max(1, min(workers, len(keys)))
    with tempfile.TemporaryDirectory(prefix="platform-audit-") as tmp:
        chunks = []
        for i in range(n):  # the distinct pins in n hashed requirement files, audited at the same time
            part = Path(tmp) / f"pins-{i}.txt"
            part.write_text("".join(blocks[k] for k in keys[i::n]))
            chunks.append([part])
        with ThreadPoolExecutor(max_workers=n) as pool:
            runs = list(pool.map(lambda files: _pip_audit(files, url, cfg.audit.timeout, tmp), chunks))
    found: dict[tuple[str, str, str], dict] = {}
    packages = 0
    for deps in runs:
        for d in deps:
            packages += 1
            for v in d.get("vulns") or []:
                found[(d["name"], d.get("version", ""), v["id"])] = v
    allow = {a.id: a for a in policy.allowlist}
    findings, failing, used = [], [], set()
    threshold = SEVERITIES.index(policy.fail_at)
    for (name, version, vid), v in sorted(found.items()):
        ids = [vid, *v.get("aliases", [])]
        known, sev = severity_of(url, ids, cfg.audit.timeout)
        entry = next((allow[i] for i in ids if i in allow), None)
        from packaging.utils import canonicalize_name

        in_locks = tuple(sorted(set(where.get((canonicalize_name(name), version), []))))
        f = Finding(name, version, known, tuple(i for i in ids if i != known), sev, tuple(v.get("fix_versions", [])),
                    in_locks, entry.id if entry and entry.expires >= today else None)
        findings.append(f)
        if entry:
            used.add(entry.id)
        at_or_above = sev == "unknown" or SEVERITIES.index(sev) >= threshold
        if at_or_above and not f.allowed_by:
            failing.append(f)
    expired = [a for a in policy.allowlist if a.expires < today]
    return AuditResult([str(p.relative_to(root)) for p in locks], packages, findings, failing, expired,
                       policy_name, url, round(time.perf_counter() - t0, 2),
                       [a.id for a in policy.allowlist if a.id not in used])


def gate(res: AuditResult) -> None:
    """AuditFailed (one line) when the result does not pass the policy."""
    if res.expired:
        e = res.expired[0]
        raise AuditFailed(f"{res.policy}: allowlist entry {e.id} expired on {e.expires} ({e.reason})",
                          "fix the finding, or renew the entry with a new reason and expiry")
    if res.failing:
        worst = res.failing[0]
        more = f" and {len(res.failing) - 1} more" if len(res.failing) > 1 else ""
        raise AuditFailed(f"{len(res.failing)} vulnerability finding(s) at or above the policy's severity: "
                          f"{worst.line()}{more}",
                          f"upgrade the pin (make lock UPGRADE_PACKAGE={worst.package}) or allowlist it in "
                          f"{res.policy} with a reason and an expiry")
