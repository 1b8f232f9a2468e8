"""The engine's fast paths agree with the general ones: index-decided equalities, memoized rule masks, the
single-lane watermark."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.types import SigmaString

from detectors.sigma.engine import RuleEngine
from detectors.sigma.fields import FieldView
from detectors.sigma.index import FieldIndex, _FieldAtoms
from detectors.sigma.values import string_matcher
from detectors.sigma.watermark import Watermark
from tests.detectors.sigma.test_index import documents, rule_zoo

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Case folding traps (sharp s, dotted and dotless i, the Kelvin sign), numbers spelled several ways.
ALPHABET = "aAbB\u00df\u0130\u0131iI\u212ak. -"
words = st.one_of(st.text(alphabet=ALPHABET, max_size=4), st.sampled_from(["10", "10.0", "1e1", "-0", "true"]))
scalars = st.one_of(words, st.integers(-2, 12), st.floats(allow_nan=True), st.booleans(), st.none())
field_values = st.one_of(scalars, st.lists(scalars, max_size=3))


@SETTINGS
@given(
    wanted=st.lists(words, min_size=1, max_size=4),
    docs=st.lists(st.fixed_dictionaries({}, optional={"user.name": field_values}), min_size=1, max_size=8),
)
def test_index_decided_equalities_agree_with_the_predicate_and_the_generic_matcher(
    kit: Any, wanted: list[str], docs: list[dict[str, Any]]
) -> None:
    ruleset = kit.load(kit.rule({"s": {"user.name": wanted}, "condition": "s"}, name="eq"))
    (rule,) = ruleset.rules
    assert rule.exact is rule.predicate  # the index alone decides this rule
    generic = [string_matcher(SigmaString(w), cased=False) for w in wanted]
    engine = RuleEngine(ruleset)
    for doc in docs:
        event = kit.event(0, doc)
        view = FieldView.of(event.doc)
        decided = [r for r, predicate in engine.index.for_doc(event.doc).plan(view) if predicate(view)] == [rule]
        assert decided is rule.predicate(FieldView.of(event.doc)), doc
        assert decided is any(m(v) for m in generic for v in view["user.name"]), doc
    events = [kit.event(i, d) for i, d in enumerate(docs)]
    assert [d.id for d in kit.run(ruleset, events)] == [d.id for d in kit.run(ruleset, events, use_index=False)]


@SETTINGS
@given(docs=st.lists(documents, min_size=1, max_size=12))
def test_rule_masks_do_not_depend_on_what_the_index_remembers(
    kit: Any, docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ruleset = rule_zoo(kit)
    warm = RuleEngine(ruleset)
    monkeypatch.setattr(_FieldAtoms, "MEMO", 2)  # forget values and candidate lists all the time
    monkeypatch.setattr(FieldIndex, "MASKS", 2)
    forgetful = RuleEngine(ruleset)
    for doc in docs * 2:  # the second round meets remembered values
        doc = kit.event(0, doc).doc
        fresh = [r.meta.name for r in RuleEngine(ruleset).candidates(doc)]
        assert [r.meta.name for r in warm.candidates(doc)] == fresh
        assert [r.meta.name for r in forgetful.candidates(doc)] == fresh


@settings(max_examples=100, deadline=None)
@given(times=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), lateness=st.floats(0, 1000))
def test_the_single_lane_watermark_agrees_with_the_general_computation(times: list[float], lateness: float) -> None:
    wm = Watermark(lateness, clock=lambda: 0.0)
    newest = float("-inf")
    for t in times:
        accepted = wm.observe(t, lane="p0") or t < newest - lateness  # late events are refused
        newest = max(newest, t)
        value = wm.value
        wm._recompute(0.0)  # the general path (minimum over the active lanes)
        assert wm.value == value
        assert accepted
