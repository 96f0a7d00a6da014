"""The deploy ledger (issue 38): one immutable entry per deploy, rollback, promote and gc, in the environment's store.

Layout under the environment's prefix P:

    P/ledger/<id>.json        written BEFORE the change (the pointer switch, the promotion, the removal)
    P/ledger/<id>.done.json   written after it: the result ("switched", "already live", "failed: ...")

Both are created with a conditional create (If-None-Match: *): an entry is never overwritten. An entry
without its .done object is a change that started and never reported back (a crash between the two, or
one still running): `make history` shows it as `INCOMPLETE`. Ids sort by time: e-<UTC time>-<random>,
so a listing (one request per 1,000 entries) orders the ledger without reading the entries.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from ..errors import ConflictError, LedgerError, StoreError
from .store import BundleStore

LEDGER = "ledger"
ENTRY_RE = re.compile(r"^e-\d{8}T\d{6}\d{3}Z-[0-9a-f]{6}$")
ACTIONS = ("deploy", "rollback", "promote", "gc")
# who ran it, from the CI's own variables first (GitHub Actions, GitLab CI, Jenkins, Buildkite, CircleCI)
CI_ACTOR_VARS = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER_ID", "BUILDKITE_BUILD_CREATOR", "CIRCLE_USERNAME")


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def actor(cwd=None) -> str:
    for var in CI_ACTOR_VARS:
        if os.environ.get(var):
            return f"{os.environ[var]} (ci: {var})"
    try:
        p = subprocess.run(["git", "config", "user.email"], cwd=cwd, capture_output=True, text=True, timeout=10,
                           check=False)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def new_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"e-{now.strftime('%Y%m%dT%H%M%S')}{now.microsecond // 1000:03d}Z-{uuid.uuid4().hex[:6]}"


@dataclass
class Entry:
    id: str
    action: str
    environment: str
    actor: str
    time: str
    commit: str | None = None
    image_digest: str | None = None
    version: str | None = None
    from_version: str | None = None
    summary: str = ""
    key_id: str | None = None
    # from the .done object (None: not completed)
    result: str | None = None
    completed_at: str | None = None

    @property
    def complete(self) -> bool:
        return self.result is not None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class History:
    entries: list[Entry]
    total: int
    incomplete: list[str] = field(default_factory=list)  # ids without their .done, among all


class Ledger:
    def __init__(self, store: BundleStore, prefix: str, environment: str):
        self.store, self.prefix, self.environment = store, prefix, environment
        self.base = _join(prefix, LEDGER)

    def _key(self, entry_id: str, done: bool = False) -> str:
        return _join(self.base, f"{entry_id}{'.done' if done else ''}.json")

    def _create(self, key: str, doc: dict) -> None:
        data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        try:
            self.store.put_if(key, data, None)  # conditional create: an entry is never overwritten
        except ConflictError:
            raise LedgerError(f"ledger object {key} exists already in {self.store.url}",
                              "run the command again (a new entry id is drawn)") from None
        except StoreError as exc:
            raise LedgerError(f"cannot write the ledger entry {key} in {self.store.url}: {exc.message}",
                              "fix the store access and run the command again; nothing was switched") from None

    def begin(self, action: str, *, version: str | None, from_version: str | None = None, commit: str | None = None,
              image_digest: str | None = None, summary: str = "", key_id: str | None = None,
              who: str | None = None) -> Entry:
        """Write the entry before the change: LedgerError (the caller changes nothing) when it cannot."""
        assert action in ACTIONS, action
        now = datetime.now(UTC)
        e = Entry(new_id(now), action, self.environment, who or actor(), now.strftime("%Y-%m-%dT%H:%M:%SZ"), commit,
                  image_digest, version, from_version, summary, key_id)
        doc = e.to_json()
        doc.pop("result"), doc.pop("completed_at")
        self._create(self._key(e.id), doc)
        return e

    def complete(self, entry: Entry, result: str) -> None:
        """Write the entry's .done object after the change. A failure here is reported, never raised over
        the change's own outcome: the entry then shows as INCOMPLETE, which is what happened."""
        entry.result = result
        entry.completed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._create(self._key(entry.id, done=True), {"id": entry.id, "result": result,
                                                      "completed_at": entry.completed_at})

    def ids(self) -> tuple[list[str], set[str]]:
        """Every entry id, newest first, and the ids that have their .done object (one listing)."""
        objs = self.store.list(self.base + "/")
        ids, done = [], set()
        for key in objs:
            name = key[len(self.base) + 1:]
            if name.endswith(".done.json"):
                done.add(name[:-len(".done.json")])
            elif name.endswith(".json"):
                ids.append(name[:-len(".json")])
        ids.sort(reverse=True)
        return ids, done

    def read(self, entry_id: str, done: bool | None = None) -> Entry:
        raw = self.store.get(self._key(entry_id))
        if raw is None:
            raise LedgerError(f"no ledger entry {entry_id} in {self.environment}",
                              f"make history ENV={self.environment} lists the entries")
        e = Entry(**{k: v for k, v in json.loads(raw).items() if k in Entry.__dataclass_fields__})
        if done is not False:
            d = self.store.get(self._key(entry_id, done=True))
            if d is not None:
                dd = json.loads(d)
                e.result, e.completed_at = dd.get("result"), dd.get("completed_at")
        return e

    def history(self, limit: int = 20) -> History:
        """The newest `limit` entries: one listing, then their entry and completion objects read in parallel."""
        ids, done = self.ids()
        wanted = ids[:limit] if limit > 0 else ids
        keys = [self._key(i) for i in wanted] + [self._key(i, done=True) for i in wanted if i in done]
        with ThreadPoolExecutor(max_workers=16) as pool:
            bodies = dict(zip(keys, pool.map(self.store.get, keys)))
        entries = []
        for i in wanted:
            raw = bodies.get(self._key(i))
            if raw is None:
                continue  # removed between the listing and the read
            e = Entry(**{k: v for k, v in json.loads(raw).items() if k in Entry.__dataclass_fields__})
            d = bodies.get(self._key(i, done=True))
            if d is not None:
                dd = json.loads(d)
                e.result, e.completed_at = dd.get("result"), dd.get("completed_at")
            entries.append(e)
        return History(entries, len(ids), [i for i in ids if i not in done])

    def last(self) -> Entry | None:
        h = self.history(1)
        return h.entries[0] if h.entries else None


def check_entry_id(text: str) -> bool:
    return bool(ENTRY_RE.match(text))


def line(e: Entry) -> str:
    state = e.result or "INCOMPLETE (no completion record: the command stopped between the entry and the change)"
    what = f"{e.from_version} -> {e.version}" if e.from_version and e.version else (e.version or "")
    bits = [e.id, e.time, e.action, what, f"by {e.actor}"]
    if e.commit:
        bits.append(f"commit {e.commit[:7]}")
    if e.image_digest:
        bits.append(f"image {e.image_digest[:19]}")
    bits.append(f"key {e.key_id[:12]}" if e.key_id else "unsigned")
    out = "  ".join(b for b in bits if b) + f"  [{state}]"
    return out + (f"  {e.summary}" if e.summary else "")
