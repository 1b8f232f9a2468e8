"""What every correlator shares: hits, bounded per-group state, group keys and detection building."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from detectors.detection import Detection, detection_id
from detectors.sigma.fields import FieldView, field_getter, read
from detectors.sigma.rules import CorrelationRule
from detectors.sigma.watermark import event_time

S = TypeVar("S")
MAX_EVENT_IDS = 100  # event ids kept per detection (the count keeps counting)

#: One event in a window: (epoch seconds, timestamp text, event id, value, risk score or None).
Item = tuple[float, str, str, Any, float | None]


@dataclass(frozen=True)
class Limits:
    """Bounds on correlation state: groups per rule (least recently used evicted first), items per group."""

    max_groups: int = 100_000
    max_items: int = 1_000


@dataclass(slots=True)
class Hit:
    """A rule (or correlation) matched an event: what a correlation receives."""

    rule_id: str
    t: float
    ts: str
    event_id: str
    doc: FieldView
    risk: float | None = None


class GroupStore(Generic[S]):
    """Per-group state with LRU eviction beyond ``max_groups`` (evictions are counted)."""

    def __init__(self, factory: Callable[[], S], max_groups: int) -> None:
        self._factory = factory
        self._max = max_groups
        self._groups: OrderedDict[tuple[str, ...], S] = OrderedDict()
        self.states = self._groups  # read-only, for hot paths: touch() of a known key is get + move_to_end
        self.evicted = 0

    def touch(self, key: tuple[str, ...]) -> S:
        state = self._groups.get(key)
        if state is None:
            state = self._groups[key] = self._factory()
            if len(self._groups) > self._max:
                self._groups.popitem(last=False)
                self.evicted += 1
        else:
            self._groups.move_to_end(key)
        return state

    def get(self, key: tuple[str, ...]) -> S | None:
        return self._groups.get(key)

    def pop(self, key: tuple[str, ...]) -> None:
        self._groups.pop(key, None)

    def items(self) -> Iterator[tuple[tuple[str, ...], S]]:
        return iter(list(self._groups.items()))

    def __len__(self) -> int:
        return len(self._groups)


def group_map(rule: CorrelationRule, values: tuple[str, ...], extra: dict[str, str] | None = None) -> dict[str, str]:
    return dict(zip(rule.group_by, values, strict=True)) | (extra or {})


def make_detection(
    rule: CorrelationRule, group: dict[str, str], items: list[Item], window_start: str | None = None
) -> Detection:
    """A new detection over ``items`` (sorted by time); its id is stable for the rule, group and window."""
    m = rule.meta
    key = ",".join(f"{k}={v}" for k, v in sorted(group.items()))
    risks = [i[4] for i in items if i[4] is not None]
    return Detection(
        id=detection_id(m.id, key, window_start or items[0][1]),
        rule_id=m.id,
        rule_name=m.name,
        title=m.title,
        description=m.description,
        level=m.level,
        group=group,
        first_seen=items[0][1],
        last_seen=max(items, key=lambda i: i[0])[1],
        event_count=len(items),
        event_ids=[i[2] for i in items[:MAX_EVENT_IDS]],
        tags=list(m.tags),
        risk_score=max(risks) if risks else m.default_risk,
    )


def absorb(det: Detection, item: Item) -> Detection:
    """Add one more event to an open detection (same id)."""
    det.event_count += 1
    if item[0] < event_time(det.first_seen):
        det.first_seen = item[1]
    if item[0] > event_time(det.last_seen):
        det.last_seen = item[1]
    if len(det.event_ids) < MAX_EVENT_IDS:
        det.event_ids.append(item[2])
    if item[4] is not None:
        det.risk_score = max(det.risk_score or 0.0, item[4])
    return det


KeyReader = Callable[[FieldView], "tuple[str, ...] | None"]


def key_reader(names: tuple[str, ...]) -> KeyReader:
    """A function giving the group key of an event: the first non-null value of each of ``names`` as text,
    None when one is missing (such events join no group).

    >>> key = key_reader(("user.id",))
    >>> key(FieldView.of({"user": {"id": [None, 7]}})), key(FieldView.of({}))
    (('7',), None)
    """
    if len(names) == 1:  # the common case: no list, the view's cache read inline
        name = names[0]
        getter = field_getter(name)

        def single(view: FieldView) -> tuple[str, ...] | None:
            values = view.get(name)
            if values is None:
                values = view[name] = getter(view.doc)
            for v in values:
                if v is not None:
                    return (v if type(v) is str else str(v),)
            return None

        return single

    def several(view: FieldView) -> tuple[str, ...] | None:
        values = []
        for name in names:
            for v in read(view, name):
                if v is not None:
                    values.append(str(v))
                    break
            else:
                return None
        return tuple(values)

    return several


class Correlator:
    """Base of the correlators: ``add`` a hit, ``advance`` to a watermark, ``expire`` stale groups; each keeps its
    per-group state in ``groups`` (set by the subclass)."""

    groups: GroupStore[Any]

    def __init__(self, rule: CorrelationRule, limits: Limits) -> None:
        self.rule = rule
        self.limits = limits
        self.next_deadline = float("inf")  # the watermark at which ``advance`` has work to do
        self.truncated = 0  # items dropped because a group held too many
        self._keyers: dict[str, KeyReader] = {}  # per input rule (the group-by aliases differ per rule)
        self.risk_field = rule.meta.options.risk_score_field
        self.rule_id = rule.meta.id

    def key_of(self, hit: Hit) -> tuple[str, ...] | None:
        """The group key of a hit (first value of each group-by field, aliases resolved), None when one is
        missing: such events join no group."""
        keyer = self._keyers.get(hit.rule_id)
        if keyer is None:
            keyer = self._keyers[hit.rule_id] = key_reader(self.rule.group_fields(hit.rule_id))
        return keyer(hit.doc)

    def add(self, hit: Hit, watermark: float) -> list[Detection]:
        raise NotImplementedError

    def advance(self, watermark: float) -> list[Detection]:
        return []

    def expire(self, watermark: float) -> int:
        return 0

    @property
    def group_count(self) -> int:
        return len(self.groups)

    @property
    def evicted(self) -> int:
        """Groups dropped because the correlator held too many."""
        return self.groups.evicted
