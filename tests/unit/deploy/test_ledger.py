"""The deploy ledger's layout (issue 38) over a real folder store: keys that list newest first, so `make history`
lists about 2 x LIMIT keys and reads one object per entry; entries of the first layout (written before ranks)
still listed in their place, also when an older client writes one after newer entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from ml_platform import bundle_format as fmt

from platformctl.deploy import ledger as ledger_mod
from platformctl.deploy.ledger import Ledger
from platformctl.deploy.store import LocalStore
from platformctl.errors import LedgerError

PREFIX = "airflow/dev"


class Clock:
    """datetime for the ledger module: each now() one second after the last, from 2026-12-01."""

    def __init__(self):
        self.t = datetime(2026, 12, 1, tzinfo=UTC)

    def now(self, tz=None):
        self.t += timedelta(seconds=1)
        return self.t


class Counting(LocalStore):
    """A folder store that counts the keys the ledger takes from its listings and the objects it reads."""

    def __init__(self, root):
        super().__init__(root)
        self.listed, self.reads = 0, 0

    def keys(self, prefix, start_after=None, page=1000):
        for key in super().keys(prefix, start_after, page):
            self.listed += 1
            yield key

    def get(self, key):
        self.reads += 1
        return super().get(key)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(ledger_mod, "datetime", c)
    return c


def entry(ledger: Ledger, n: int, complete: bool = True) -> str:
    e = ledger.begin("deploy", version=f"b-{n:016x}", summary=f"deploy {n}", who="tester")
    if complete:
        ledger.complete(e, "switched")
    return e.id


def first_layout(store: LocalStore, clock: Clock, n: int, complete: bool = True) -> str:
    """An entry as the ledger's first layout wrote it: P/ledger/<id>.json, a .done with the result only."""
    t = clock.now()
    eid = ledger_mod.new_id(t)
    doc = {"id": eid, "action": "rollback", "environment": "dev", "actor": "old-client", "version": f"b-{n:016x}",
           "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "summary": f"old {n}"}
    store.put(fmt.ledger_key(PREFIX, eid, ranked=False), json.dumps(doc).encode())
    if complete:
        store.put(fmt.ledger_key(PREFIX, eid, done=True, ranked=False),
                  json.dumps({"id": eid, "result": "switched", "completed_at": doc["time"]}).encode())
    return eid


def test_keys_list_newest_first_with_each_completion_just_before_its_entry(tmp_path, clock):
    store = LocalStore(tmp_path / "store")
    ledger = Ledger(store, PREFIX, "dev")
    ids = [entry(ledger, n) for n in range(3)]
    names = [k.rsplit("/", 1)[1] for k in store.keys(f"{PREFIX}/ledger/")]
    assert [n.split("-", 1)[1] for n in names] == [f"{ids[2]}.done.json", f"{ids[2]}.json", f"{ids[1]}.done.json",
                                                   f"{ids[1]}.json", f"{ids[0]}.done.json", f"{ids[0]}.json"]
    done = json.loads(store.get(fmt.ledger_key(PREFIX, ids[2], done=True)))
    assert done["action"] == "deploy" and done["summary"] == "deploy 2" and done["result"] == "switched"


def test_history_lists_about_twice_limit_keys_and_reads_one_object_per_entry(tmp_path, clock):
    store = Counting(tmp_path / "store")
    ledger = Ledger(store, PREFIX, "dev")
    ids = [entry(ledger, n) for n in range(30)]
    ids.append(entry(ledger, 30, complete=False))  # the newest never completed (a crash after the switch)
    store.listed = store.reads = 0
    h = ledger.history(5)
    assert [e.id for e in h.entries] == ids[::-1][:5]
    assert h.entries[0].result is None and all(e.result == "switched" for e in h.entries[1:])
    assert h.entries[1].summary == "deploy 29" and h.entries[1].actor == "tester"
    assert h.total is None and h.incomplete == [ids[30]]  # more than shown: not counted
    assert store.listed <= 2 * 5 + 1 and store.reads == 5, (store.listed, store.reads)

    everything = ledger.history(0)
    assert [e.id for e in everything.entries] == ids[::-1] and everything.total == 31
    assert everything.incomplete == [ids[30]]
    assert ledger.history(40).total == 31 and len(ledger.history(40).entries) == 31
    assert ledger.last().id == ids[30]


def test_entries_of_the_first_layout_are_listed_in_their_place(tmp_path, clock):
    store = Counting(tmp_path / "store")
    ledger = Ledger(store, PREFIX, "dev")
    old = first_layout(store, clock, 1)
    new = entry(ledger, 2)
    old_incomplete = first_layout(store, clock, 3, complete=False)
    newer = entry(ledger, 4)
    late_old = first_layout(store, clock, 5)  # an older client, after newer entries were written
    order = [late_old, newer, old_incomplete, new, old]

    h = ledger.history(0)
    assert [e.id for e in h.entries] == order and h.total == 5 and h.incomplete == [old_incomplete]
    byid = {e.id: e for e in h.entries}
    assert byid[old].result == "switched" and byid[old].action == "rollback" and byid[old].actor == "old-client"
    assert byid[old_incomplete].result is None and byid[newer].result == "switched"

    # the two newest ranked entries are found first; the first-layout ones from the older one's time on
    store.listed = 0
    h = ledger.history(2)
    assert [e.id for e in h.entries] == [late_old, newer] and h.total is None
    h = ledger.history(3)
    assert [e.id for e in h.entries] == [late_old, newer, old_incomplete] and h.incomplete == [old_incomplete]

    # one entry by its id, either layout (rollback TO=e-...)
    assert ledger.read(old).result == "switched" and ledger.read(old).version == f"b-{1:016x}"
    assert ledger.read(newer).result == "switched" and ledger.read(newer).summary == "deploy 4"
    assert ledger.read(old_incomplete).result is None
    for missing in ("e-20990101T000000000Z-abcdef", "not-an-id"):
        with pytest.raises(LedgerError, match="no ledger entry"):
            ledger.read(missing)


def test_an_empty_ledger_and_stray_objects(tmp_path, clock):
    store = LocalStore(tmp_path / "store")
    ledger = Ledger(store, PREFIX, "dev")
    assert ledger.history(20).entries == [] and ledger.history(20).total == 0 and ledger.last() is None
    store.put(f"{PREFIX}/ledger/README.txt", b"not an entry")
    eid = entry(ledger, 1)
    h = ledger.history(1)
    assert [e.id for e in h.entries] == [eid]


def test_a_folder_store_lists_keys_in_order_from_a_key_on(tmp_path):
    store = LocalStore(tmp_path / "store")
    for key in ("p/a/2", "p/a/1", "p/ab", "p/b/x", "q/z"):
        store.put(key, b".")
    assert list(store.keys("p/")) == ["p/a/1", "p/a/2", "p/ab", "p/b/x"]
    assert list(store.keys("p/a")) == ["p/a/1", "p/a/2", "p/ab"]  # a prefix, not a folder
    assert list(store.keys("p/", start_after="p/a/2")) == ["p/ab", "p/b/x"]
    assert list(store.keys("nothing/")) == []
