"""The results store: one SQLite file holding every cell of every grid run against it.

Durability and concurrency contract
-----------------------------------
* WAL journal, ``synchronous=FULL``, a busy timeout: readers never block the writer, and a committed
  transaction survives a kill of any process (and a power cut). Each finished cell is exactly one
  ``BEGIN IMMEDIATE … COMMIT`` transaction (its row and its attempt history together), so a kill at any
  moment leaves every cell either recorded completely or not at all.
* Claims. A runner takes a pending cell inside one immediate transaction (``claim``): its status becomes
  ``running`` with the runner's id, host, pid and a lease deadline. Immediate transactions serialise writers,
  so two runners can never claim the same cell. The runner extends its leases (``heartbeat``) while it lives;
  ``reap`` returns to ``pending`` the cells whose lease ran out, or whose runner is a dead process on this
  host, so a killed runner loses only the cells it was running.
* Results are recorded only over a cell that is not ``done`` yet, so a late duplicate (a runner that lost
  its lease, a result file ingested twice) never overwrites or duplicates a finished cell.
* The schema version is ``PRAGMA user_version``; a store from a newer version is refused, not guessed at.
* SQLite must not be written concurrently over a network filesystem: cluster jobs write result files
  instead (``contrasting.eval.grid.cluster``) and one process ingests them.

Cell states: ``pending`` → ``running`` → ``done`` | ``failed``; ``failed`` cells return to ``pending`` when a
later run retries them (``reset_failed``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE specs (
    spec_hash TEXT PRIMARY KEY, name TEXT NOT NULL, spec_json TEXT NOT NULL, registered REAL NOT NULL);
CREATE TABLE cells (
    key TEXT PRIMARY KEY,
    encoder TEXT NOT NULL, task TEXT NOT NULL, hparams_name TEXT NOT NULL, hparams_json TEXT NOT NULL,
    seed INTEGER NOT NULL,
    encoder_json TEXT NOT NULL, task_json TEXT NOT NULL, request_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
    score REAL, val_score REAL, metrics_json TEXT, timings_json TEXT, versions_json TEXT, error TEXT,
    spec_hash TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT, claim_host TEXT, claim_pid INTEGER, claim_pid_start TEXT, lease_until REAL,
    created REAL NOT NULL, started REAL, finished REAL);
CREATE INDEX cells_status ON cells (status);
CREATE TABLE spec_cells (
    spec_hash TEXT NOT NULL, key TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (spec_hash, key));
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, runner TEXT, status TEXT NOT NULL,
    error TEXT, started REAL, finished REAL NOT NULL, wall_s REAL);
CREATE INDEX attempts_key ON attempts (key);
CREATE TABLE ingested (token TEXT PRIMARY KEY, key TEXT NOT NULL, outcome TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE file_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL);
"""


def _has_sqlite_header(path: Path) -> bool:
    """Whether ``path`` starts with SQLite's 16-byte magic string."""
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


class StoreError(RuntimeError):
    """The store cannot be opened or written (names the file)."""


class StoreFullError(StoreError):
    """The disk (or the database's page limit) is full: the transaction was rolled back, nothing half-written."""


class StoreVersionError(StoreError):
    """The store was written by a newer schema version than this code knows."""


class StoreCorruptError(StoreError):
    """The store fails SQLite's ``PRAGMA quick_check``: it is refused, nothing is written into it
    (``repair_store`` salvages the intact rows into a new file)."""


# --------------------------------------------------------------------------------------------- identities


def host_identity() -> str:
    """This machine and pid namespace: pids compare only between processes with the same host identity."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = ""
    return f"{socket.gethostname()}|{ns}"


def pid_start_time(pid: int) -> str | None:
    """A pid's start time (Linux ``/proc/<pid>/stat`` field 22), to tell a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def pid_alive(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` (started at ``start``, when known) still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start is not None:
        now = pid_start_time(pid)
        if now is not None and now != start:
            return False
    return True


@dataclass(frozen=True)
class RunnerId:
    """Who holds a claim: a unique ``id`` plus the host identity, pid and pid start time used by ``reap``."""

    id: str
    host: str
    pid: int
    pid_start: str | None

    @classmethod
    def current(cls, label: str = "runner") -> RunnerId:
        """An id for this process (unique per call)."""
        pid = os.getpid()
        return cls(f"{label}:{socket.gethostname()}:{pid}:{uuid.uuid4().hex[:8]}", host_identity(), pid,
                   pid_start_time(pid))


