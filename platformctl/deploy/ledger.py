"""The deploy ledger (issue 38): one immutable entry per deploy, rollback, promote and gc, in the environment's store.

Layout under the environment's prefix P (its key rules are ml_platform.bundle_format's "deploy ledger", with the
rest of the store's layout):

    P/ledger/<rank>-<id>.json        written BEFORE the change (the pointer switch, the promotion, the removal)
    P/ledger/<rank>-<id>.done.json   written after it: the entry again, with its result ("switched", "already
                                     live", "failed: ...") and completion time

Both are created with a conditional create (If-None-Match: *): an entry is never overwritten. An entry
without its .done object is a change that started and never reported back (a crash between the two, or
one still running): `make history` shows it as `INCOMPLETE`. Ids are e-<UTC time>-<random>; the rank before
them makes a listing return the newest entry first, each .done just before its entry, so `make history`
lists about 2 x LIMIT keys (one request) and reads one object per entry (the .done, which repeats the entry),
however long the ledger is.

Entries of the first layout (P/ledger/<id>.json, a .done holding only the result) are still read: they list
after every ranked key. When the newest LIMIT ranked entries were found before the listing's end, the
first-layout entries at least as new as the oldest of them are listed from that time on (StartAfter), so
an older client's entry still shows in its place.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from ml_platform import bundle_format as fmt

from ..errors import ConflictError, LedgerError, StoreError
from .store import BundleStore

LEDGER = fmt.LEDGER
ENTRY_RE = fmt.LEDGER_ENTRY_RE
ACTIONS = ("deploy", "rollback", "promote", "gc")
# who ran it, from the CI's own variables first (GitHub Actions, GitLab CI, Jenkins, Buildkite, CircleCI)
CI_ACTOR_VARS = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER_ID", "BUILDKITE_BUILD_CREATOR", "CIRCLE_USERNAME")


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
    total: int | None  # every entry, when the listing reached the ledger's end; None: there are more than shown
    incomplete: list[str] = field(default_factory=list)  # ids without their .done (all of them when total is set)


_REQUIRED = ("id", "action", "environment", "actor", "time")


def _entry(*raws: bytes | None) -> Entry | None:
    """An Entry from its objects' bytes (the entry, then its .done), None when they lack an entry's fields."""
    doc: dict = {}
    for raw in raws:
        if raw is not None:
            doc.update(json.loads(raw))
    if any(doc.get(k) is None for k in _REQUIRED):
        return None
    return Entry(**{k: v for k, v in doc.items() if k in Entry.__dataclass_fields__})


class Ledger:
    def __init__(self, store: BundleStore, prefix: str, environment: str):
        self.store, self.prefix, self.environment = store, prefix, environment
        self.base = fmt.ledger_prefix(prefix)

    def _key(self, entry_id: str, done: bool = False, ranked: bool = True) -> str:
        return fmt.ledger_key(self.prefix, entry_id, done, ranked)

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
        """Write the entry's .done object after the change: the entry with its result (one read shows it). A
        failure here is reported, never raised over the change's own outcome: the entry then shows as
        INCOMPLETE, which is what happened."""
        entry.result = result
        entry.completed_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._create(self._key(entry.id, done=True), entry.to_json())

    def _listed(self, limit: int) -> tuple[list[tuple[str, bool]], set[tuple[str, bool]], bool]:
        """At least the newest `limit` entries (0: all) as (id, ranked), newest first; the ones with a .done;
        and whether the listing reached the ledger's end (then the entries are all of them)."""
        base = self.base + "/"
        found: list[tuple[str, bool]] = []
        done: set[tuple[str, bool]] = set()

        def take(key: str) -> bool:
            """Note a listed key; True when it is a ranked entry."""
            m = fmt.LEDGER_KEY_RE.match(key[len(base):])
            if m is None:
                return False  # not a ledger object
            item = (m[2], m[1] is not None)
            if m[3]:
                done.add(item)
                return False
            found.append(item)
            return item[1]

        keys = self.store.keys(base, page=2 * limit + 2 if limit > 0 else 1000)
        ranked, reached_end = 0, True
        for key in keys:
            ranked += take(key)
            if limit > 0 and ranked == limit:  # the newest `limit` ranked entries, each after its .done
                reached_end = next(keys, None) is None
                break
        if not reached_end:
            # first-layout entries list after the ranked ones: those as new as the oldest found, from its time on
            oldest = fmt.LEDGER_ENTRY_RE.match(found[-1][0])
            for key in self.store.keys(base + "e-", start_after=f"{base}e-{oldest[1]}{oldest[2]}"):
                take(key)
        found.sort(key=lambda item: (fmt.ledger_rank(item[0]), item[0]))
        return found, done, reached_end

    def _load(self, entry_id: str, ranked: bool, done: bool = True) -> Entry | None:
        """One entry from its objects: its .done alone when that repeats the entry (a first-layout .done does
        not: the entry is read too); done=False: there is no .done. None when the entry is not there."""
        done_raw = self.store.get(self._key(entry_id, True, ranked)) if done else None
        return _entry(done_raw) or _entry(self.store.get(self._key(entry_id, False, ranked)), done_raw)

    def history(self, limit: int = 20) -> History:
        """The newest `limit` entries (0: all): a listing of about 2 x limit keys, then one object per entry,
        read in parallel."""
        found, done, reached_end = self._listed(limit)
        shown = found[:limit] if limit > 0 else found
        with ThreadPoolExecutor(max_workers=16) as pool:
            loaded = list(pool.map(lambda item: self._load(*item, done=item in done), shown))
        entries = [e for e in loaded if e is not None]  # None: removed between the listing and the read
        incomplete = [i for i, r in (found if reached_end else shown) if (i, r) not in done]
        return History(entries, len(found) if reached_end else None, incomplete)

    def read(self, entry_id: str) -> Entry:
        """One entry, with its result when it completed (rollback TO=e-...)."""
        for ranked in (True, False) if check_entry_id(entry_id) else ():
            e = self._load(entry_id, ranked)
            if e is not None:
                return e
        raise LedgerError(f"no ledger entry {entry_id} in {self.environment}",
                          f"make history ENV={self.environment} lists the entries")

    def last(self) -> Entry | None:
        h = self.history(1)
        return h.entries[0] if h.entries else None


def ledger_for(store: BundleStore, env) -> Ledger:
    """The ledger of an environment (an environments.Environment) in its store."""
    return Ledger(store, env.bundle.prefix, env.name)


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
