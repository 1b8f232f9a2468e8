"""Event time: parsing timestamps, and the watermark that says which event times can still arrive.

The watermark is the newest event time seen minus the allowed lateness. An event older than the
watermark is *late*: it is counted and not correlated (single-event rules still see it). Windows close,
absences fire and correlation state expires when the watermark passes them, so a late event within the
allowed lateness still joins its window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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
    """Event-time progress, tracked per input lane (a Kafka partition) and combined as their minimum.

    Each lane's watermark is its newest event time minus the allowed lateness; the engine's watermark is
    the minimum over the lanes that are active. So a partition whose backlog is read after another's does
    not see its events declared late (the way Flink combines input watermarks), and a lane that has been
    silent for ``idle_s`` of processing time stops holding the others back.

    >>> wm = Watermark(lateness_s=60)
    >>> wm.observe(1000.0), wm.value
    (True, 940.0)
    >>> wm.observe(950.0), wm.observe(900.0), wm.value
    (True, False, 940.0)
    >>> wm.observe(500.0, lane="p1"), wm.value  # a second partition, far behind: not late, holds the min
    (True, 440.0)
    """

    def __init__(
        self,
        lateness_s: float = DEFAULT_LATENESS_S,
        *,
        idle_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lateness_s = lateness_s
        self.idle_s = idle_s
        self._clock = clock
        self._lanes: dict[object, list[float]] = {}  # lane -> [newest event time, processing time last seen]
        self.newest = float("-inf")
        self.value = float("-inf")
        self._closed = False
        self._idle_check = math.inf  # no lane needs an idle check before this moment (see ``_recompute``)
        self._stale = False  # a lane came back from idle since the last recomputation

    def observe(self, t: float, lane: object = "") -> bool:
        """Take an event time of ``lane`` into account; False when the event is late for its lane."""
        state = self._lanes.get(lane)
        if state is None:  # a new lane
            now = self._clock()
            self._lanes[lane] = [t, now]
            self._advanced(t, now, new_lane=True, held_minimum=False)
            return True
        newest = state[0]
        if t < newest - self.lateness_s:
            return False
        now = self._clock()
        if now - state[1] > self.idle_s:
            self._stale = True  # an idle lane is back: it counts again from the next recomputation on
        state[1] = now
        if t > newest:
            state[0] = t
            if len(self._lanes) == 1:  # the common case inline: one lane, so the newest time of all and the minimum
                self.newest = t
                if not self._closed:
                    self.value = t - self.lateness_s
            else:
                self._advanced(t, now, new_lane=False, held_minimum=newest - self.lateness_s <= self.value)
        return True

    def _advanced(self, t: float, now: float, *, new_lane: bool, held_minimum: bool) -> None:
        """A lane's newest time moved to ``t``: the watermark follows."""
        if t > self.newest:
            self.newest = t
        if len(self._lanes) == 1:  # one lane (just seen, so active): its newest time is the minimum
            if not self._closed:
                self.value = t - self.lateness_s
        elif (  # otherwise the minimum over the active lanes cannot have changed
            new_lane or self._stale or held_minimum or now >= self._idle_check  # (or another lane may have gone idle)
        ):
            self._recompute(now)

    def _recompute(self, now: float) -> None:
        if self._closed:
            return
        self._stale = False
        idle_s = self.idle_s
        # the earliest moment an active lane can go idle (lanes are only seen again later, never earlier), and the
        # minimum over the active lanes (the first of equal ones, as min() gives)
        idle_check = math.inf
        low: float | None = None
        for newest, seen in self._lanes.values():
            if now - seen <= idle_s:
                if seen + idle_s < idle_check:
                    idle_check = seen + idle_s
                if low is None or newest < low:
                    low = newest
        self._idle_check = idle_check
        # May step back when a new lane appears behind the others (a partition whose backlog is read
        # later): its events must not count as late. Windows already closed stay closed.
        self.value = (self.newest if low is None else low) - self.lateness_s

    def close_all(self) -> None:
        """End of input: every window may close (used by ``flush``)."""
        self._closed = True
        self.value = float("inf")
