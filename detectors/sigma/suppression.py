"""Alert suppression: one detection per rule and group key within a window (on event time).

A rule with ``logwarden: {suppress: 1h}`` (or the engine's default window) keeps the first detection of a
group key; new detections of the same rule and key whose first event lies within the window of it are
not reported: the first one's ``suppressed_count`` goes up and its ``last_seen`` moves instead (it is
reported again, same id, so alert sinks update it). Updates of a suppressed detection are swallowed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from detectors.detection import Detection
from detectors.sigma.watermark import event_time

MAX_TRACKED = 100_000  # detections remembered (oldest forgotten first)


class Suppressor:
    """Applies per-rule suppression windows to a stream of new and updated detections."""

    def __init__(self, windows: dict[str, float], default_s: float = 0.0) -> None:
        self.windows = windows  # rule id -> seconds
        self.default_s = default_s
        self._seen: OrderedDict[str, str] = OrderedDict()  # detection id -> id it reports as
        self._first: OrderedDict[tuple[str, str], tuple[Detection, float]] = OrderedDict()
        self.suppressed = 0

    def apply(self, detections: Iterable[Detection]) -> list[Detection]:
        """The detections to report (each once, in its latest state)."""
        out: dict[str, Detection] = {}
        for det in detections:
            if self.windows.get(det.rule_id, self.default_s) <= 0:
                out[det.id] = det
                continue
            target = self._seen.get(det.id)
            if target is None:
                target = self._admit(det)
            if target == det.id:
                out[det.id] = det
                continue
            kept = self._first.get((det.rule_id, det.group_key))
            if kept is not None and kept[0].id == target:
                first = kept[0]
                if event_time(det.last_seen) > event_time(first.last_seen):
                    first.last_seen = det.last_seen
                out[first.id] = first
        return list(out.values())

    def _admit(self, det: Detection) -> str:
        """A new detection id: report it, or fold it into the open one of its rule and group key."""
        window = self.windows.get(det.rule_id, self.default_s)
        key = (det.rule_id, det.group_key)
        start = event_time(det.first_seen)
        kept = self._first.get(key)
        if kept is not None and abs(start - kept[1]) < window:
            kept[0].suppressed_count += 1
            self.suppressed += 1
            self._remember(det.id, kept[0].id)
            return kept[0].id
        self._first[key] = (det, start)
        self._first.move_to_end(key)
        if len(self._first) > MAX_TRACKED:
            self._first.popitem(last=False)
        self._remember(det.id, det.id)
        return det.id

    def _remember(self, det_id: str, target: str) -> None:
        self._seen[det_id] = target
        if len(self._seen) > MAX_TRACKED:
            self._seen.popitem(last=False)
