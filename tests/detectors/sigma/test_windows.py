"""``Window.slide`` and ``Window.rules_out`` are the same as their steps one by one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.sigma.corr_base import Item
from detectors.sigma.rules import CorrelationRule, RuleMeta
from detectors.sigma.windows import Window, running

META = RuleMeta("r", "r", "r", "", "low", (), "", 0)


@dataclass
class Group:
    items: list[Item] = field(default_factory=list)
    lo: int = 0


def stepwise(window: Window, g: Group, start: float, value: Any) -> bool:
    """The reference: one call per item that leaves, then add and met."""
    while g.items[g.lo][0] < start:
        window.remove(g.items[g.lo][3])
        g.lo += 1
    window.add(value)
    return window.met(g.items, g.lo, len(g.items))


values = {
    "event_count": st.none(),
    "value_count": st.sampled_from(["a", "b", "c"]),
    "value_sum": st.one_of(st.floats(-1e3, 1e3), st.integers(-5, 5), st.sampled_from([1e308, -1e308, 0.1, 0.2])),
}


@pytest.mark.parametrize("kind", sorted(values))
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_a_slide_is_its_steps(kind: str, data: st.DataObject) -> None:
    rule = CorrelationRule(META, kind, ("a",), ("user.id",), 10.0, op="gte", count=data.draw(st.integers(1, 4)))
    gaps = data.draw(st.lists(st.floats(0, 8), min_size=1, max_size=25))
    fast, slow = Group(), Group()
    fast_window = slow_window = None
    t = 0.0
    for gap in gaps:
        t += gap
        value = data.draw(values[kind])
        item: Item = (t, "", "e", value, None)
        fast.items.append(item)
        slow.items.append(item)
        if fast_window is None or slow_window is None:  # the first item: a window of it alone
            fast_window, slow_window = running(rule, fast.items), running(rule, slow.items)
            continue
        assert fast_window.slide(fast, t - 10.0, value) == stepwise(slow_window, slow, t - 10.0, value)
        assert fast.lo == slow.lo
        window = fast.items[fast.lo :]  # the late-event bound over these values, in one call and in two
        assert fast_window.rules_out(window) == (
            slow_window.bounds_subsets() and not slow_window.met(window, 0, len(window))
        )
        assert state(fast_window) == state(slow_window)


def state(window: Window) -> str:
    """The aggregate's fields (repr: a NaN total equals itself)."""
    return repr([getattr(window, k, None) for k in ("n", "counts", "total", "negative")])