# ----------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class CellRecord:
    """A cell to register: its key, labels, metadata and the JSON-able ``request`` an executor runs."""

    key: str
    encoder: str
    task: str
    hparams_name: str
    hparams: dict | list
    seed: int
    encoder_meta: dict
    task_meta: dict
    request: dict


@dataclass(frozen=True)
class CellRow(CellRecord):
    """A cell as stored (JSON columns decoded): the registered cell and its state."""

    status: str
    score: float | None = None
    val_score: float | None = None
    metrics: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    claimed_by: str | None = None
    lease_until: float | None = None
    started: float | None = None
    finished: float | None = None
    spec_hash: str | None = None

    @property
    def label(self) -> str:
        """``encoder × task [hparams, seed]`` for messages."""
        return f"{self.encoder} × {self.task} [{self.hparams_name}, seed {self.seed}]"


def _loads(text: str | None, default=None):
    return default if text is None else json.loads(text)


def _dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, allow_nan=False)


_ROW_COLUMNS = ("key, encoder, task, hparams_name, hparams_json, seed, encoder_json, task_json, request_json, status, "
                "score, val_score, metrics_json, timings_json, versions_json, error, attempts, claimed_by, "
                "lease_until, started, finished, spec_hash")


def _row(r: tuple) -> CellRow:
    (key, enc, task, hname, hjson, seed, ejson, tjson, rjson, status, score, vscore, mjson, tijson, vjson, error,
     attempts, claimed, lease, started, finished, shash) = r
    return CellRow(key=key, encoder=enc, task=task, hparams_name=hname, hparams=_loads(hjson, {}), seed=seed,
                   encoder_meta=_loads(ejson, {}), task_meta=_loads(tjson, {}), request=_loads(rjson, {}),
                   status=status, score=score, val_score=vscore, metrics=_loads(mjson, {}), timings=_loads(tijson, {}),
                   versions=_loads(vjson, {}), error=error, attempts=attempts, claimed_by=claimed, lease_until=lease,
                   started=started, finished=finished, spec_hash=shash)


# ------------------------------------------------------------------------------------------------- store


# A cell's attempt ends: count it, release the claim, keep the first start time. Parameters: the status-specific
# columns, then started, finished, key.
_END_ATTEMPT = ("attempts=attempts+1, claimed_by=NULL, claim_host=NULL, claim_pid=NULL, claim_pid_start=NULL, "
                "lease_until=NULL, started=COALESCE(?, started), finished=? WHERE key=? AND status!='done'")
_MARK_DONE = ("UPDATE cells SET status='done', score=?, val_score=?, metrics_json=?, timings_json=?, versions_json=?, "
              "error=NULL, " + _END_ATTEMPT)
_MARK_FAILED = "UPDATE cells SET status='failed', error=?, timings_json=?, versions_json=?, " + _END_ATTEMPT


def _insert_attempt(db, key: str, runner: str | None, status: str, error: str | None, started: float | None,
                    finished: float) -> None:
    """One row of the attempts log (wall time from ``started`` when known)."""
    wall = None if started is None else finished - started
    db.execute("INSERT INTO attempts (key, runner, status, error, started, finished, wall_s) VALUES "
               "(?, ?, ?, ?, ?, ?, ?)", (key, runner, status, error, started, finished, wall))


