"""Event time: parsing timestamps, and the watermark that says which event times can still arrive.

The watermark is the newest event time seen minus the allowed lateness. An event older than the
watermark is *late*: it is counted and not correlated (single-event rules still see it). Windows close,
absences fire and correlation state expires when the watermark passes them, so a late event within the
allowed lateness still joins its window.
"""

from __future__ import annotations

from datetime import UTC, datetime

DEFAULT_LATENESS_S = 600.0


def event_time(timestamp: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp (``Z`` or an offset; naive means UTC).

    >>> event_time("1970-01-01T00:01:00.500Z"), event_time("1970-01-01T01:01:00+01:00")
    (60.5, 60.0)
    """
    if len(timestamp) == 24 and timestamp[23] == "Z" and timestamp[19] == ".":  # our parsers' form: fast path
        minute = _MINUTES.get(timestamp[:16])
        if minute is None:
            minute = _minute(timestamp[:16])
        try:
            return minute + float(timestamp[17:23])
        except ValueError:
            pass
    parsed = datetime.fromisoformat(timestamp)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


_MINUTES: dict[str, float] = {}


def _minute(prefix: str) -> float:
    """Epoch seconds of ``YYYY-MM-DDTHH:MM`` (UTC), remembered (a bounded number of minutes)."""
    value = datetime.fromisoformat(prefix).replace(tzinfo=UTC).timestamp()
    if len(_MINUTES) > 100_000:
        _MINUTES.clear()
    _MINUTES[prefix] = value
    return value


def iso(t: float) -> str:
    """The RFC 3339 form (UTC, milliseconds) of epoch seconds.

    >>> iso(60.5)
    '1970-01-01T00:01:00.500Z'
    """
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Watermark:
    """Newest event time seen minus the allowed lateness.

    >>> wm = Watermark(lateness_s=60)
    >>> wm.observe(1000.0), wm.value
    (True, 940.0)
    >>> wm.observe(950.0), wm.observe(900.0), wm.value
    (True, False, 940.0)
    """

    def __init__(self, lateness_s: float = DEFAULT_LATENESS_S) -> None:
        self.lateness_s = lateness_s
        self.newest = float("-inf")
        self.value = float("-inf")

    def observe(self, t: float) -> bool:
        """Take an event time into account; False when the event is late (older than the watermark)."""
        if t < self.value:
            return False
        if t > self.newest:
            self.newest = t
            self.value = t - self.lateness_s
        return True

    def close_all(self) -> None:
        """End of input: every window may close (used by ``flush``)."""
        self.value = float("inf")
