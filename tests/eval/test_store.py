"""Results store: schema and WAL, exclusive claims, leases and reaping, record-once, full disk, ingestion."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from contrasting.eval.cli import report_command
from contrasting.eval.grid.cli import grid_main
from contrasting.eval.grid.store import (
    SCHEMA_VERSION,
    CellRecord,
    ResultStore,
    RunnerId,
    StoreCorruptError,
    StoreFullError,
    StoreVersionError,
    repair_store,
)


def records(n: int, prefix: str = "k") -> list[CellRecord]:
    return [CellRecord(key=f"{prefix}{i:03d}", encoder=f"enc{i % 3}", task=f"task{i % 4}", hparams_name="default",
                       hparams={}, seed=0, encoder_meta={"method": "simclr"}, task_meta={"metric": "top1"},
                       request={"key": f"{prefix}{i:03d}"}) for i in range(n)]


@pytest.fixture
def store(tmp_path):
    s = ResultStore(tmp_path / "r.sqlite")
    s.register("spec1", "grid", "{}", records(12))
    yield s
    s.close()


def test_schema_wal_and_version(tmp_path):
    with ResultStore(tmp_path / "a.sqlite") as s:
        assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert s.integrity_check() == "ok"
    db = sqlite3.connect(tmp_path / "a.sqlite")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreVersionError, match="newer"):
        ResultStore(tmp_path / "a.sqlite")
    with pytest.raises(FileNotFoundError):
        ResultStore(tmp_path / "missing.sqlite", create=False)


def test_register_is_idempotent_and_refreshes_labels(store):
    assert store.register("spec1", "grid", "{}", records(12)) == 0
    renamed = [CellRecord(**{**r.__dict__, "encoder": "renamed"}) for r in records(12)]
    assert store.register("spec2", "grid", "{}", renamed + records(2, "new")) == 2
    assert {c.encoder for c in store.cells("spec1")} == {"renamed"}
    assert len(store.cells("spec2")) == 14 and len(store.cells("spec1")) == 12
    assert store.latest_spec_hash() == "spec2"
    assert store.counts("spec1") == {"pending": 12, "running": 0, "done": 0, "failed": 0}


def test_claims_are_exclusive_under_contention(tmp_path, store):
    got: list[str] = []
    lock = threading.Lock()

    def claimer():
        s = ResultStore(tmp_path / "r.sqlite")
        me = RunnerId.current()
        while (c := s.claim(me, "spec1", lease_s=60)) is not None:
            with lock:
                got.append(c.key)
        s.close()

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [r.key for r in records(12)]
    assert store.counts("spec1")["running"] == 12


def test_prefer_encoder_and_grid_order(store):
    me = RunnerId.current()
    assert store.claim(me, "spec1", lease_s=60).key == "k000"
    assert store.claim(me, "spec1", lease_s=60, prefer_encoder="enc2").encoder == "enc2"


def test_record_once(store):
    me, other = RunnerId.current(), RunnerId.current()
    c = store.claim(me, "spec1", lease_s=60)
    assert store.record_done(c.key, me.id, score=0.5, metrics={"top1": 0.5}, timings={"s": 1.0}, versions={"v": "1"})
    assert not store.record_done(c.key, other.id, score=0.9)  # a late duplicate changes nothing
    assert not store.record_failed(c.key, other.id, "boom")
    row = store.get(c.key)
    assert row.status == "done" and row.score == 0.5 and row.metrics == {"top1": 0.5} and row.attempts == 1
    assert [a["status"] for a in store.attempts(c.key)] == ["done", "duplicate", "failed"]


def test_failure_does_not_override_another_runners_claim(store):
    me, other = RunnerId.current(), RunnerId.current()
    c = store.claim(me, "spec1", lease_s=60)
    assert not store.record_failed(c.key, other.id, "not mine")
    assert store.get(c.key).status == "running"
    assert store.record_failed(c.key, me.id, "Traceback ...\nValueError: bad")
    assert store.get(c.key).status == "failed" and "ValueError" in store.get(c.key).error
    assert store.reset_failed("spec1") == 1 and store.get(c.key).status == "pending"


def test_lease_expiry_and_heartbeat(store):
    me = RunnerId.current()
    a = store.claim(me, "spec1", lease_s=0.5)
    b = store.claim(me, "spec1", lease_s=0.5)
    assert store.heartbeat(me.id, [a.key], lease_s=60) == []
    time.sleep(0.7)
    assert store.reap(active=[me.id]) == [b.key]  # a's lease was extended, b's ran out
    assert store.get(b.key).status == "pending" and store.get(a.key).status == "running"
    assert store.heartbeat("someone-else", [a.key], lease_s=60) == [a.key]
    assert store.attempts(b.key)[-1]["status"] == "abandoned"


def test_reap_dead_process_and_stopped_runner_of_this_process(store):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    me = RunnerId.current()
    dead = RunnerId("runner:dead", me.host, dead_pid, None)
    c1 = store.claim(dead, "spec1", lease_s=3600)
    c2 = store.claim(me, "spec1", lease_s=3600)
    assert store.reap(active=[me.id]) == [c1.key]  # the dead pid's claim returns, the live one stays
    assert store.reap(active=[]) == [c2.key]  # this process's runner is no longer active
    assert store.counts("spec1")["running"] == 0


def test_release(store):
    me = RunnerId.current()
    keys = [store.claim(me, "spec1", lease_s=60).key for _ in range(3)]
    assert store.release(me.id, keys[:1]) == keys[:1]
    assert sorted(store.release(me.id)) == sorted(keys[1:])
    assert store.counts("spec1")["pending"] == 12


def test_full_disk_rolls_back_whole_transaction(tmp_path):
    path = tmp_path / "full.sqlite"
    with ResultStore(path) as s:
        s.register("spec1", "grid", "{}", records(4))
        pages = s._db.execute("PRAGMA page_count").fetchone()[0]
    big = {"values": list(range(50_000))}  # ≈ 400 kB of JSON: more than the pages left
    with ResultStore(path, pragmas={"max_page_count": pages + 10}) as s:
        me = RunnerId.current()
        c = s.claim(me, "spec1", lease_s=60)
        s.record_done(c.key, me.id, score=1.0, metrics={"small": 1})
        c2 = s.claim(me, "spec1", lease_s=60)
        with pytest.raises(StoreFullError):
            s.record_done(c2.key, me.id, score=1.0, metrics=big)
        assert s.get(c2.key).status == "running" and s.get(c2.key).metrics == {}
        assert [a["status"] for a in s.attempts(c2.key)] == []  # the attempt row went with the rollback
    with ResultStore(path) as s:
        assert s.integrity_check() == "ok"
        assert s.get(c.key).status == "done" and s.get(c.key).metrics == {"small": 1}


def test_ingest_is_exactly_once(store):
    rec = {"key": "k001", "status": "done", "score": 0.7, "metrics": {"top1": 0.7}, "runner": "submitit:1"}
    assert store.ingest("k001.aaa", rec) == "applied"
    assert store.ingest("k001.aaa", rec) == "seen"
    assert store.ingest("k001.bbb", {**rec, "score": 0.1}) == "duplicate"
    assert store.get("k001").score == 0.7
    assert store.ingest("x.ccc", {**rec, "key": "nope"}) == "unknown"
    fail = {"key": "k002", "status": "failed", "error": "boom"}
    assert store.ingest("k002.ddd", fail) == "applied" and store.get("k002").status == "failed"
    assert store.ingest("k002.ddd", fail) == "seen" and len(store.attempts("k002")) == 1


def test_hash_cache_roundtrip(store):
    store.save_hash_cache({("/a.pt", 10, 123): "f" * 64})
    assert store.hash_cache() == {("/a.pt", 10, 123): "f" * 64}


def _damaged_store(tmp_path, n: int = 400):
    """A store with ``n`` cells, one page of whose table is overwritten with garbage, as by a torn disk write."""
    path = tmp_path / "damaged.sqlite"
    with ResultStore(path) as s:
        s.register("h1", "g", "{}", records(n))
    size = path.stat().st_size
    page = 4096
    assert size > 12 * page
    data = path.read_bytes()
    leaf = data.index(b'"key": "k150"') // page  # a page of the cells table itself (the request JSON is there only)
    with open(path, "r+b") as f:
        f.seek(leaf * page)
        f.write(bytes(range(256)) * (page // 256))
    return path


def test_a_damaged_store_is_refused_and_nothing_is_written(tmp_path):
    path = _damaged_store(tmp_path)
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError, match=r"damaged.sqlite: the results store is damaged .*contrasting grid "
                                                r"repair"):
        ResultStore(path)
    with pytest.raises(StoreCorruptError) as error:
        ResultStore(path)
    assert "\n" not in str(error.value)
    assert path.read_bytes() == before
    assert not (tmp_path / "damaged.sqlite-wal").exists() or (tmp_path / "damaged.sqlite-wal").stat().st_size == 0


def test_repair_salvages_the_intact_rows_into_a_new_store(tmp_path, capsys):
    path = _damaged_store(tmp_path)
    out = tmp_path / "repaired.sqlite"
    assert grid_main(["repair", str(path), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"repaired {path} into {out}:") and "lost" in line
    with ResultStore(out) as s:
        assert s.integrity_check() == "ok"
        kept = s._db.execute("SELECT count(*) FROM cells").fetchone()[0]
    assert 0 < kept < 400  # the rows on the overwritten pages are gone, the others kept
    assert grid_main(["repair", str(path), "--out", str(out)]) == 2  # never over an existing file
    assert "exists" in capsys.readouterr().err


def test_a_sound_store_repairs_to_an_equal_one(tmp_path):
    path = tmp_path / "sound.sqlite"
    with ResultStore(path) as s:
        s.register("h1", "g", "{}", records(20))
    report = repair_store(path, tmp_path / "copy.sqlite")
    assert report["cells"] == (20, 0) and report["spec_cells"] == (20, 0)


def test_every_command_refuses_a_damaged_store_in_one_line(tmp_path, capsys):
    path = _damaged_store(tmp_path)
    before = path.read_bytes()
    for run in (lambda: grid_main(["status", str(path)]), lambda: report_command([str(path)])):
        assert run() == 2
        err = capsys.readouterr().err.strip()
        assert "the results store is damaged" in err and "\n" not in err, err
    assert path.read_bytes() == before