class ResultStore:
    """One SQLite results store (see the module docstring for the contract).

    ``ResultStore(path)`` creates the file and schema when missing (``create=False`` raises
    FileNotFoundError instead); ``timeout_s`` bounds the wait for another writer's lock; ``pragmas`` are extra
    ``PRAGMA name=value`` settings for this connection (tests use ``max_page_count`` to emulate a full disk).
    Use from one thread; open one store per process.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True, timeout_s: float = 60.0,
                 pragmas: Mapping[str, Any] | None = None):
        self.path = Path(path)
        if not create and not self.path.exists():
            raise FileNotFoundError(f"no results store at {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = self.path.is_file() and self.path.stat().st_size > 0
        if not create and not existing:  # a folder or an empty file: opening would write a new store there
            raise FileNotFoundError(f"no results store at {self.path} (an empty file or a folder)")
        if existing and not _has_sqlite_header(self.path):  # SQLite would take a short file for an empty store
            raise StoreError(f"{self.path}: not a results store (not an SQLite database); nothing was written to it")
        self._db = None
        try:
            self._db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            if existing:
                self._refuse_if_damaged()
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL journal mode (got {mode})")
            self._db.execute("PRAGMA synchronous=FULL")
            for name, value in (pragmas or {}).items():
                self._db.execute(f"PRAGMA {name}={int(value) if isinstance(value, (int, bool)) else value}")
            self._init_schema()
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"{self.path}: cannot open the results store: {exc}") from exc
        except StoreError:
            self.close()
            raise

    def _refuse_if_damaged(self) -> None:
        """``StoreCorruptError`` unless ``PRAGMA quick_check`` finds the file sound (before anything is written)."""
        try:
            problems = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            first = " ".join(" ".join(problems).split())[:160]
            raise StoreCorruptError(f"{self.path}: the results store is damaged ({first}; {len(problems)} "
                                    f"problem(s)); nothing was written to it. Salvage its intact rows with "
                                    f"`contrasting grid repair {self.path} --out NEW.sqlite`")

    # -- plumbing

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; any error rolls back. A full disk raises ``StoreFullError``, other
        SQLite errors ``StoreError``; nothing of a failed transaction is kept."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._wrap(exc) from exc
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._wrap(exc) from exc
            raise

    def _wrap(self, exc: sqlite3.Error) -> StoreError:
        msg = str(exc)
        full = isinstance(exc, sqlite3.OperationalError) and ("full" in msg or "disk I/O" in msg)
        return (StoreFullError if full else StoreError)(f"{self.path}: {msg}")

    def _init_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreVersionError(f"{self.path}: schema version {version} is newer than this code's "
                                    f"{SCHEMA_VERSION}; upgrade contrasting-eval to read it")
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:  # re-checked under the write lock
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute("INSERT INTO meta VALUES ('created', ?)", (str(time.time()),))
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``'ok'`` when the file is sound)."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    # -- grids and cells

    def register(self, spec_hash: str, name: str, spec_json: str, cells: Iterable[CellRecord]) -> int:
        """Record a grid spec and its cells in one transaction; returns how many cells were new. Known cells
        keep their status and results (resuming) and have labels/metadata refreshed from this spec."""
        now = time.time()
        new = 0
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO specs VALUES (?, ?, ?, ?)", (spec_hash, name, spec_json, now))
            db.execute("UPDATE specs SET registered=? WHERE spec_hash=?", (now, spec_hash))
            for pos, c in enumerate(cells):
                cur = db.execute(
                    "INSERT INTO cells (key, encoder, task, hparams_name, hparams_json, seed, encoder_json, task_json,"
                    " request_json, spec_hash, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(key) DO NOTHING",
                    (c.key, c.encoder, c.task, c.hparams_name, _dumps(c.hparams), c.seed, _dumps(c.encoder_meta),
                     _dumps(c.task_meta), _dumps(c.request), spec_hash, now))
                if cur.rowcount:
                    new += 1
                else:
                    db.execute("UPDATE cells SET encoder=?, task=?, hparams_name=?, encoder_json=?, task_json=?,"
                               " request_json=? WHERE key=?",
                               (c.encoder, c.task, c.hparams_name, _dumps(c.encoder_meta), _dumps(c.task_meta),
                                _dumps(c.request), c.key))
                db.execute("INSERT OR REPLACE INTO spec_cells VALUES (?, ?, ?)", (spec_hash, c.key, pos))
        return new

    def specs(self) -> list[dict]:
        """Registered specs, most recently registered first: dicts with spec_hash, name, spec, registered."""
        rows = self._db.execute("SELECT spec_hash, name, spec_json, registered FROM specs ORDER BY registered DESC")
        return [{"spec_hash": h, "name": n, "spec": json.loads(j), "registered": t} for h, n, j, t in rows]

    def latest_spec_hash(self) -> str | None:
        """The hash of the most recently registered spec (None for an empty store)."""
        row = self._db.execute("SELECT spec_hash FROM specs ORDER BY registered DESC LIMIT 1").fetchone()
        return row[0] if row else None

    def cells(self, spec_hash: str | None = None, status: str | Iterable[str] | None = None) -> list[CellRow]:
        """Cells of one spec (in grid order) or of the whole store, optionally only those in ``status``."""
        cols = ", ".join("c." + col.strip() for col in _ROW_COLUMNS.split(","))
        sql, args = f"SELECT {cols} FROM cells c", []
        where = []
        if spec_hash is not None:
            sql += " JOIN spec_cells s ON s.key = c.key"
            where.append("s.spec_hash = ?")
            args.append(spec_hash)
        if status is not None:
            sts = [status] if isinstance(status, str) else list(status)
            where.append(f"c.status IN ({','.join('?' * len(sts))})")
            args += sts
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY s.position" if spec_hash is not None else " ORDER BY c.created, c.key"
        return [_row(r) for r in self._db.execute(sql, args)]

    def get(self, key: str) -> CellRow | None:
        """One cell by key."""
        r = self._db.execute(f"SELECT {_ROW_COLUMNS} FROM cells WHERE key=?", (key,)).fetchone()
        return _row(r) if r else None

    def counts(self, spec_hash: str | None = None) -> dict[str, int]:
        """Number of cells per status (every status present, zeros included)."""
        if spec_hash is None:
            rows = self._db.execute("SELECT status, COUNT(*) FROM cells GROUP BY status")
        else:
            rows = self._db.execute("SELECT c.status, COUNT(*) FROM cells c JOIN spec_cells s ON s.key=c.key "
                                    "WHERE s.spec_hash=? GROUP BY c.status", (spec_hash,))
        out = dict.fromkeys(STATUSES, 0)
        out.update(dict(rows))
        return out

    def attempts(self, key: str) -> list[dict]:
        """A cell's attempt history, oldest first: runner, status, error, started, finished, wall_s."""
        rows = self._db.execute("SELECT runner, status, error, started, finished, wall_s FROM attempts WHERE key=? "
                                "ORDER BY id", (key,))
        return [dict(zip(("runner", "status", "error", "started", "finished", "wall_s"), r, strict=True)) for r in rows]

    # -- claims

    def claim(self, runner: RunnerId, spec_hash: str, *, lease_s: float, prefer_encoder: str | None = None,
              exclude: Iterable[str] = ()) -> CellRow | None:
        """Atomically take the first pending cell of ``spec_hash`` (cells of ``prefer_encoder`` first, grid
        order otherwise, keys in ``exclude`` skipped): it becomes ``running`` under ``runner`` with a lease of
        ``lease_s`` seconds. Returns it, or None when nothing is pending."""
        now = time.time()
        excl = list(exclude)
        with self.transaction() as db:
            row = db.execute(
                "SELECT c.key FROM cells c JOIN spec_cells s ON s.key=c.key WHERE s.spec_hash=? AND "
                f"c.status='pending' AND c.key NOT IN ({','.join('?' * len(excl))}) "
                "ORDER BY (c.encoder = ?) DESC, s.position LIMIT 1", (spec_hash, *excl, prefer_encoder)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE cells SET status='running', claimed_by=?, claim_host=?, claim_pid=?, claim_pid_start=?,"
                       " lease_until=?, started=? WHERE key=?",
                       (runner.id, runner.host, runner.pid, runner.pid_start, now + lease_s, now, row[0]))
            return _row(db.execute(f"SELECT {_ROW_COLUMNS} FROM cells WHERE key=?", (row[0],)).fetchone())

    def claim_keys(self, runner: RunnerId, keys: Iterable[str], *, lease_s: float) -> list[str]:
        """Claim exactly these cells (those still pending) for ``runner``; returns the keys it got."""
        now, got = time.time(), []
        with self.transaction() as db:
            for k in keys:
                cur = db.execute("UPDATE cells SET status='running', claimed_by=?, claim_host=?, claim_pid=?, "
                                 "claim_pid_start=?, lease_until=?, started=? WHERE key=? AND status='pending'",
                                 (runner.id, runner.host, runner.pid, runner.pid_start, now + lease_s, now, k))
                if cur.rowcount:
                    got.append(k)
        return got

    def heartbeat(self, runner_id: str, keys: Iterable[str], *, lease_s: float) -> list[str]:
        """Extend ``runner_id``'s leases on ``keys``; returns the keys it no longer holds (lost claims)."""
        keys = list(keys)
        if not keys:
            return []
        until, lost = time.time() + lease_s, []
        with self.transaction() as db:
            for k in keys:
                cur = db.execute("UPDATE cells SET lease_until=? WHERE key=? AND claimed_by=? AND status='running'",
                                 (until, k, runner_id))
                if not cur.rowcount:
                    lost.append(k)
        return lost

    def release(self, runner_id: str, keys: Iterable[str] | None = None, reason: str = "released") -> list[str]:
        """Return ``runner_id``'s running cells (all, or ``keys``) to ``pending``; each gets an attempt row
        with ``reason``. Returns the released keys."""
        now = time.time()
        with self.transaction() as db:
            held = [k for (k,) in db.execute("SELECT key FROM cells WHERE claimed_by=? AND status='running'",
                                             (runner_id,))]
            if keys is not None:
                wanted = set(keys)
                held = [k for k in held if k in wanted]
            for k in held:
                self._requeue(db, k, runner_id, reason, now)
        return held

    def reap(self, *, now: float | None = None, alive: Callable[[int, str | None], bool] = pid_alive,
             active: Iterable[str] = ()) -> list[str]:
        """Return to ``pending`` every running cell whose lease has expired, or whose runner is a process of
        this host that no longer exists (checked with ``alive(pid, start)``), or is this very process but not
        one of its ``active`` runner ids (a runner of this process that stopped without releasing, e.g. on a
        full disk). Returns the keys."""
        now = time.time() if now is None else now
        host = host_identity()
        me, active = os.getpid(), set(active)
        with self.transaction() as db:
            rows = db.execute("SELECT key, claimed_by, claim_host, claim_pid, claim_pid_start, lease_until FROM cells "
                              "WHERE status='running'").fetchall()
            dead = []
            for key, runner, chost, pid, start, lease in rows:
                if lease is not None and lease < now:
                    dead.append((key, runner, f"lease expired (runner {runner} stopped heartbeating)"))
                elif chost == host and pid is not None and not alive(pid, start):
                    dead.append((key, runner, f"runner {runner} (pid {pid}) died"))
                elif chost == host and pid == me and runner not in active:
                    dead.append((key, runner, f"runner {runner} of this process stopped"))
            for key, runner, why in dead:
                self._requeue(db, key, runner, why, now)
        return [k for k, _, _ in dead]

    @staticmethod
    def _requeue(db, key: str, runner: str | None, reason: str, now: float) -> None:
        started = db.execute("SELECT started FROM cells WHERE key=?", (key,)).fetchone()[0]
        db.execute("UPDATE cells SET status='pending', claimed_by=NULL, claim_host=NULL, claim_pid=NULL, "
                   "claim_pid_start=NULL, lease_until=NULL WHERE key=?", (key,))
        _insert_attempt(db, key, runner, "abandoned", reason, started, now)

    def reset_failed(self, spec_hash: str) -> int:
        """Return the failed cells of ``spec_hash`` to ``pending`` (their errors stay in the attempt history)."""
        with self.transaction() as db:
            cur = db.execute("UPDATE cells SET status='pending', claimed_by=NULL, lease_until=NULL "
                             "WHERE status='failed' AND key IN (SELECT key FROM spec_cells WHERE spec_hash=?)",
                             (spec_hash,))
            return cur.rowcount

    # -- results

    def record_done(self, key: str, runner_id: str | None, *, score: float, val_score: float | None = None,
                    metrics: Mapping | None = None, timings: Mapping | None = None, versions: Mapping | None = None,
                    started: float | None = None, finished: float | None = None) -> bool:
        """Record a finished cell in one transaction. Returns False (and records only the attempt) when the
        cell is already ``done``: a duplicate never overwrites or adds a result."""
        finished = time.time() if finished is None else finished
        with self.transaction() as db:
            cur = db.execute(
                _MARK_DONE,
                (score, val_score, _dumps(dict(metrics or {})), _dumps(dict(timings or {})),
                 _dumps(dict(versions or {})), started, finished, key))
            applied = cur.rowcount == 1
            _insert_attempt(db, key, runner_id, "done" if applied else "duplicate", None, started, finished)
        return applied

    def record_failed(self, key: str, runner_id: str | None, error: str, *, timings: Mapping | None = None,
                      versions: Mapping | None = None, started: float | None = None,
                      finished: float | None = None) -> bool:
        """Record a failed attempt with its error text. The cell becomes ``failed`` unless it is ``done`` or
        is now running under another runner's claim (then only the attempt is recorded). Returns whether the
        cell's status changed."""
        finished = time.time() if finished is None else finished
        with self.transaction() as db:
            cur = db.execute(
                _MARK_FAILED + " AND (status!='running' OR claimed_by IS ? OR ? IS NULL)",
                (error, _dumps(dict(timings or {})), _dumps(dict(versions or {})), started, finished, key,
                 runner_id, runner_id))
            _insert_attempt(db, key, runner_id, "failed", error, started, finished)
            return cur.rowcount == 1

    def ingest(self, token: str, record: Mapping) -> str:
        """Apply one cluster result record exactly once, in one transaction keyed by ``token`` (unique per
        result file). ``record``: key, status (``done``/``failed``), score, val_score, metrics, timings, versions,
        error, started, finished, runner. Returns ``'applied'``, ``'duplicate'`` (the cell was already done; only
        the attempt is kept), ``'seen'`` (this token was ingested before: nothing changes) or ``'unknown'`` (no
        such cell in the store)."""
        key = record["key"]
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM ingested WHERE token=?", (token,)).fetchone():
                return "seen"
            row = db.execute("SELECT status FROM cells WHERE key=?", (key,)).fetchone()
            if row is None:
                return "unknown"
            started, finished = record.get("started"), record.get("finished") or time.time()
            runner = record.get("runner")
            if record["status"] == "done":
                cur = db.execute(
                    _MARK_DONE,
                    (float(record["score"]), record.get("val_score"), _dumps(record.get("metrics") or {}),
                     _dumps(record.get("timings") or {}), _dumps(record.get("versions") or {}), started, finished,
                     key))
            else:
                cur = db.execute(
                    _MARK_FAILED,
                    (str(record.get("error") or "failed"), _dumps(record.get("timings") or {}),
                     _dumps(record.get("versions") or {}), started, finished, key))
            outcome = "applied" if cur.rowcount else "duplicate"
            status = record["status"] if outcome == "applied" else "duplicate"
            _insert_attempt(db, key, runner, status, record.get("error"), started, finished)
            db.execute("INSERT INTO ingested VALUES (?, ?, ?, ?)", (token, key, outcome, time.time()))
            return outcome

    # -- file hash cache

    def hash_cache(self) -> dict:
        """The stored checkpoint hashes as a ``sha256_file`` cache dict ((path, size, mtime_ns) → sha256)."""
        return {(p, s, m): h for p, s, m, h in self._db.execute("SELECT path, size, mtime_ns, sha256 FROM file_hashes")}

    def save_hash_cache(self, cache: Mapping) -> None:
        """Persist a ``sha256_file`` cache dict (one entry per path, the latest wins)."""
        with self.transaction() as db:
            for (p, s, m), h in cache.items():
                db.execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)", (p, s, m, h))


