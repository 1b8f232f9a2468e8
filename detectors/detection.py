"""What a detector reports: one detection per rule and group, updated while its window stays open."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def detection_id(rule_id: str, group_key: str, window_start: str) -> str:
    """Deterministic id: the same rule, group and window always give the same id (replays never duplicate).

    >>> detection_id("r1", "user.id=u1", "2026-11-02T08:00:00.000Z") == detection_id(
    ...     "r1", "user.id=u1", "2026-11-02T08:00:00.000Z")
    True
    """
    material = "\x1f".join((rule_id, group_key, window_start)).encode()
    return hashlib.blake2b(material, digest_size=16).hexdigest()


@dataclass
class Detection:
    """A rule (or model) hit: which rule, for which entity, over which events."""

    id: str
    rule_id: str
    rule_name: str
    title: str
    description: str
    level: str  # informational | low | medium | high | critical
    group: dict[str, str]  # group-by field -> value ({} for single-event rules)
    first_seen: str
    last_seen: str
    event_count: int
    event_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    suppressed_count: int = 0  # later detections of the same rule and group folded into this one
    risk_score: float | None = None  # 0-100; None: the consumer derives it from the level

    @property
    def group_key(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.group.items()))
