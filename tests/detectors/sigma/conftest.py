"""Helpers for the Sigma engine tests: write rules, load them, make events, run the engine."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import yaml

from detectors.detection import Detection
from detectors.sigma.engine import RuleEngine
from detectors.sigma.fields import nest
from detectors.sigma.loader import load_rules
from detectors.sigma.rules import DetectionRule, RuleSet
from ingest.records import NormalizedEvent, Record

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
_ids = count(1)
_files = count(1)


def stamp(seconds: float) -> str:
    """``T0 + seconds`` in the parsers' form."""
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class SigmaKit:
    """Builds rule documents, loads them from files and runs the engine."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path

    def rule(
        self,
        detection: dict[str, Any],
        *,
        name: str | None = None,
        logsource: dict[str, str] | None = None,
        level: str = "low",
        **extra: Any,
    ) -> dict[str, Any]:
        n = next(_ids)
        return {
            "title": f"rule {n}",
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "name": name or f"rule_{n}",
            "description": "test rule",
            "logsource": logsource or {"product": "logwarden", "service": "api_access"},
            "detection": detection,
            "level": level,
            **extra,
        }

    def correlation(
        self, body: dict[str, Any], *, name: str | None = None, level: str = "high", **extra: Any
    ) -> dict[str, Any]:
        n = next(_ids)
        return {
            "title": f"correlation {n}",
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "name": name or f"corr_{n}",
            "description": "test correlation",
            "correlation": body,
            "level": level,
            **extra,
        }

    def write(self, *docs: dict[str, Any] | str, name: str | None = None) -> Path:
        path = self.dir / (name or f"rules_{next(_files)}.yml")
        text = "---\n".join(d if isinstance(d, str) else yaml.safe_dump(d, sort_keys=False) for d in docs)
        path.write_text(text, encoding="utf-8")
        return path

    def load(self, *docs: dict[str, Any] | str, errors_ok: bool = False, **kwargs: Any) -> RuleSet:
        ruleset = load_rules([self.write(*docs)], **kwargs)
        if not errors_ok:
            assert ruleset.errors == [], [str(e) for e in ruleset.errors]
        return ruleset

    def compile(self, detection: dict[str, Any], **kwargs: Any) -> DetectionRule:
        (compiled,) = self.load(self.rule(detection, **kwargs.pop("rule", {})), **kwargs).rules
        return compiled

    def event(self, seconds: float, doc: dict[str, Any] | None = None, **dotted: Any) -> NormalizedEvent:
        body = nest(
            {"logwarden.source": "api_access", **(doc or {}), **{k.replace("__", "."): v for k, v in dotted.items()}}
        )
        body["@timestamp"] = stamp(seconds)
        n = next(_ids)
        return NormalizedEvent(f"e{n}", body, Record("test", str(n).encode()))

    stamp = staticmethod(stamp)

    @staticmethod
    def by_name(detections: Sequence[Detection], name: str) -> list[Detection]:
        return [d for d in detections if d.rule_name == name]

    @staticmethod
    def run(
        ruleset: RuleSet, events: Iterable[NormalizedEvent], *, flush: bool = True, **engine: Any
    ) -> list[Detection]:
        """Final state of every detection (in order of first report) after processing and flushing."""
        eng = RuleEngine(ruleset, **engine)
        final: dict[str, Detection] = {}
        for det in eng.process(list(events)):
            final[det.id] = det
        if flush:
            for det in eng.flush():
                final[det.id] = det
        return list(final.values())


@pytest.fixture
def kit(tmp_path: Path) -> SigmaKit:
    return SigmaKit(tmp_path)
