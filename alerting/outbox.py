"""The alert outbox: what each sink still has to receive, in order, surviving restarts.

One row per (sink, alert id) holds the latest state still to deliver; a newer state of the same alert
replaces it and takes a new sequence number (so sinks receive states in the order they were produced,
and an alert updated ten times while its sink is down is delivered once, in its final state). A
re-send of an open alert never displaces a pending state (it would carry nothing new). Delivered rows
are deleted by sequence number, so a state written while an older one was in flight is kept.

The open alerts (those not resolved yet: re-sent before they expire, resolved when over) are kept
beside the outbox, so a restarted worker goes on re-sending and resolving them.

:class:`SqliteOutbox` is durable (a SQLite file in WAL mode with ``synchronous=FULL``: a committed
write is fsynced before :meth:`write` returns, and the runner commits Kafka offsets only after that).
:class:`MemoryOutbox` is the same in memory, for the embedded demo and tests.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from alerting.errors import OutboxError

KINDS = ("new", "update", "resend", "resolve")


@dataclass(frozen=True)
class Put:
    """One state of one alert for one sink. ``kind``: new | update | resend | resolve."""

    sink: str
    alert_id: str
    kind: str
    payload: bytes


@dataclass(frozen=True)
class Pending:
    """An outbox row waiting for delivery."""

    seq: int
    alert_id: str
    kind: str
    payload: bytes
    enqueued: float  # wall clock (epoch seconds)


@dataclass(frozen=True)
class OpenAlert:
    """An alert that is not resolved yet. ``window_end``: event time after which its detection cannot change."""

    alert_id: str
    payload: bytes
    updated: float  # wall clock of the last new state
    sent: float  # wall clock of the last state queued for the expiring sinks
    window_end: float


class Outbox(Protocol):
    def write(
        self, puts: Sequence[Put], now: float, *, opened: Sequence[OpenAlert] = (), closed: Sequence[str] = ()
    ) -> None:
        """Queue ``puts`` and record open/closed alerts, all at once (durably, for a durable outbox)."""
        ...

    def pending(self, sink: str, limit: int) -> list[Pending]: ...

    def ack(self, sink: str, seqs: Sequence[int]) -> None: ...

    def trim(self, sink: str, keep: int) -> int:
        """Drop the oldest rows of ``sink`` beyond ``keep``; returns how many were dropped."""
        ...

    def depth(self) -> dict[str, tuple[int, float | None]]:
        """Per sink: (rows waiting, wall clock of the oldest)."""
        ...

    def open_alerts(self) -> list[OpenAlert]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued REAL NOT NULL,
    UNIQUE (sink, alert_id)
);
CREATE INDEX IF NOT EXISTS outbox_by_sink ON outbox (sink, seq);
CREATE TABLE IF NOT EXISTS open_alerts (
    alert_id TEXT PRIMARY KEY,
    payload BLOB NOT NULL,
    updated REAL NOT NULL,
    sent REAL NOT NULL,
    window_end REAL NOT NULL
);
"""


