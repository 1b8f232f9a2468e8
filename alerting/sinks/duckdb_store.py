"""Alerts in the embedded DuckDB store (``logwarden demo``)."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import orjson

from alerting.alert import Alert
from alerting.errors import DeliveryError


class DuckDBAlertSink:
    """Upserts alerts by id into the ``alerts`` table (used inline on the thread that owns the connection)."""

    name = "duckdb"
    expires = False

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn

    def emit(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        rows = [
            (
                a.id,
                a.detection.rule_id,
                a.detection.rule_name,
                a.severity,
                a.detection.first_seen,
                a.detection.last_seen,
                a.detection.event_count,
                orjson.dumps(a.to_document()).decode(),
            )
            for a in alerts
        ]
        try:
            self._conn.executemany("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except duckdb.Error as exc:
            raise DeliveryError(f"embedded store alert write failed: {exc}") from exc

    def close(self) -> None:
        """The connection belongs to the event store."""