def repair_store(source: str | os.PathLike, dest: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """Copy every row of a damaged store ``source`` that SQLite can still read into a new store ``dest`` (which
    must not exist); returns {table: (rows kept, rows lost)}. Rows are read in bulk, and one by one by rowid where
    the bulk read fails; a row that cannot be read is lost (counted). ``source`` is opened read-only."""
    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise FileNotFoundError(f"no results store at {source}")
    if dest.exists():
        raise FileExistsError(f"{dest} exists: repair writes a new file")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{source}: cannot open: {exc}") from exc
    report: dict[str, tuple[int, int]] = {}
    with ResultStore(dest) as out, contextlib.closing(src):
        for table in _TABLES:
            rows, lost = _salvage(src, table)
            if table == "meta":
                rows = [r for r in rows if r[0] != "created"]
            with out.transaction() as db:
                for row in rows:
                    db.execute(f"INSERT OR IGNORE INTO {table} VALUES ({', '.join('?' * len(row))})", row)
            report[table] = (len(rows), lost)
    return report


_TABLES = ("meta", "specs", "cells", "spec_cells", "attempts", "ingested", "file_hashes")


def _salvage(src: sqlite3.Connection, table: str, give_up_after: int = 2000) -> tuple[list[tuple], int]:
    """The readable rows of ``table`` and how many were lost: in bulk when the table reads whole, else row by row
    by rowid up to max(rowid) (or until ``give_up_after`` rowids in a row are unreadable or absent). Lost rows:
    the table's count (when its index still answers) minus those kept, else the rowids that failed to read."""
    try:
        return src.execute(f"SELECT * FROM {table}").fetchall(), 0
    except sqlite3.DatabaseError:
        pass

    def scalar(query: str):
        try:
            return src.execute(query).fetchone()[0]
        except sqlite3.DatabaseError:
            return None

    total, top = scalar(f"SELECT count(*) FROM {table}"), scalar(f"SELECT max(rowid) FROM {table}")
    rows, failed, misses, rowid = [], 0, 0, 0
    while (rowid < top) if top is not None else (misses < give_up_after):
        rowid += 1
        try:
            row = src.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            failed, misses = failed + 1, misses + 1
            continue
        if row is None:
            misses += 1
            continue
        rows.append(row)
        misses = 0
    return rows, (max(total - len(rows), 0) if total is not None else failed)