class SqliteOutbox:
    """The durable outbox in one SQLite file (WAL, fsync on every commit). Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the alert outbox {path}: {exc}") from exc
        self._lock = threading.Lock()

    def write(
        self, puts: Sequence[Put], now: float, *, opened: Sequence[OpenAlert] = (), closed: Sequence[str] = ()
    ) -> None:
        if not (puts or opened or closed):
            return
        replace = [(p.sink, p.alert_id, p.kind, p.payload, now) for p in puts if p.kind != "resend"]
        resend = [(p.sink, p.alert_id, p.kind, p.payload, now) for p in puts if p.kind == "resend"]
        insert = "INTO outbox (sink, alert_id, kind, payload, enqueued) VALUES (?, ?, ?, ?, ?)"

        def apply(conn: sqlite3.Connection) -> None:
            conn.executemany(f"INSERT OR REPLACE {insert}", replace)
            conn.executemany(f"INSERT OR IGNORE {insert}", resend)
            conn.executemany(
                "INSERT OR REPLACE INTO open_alerts VALUES (?, ?, ?, ?, ?)",
                [(o.alert_id, o.payload, o.updated, o.sent, o.window_end) for o in opened],
            )
            conn.executemany("DELETE FROM open_alerts WHERE alert_id = ?", [(i,) for i in closed])

        self._transaction(apply)

    def pending(self, sink: str, limit: int) -> list[Pending]:
        with self._lock:
            rows = self._query(
                "SELECT seq, alert_id, kind, payload, enqueued FROM outbox WHERE sink = ? ORDER BY seq LIMIT ?",
                (sink, limit),
            )
        return [Pending(int(s), str(a), str(k), bytes(p), float(e)) for s, a, k, p, e in rows]

    def ack(self, sink: str, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        self._transaction(
            lambda conn: conn.executemany("DELETE FROM outbox WHERE seq = ? AND sink = ?", [(s, sink) for s in seqs])
        )

    def trim(self, sink: str, keep: int) -> int:
        with self._lock:
            (count,) = self._query("SELECT COUNT(*) FROM outbox WHERE sink = ?", (sink,))[0]
            excess = int(count) - keep
            if excess <= 0:
                return 0
            self._query(
                "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE sink = ? ORDER BY seq LIMIT ?)",
                (sink, excess),
            )
        return excess

    def depth(self) -> dict[str, tuple[int, float | None]]:
        with self._lock:
            rows = self._query("SELECT sink, COUNT(*), MIN(enqueued) FROM outbox GROUP BY sink", ())
        return {str(s): (int(n), float(t) if t is not None else None) for s, n, t in rows}

    def open_alerts(self) -> list[OpenAlert]:
        with self._lock:
            rows = self._query("SELECT alert_id, payload, updated, sent, window_end FROM open_alerts", ())
        return [OpenAlert(str(a), bytes(p), float(u), float(s), float(w)) for a, p, u, s, w in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _transaction(self, apply: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``apply`` in one write transaction (fsynced at commit)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    apply(self._conn)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise OutboxError(f"cannot write the alert outbox {self.path}: {exc}") from exc

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            return list(self._conn.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the alert outbox {self.path}: {exc}") from exc


class MemoryOutbox:
    """The same contract in memory (lost on exit): the embedded demo and unit tests."""

    def __init__(self) -> None:
        self._rows: dict[str, OrderedDict[str, Pending]] = {}
        self._open: dict[str, OpenAlert] = {}
        self._seq = 0
        self._lock = threading.Lock()

    def write(
        self, puts: Sequence[Put], now: float, *, opened: Sequence[OpenAlert] = (), closed: Sequence[str] = ()
    ) -> None:
        with self._lock:
            for put in puts:
                rows = self._rows.setdefault(put.sink, OrderedDict())
                if put.kind == "resend" and put.alert_id in rows:
                    continue
                rows.pop(put.alert_id, None)
                self._seq += 1
                rows[put.alert_id] = Pending(self._seq, put.alert_id, put.kind, put.payload, now)
            for alert in opened:
                self._open[alert.alert_id] = alert
            for alert_id in closed:
                self._open.pop(alert_id, None)

    def pending(self, sink: str, limit: int) -> list[Pending]:
        with self._lock:
            rows = self._rows.get(sink, OrderedDict())
            return list(islice(rows.values(), limit))

    def ack(self, sink: str, seqs: Sequence[int]) -> None:
        done = set(seqs)
        with self._lock:
            rows = self._rows.get(sink, OrderedDict())
            for alert_id in [a for a, row in rows.items() if row.seq in done]:
                del rows[alert_id]

    def trim(self, sink: str, keep: int) -> int:
        with self._lock:
            rows = self._rows.get(sink, OrderedDict())
            excess = max(0, len(rows) - keep)
            for _ in range(excess):
                rows.popitem(last=False)
        return excess

    def depth(self) -> dict[str, tuple[int, float | None]]:
        with self._lock:
            return {
                sink: (len(rows), min((r.enqueued for r in rows.values()), default=None))
                for sink, rows in self._rows.items()
                if rows
            }

    def open_alerts(self) -> list[OpenAlert]:
        with self._lock:
            return list(self._open.values())

    def close(self) -> None:
        """Nothing to release."""
