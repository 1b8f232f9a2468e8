"""What alerting knows about each rule (or model) beyond its detections: version, runbook, team, window.

Rules are Sigma YAML; besides the engine's ``logwarden:`` options they may carry two top-level
custom attributes that only alerting reads:

- ``runbook: https://...``: the runbook of the rule's alerts (default: ``<runbook base>#<rule name>``);
- ``team: security``: the ``team`` label that routes its alerts in Alertmanager (default ``security``).

The version of a rule is ``<version or modified or date>+<digest>``: the Sigma ``modified``/``date``
for people, plus the first 8 hex digits of a digest of the whole rule document, so any edit of a rule
changes the version even when its author forgot to bump ``modified``. ML detectors register their
models with :meth:`RuleCatalog.register` (model id, model version).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import yaml

from detectors.sigma.rules import RuleMeta, RuleSet

log = logging.getLogger(__name__)

DEFAULT_RUNBOOKS: Final = "https://github.com/logwarden/logwarden/blob/main/docs/runbooks.md"
DEFAULT_TEAM: Final = "security"
_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: the rules load 10x faster


@dataclass(frozen=True)
class RuleInfo:
    """Alerting facts about one rule or model.

    ``window_s``: how long after its first event a detection of the rule may still change (the
    correlation timespan plus the suppression window); an alert resolves only once that is over.
    """

    version: str | None = None
    runbook_url: str | None = None
    team: str = DEFAULT_TEAM
    window_s: float = 0.0


def anchor(name: str) -> str:
    """The Markdown heading anchor of a rule name (``## api_login_brute_force`` -> ``api_login_brute_force``).

    >>> anchor("API Login: Brute Force")
    'api-login-brute-force'
    """
    out = "".join(c if c.isalnum() or c in "_-" else " " if c.isspace() else "" for c in name.lower())
    return "-".join(out.split())


class RuleCatalog:
    """Rule id -> :class:`RuleInfo`; unknown ids get a default (runbook link by rule name)."""

    def __init__(self, infos: dict[str, RuleInfo] | None = None, *, runbook_base: str = DEFAULT_RUNBOOKS) -> None:
        self._infos = dict(infos or {})
        self.runbook_base = runbook_base.rstrip("#")

    def register(self, rule_id: str, info: RuleInfo) -> None:
        self._infos[rule_id] = info

    def register_models(self, rules: Mapping[str, Mapping[str, Any]], *, team: str = DEFAULT_TEAM) -> None:
        """Models as rules: ``MLEngine.rules()`` (model id -> ``{"name", "version", "window_s"}``).

        Their runbook is ``<runbook base>#<model name>`` unless the entry has a ``runbook``.
        """
        for rule_id, entry in rules.items():
            name = str(entry.get("name", rule_id))
            runbook = entry.get("runbook")
            self._infos[rule_id] = RuleInfo(
                version=str(entry["version"]) if entry.get("version") is not None else None,
                runbook_url=str(runbook) if runbook else f"{self.runbook_base}#{anchor(name)}",
                team=str(entry.get("team") or team),
                window_s=float(entry.get("window_s") or 0.0),
            )

    def get(self, rule_id: str, rule_name: str) -> RuleInfo:
        info = self._infos.get(rule_id)
        if info is None:
            return RuleInfo(runbook_url=f"{self.runbook_base}#{anchor(rule_name)}")
        if info.runbook_url is None:
            return RuleInfo(info.version, f"{self.runbook_base}#{anchor(rule_name)}", info.team, info.window_s)
        return info

    def __len__(self) -> int:
        return len(self._infos)

    @classmethod
    def from_ruleset(cls, ruleset: RuleSet, *, runbook_base: str = DEFAULT_RUNBOOKS) -> RuleCatalog:
        """Versions, runbooks and teams from the rule files, windows from the compiled rules."""
        metas: list[tuple[RuleMeta, float]] = [(r.meta, 0.0) for r in ruleset.rules]
        metas += [(c.meta, c.timespan_s) for c in ruleset.correlations]
        docs = _documents_by_id({m.path for m, _ in metas})
        infos: dict[str, RuleInfo] = {}
        for meta, span in metas:
            doc = docs.get(meta.id, {})
            runbook = doc.get("runbook")
            infos[meta.id] = RuleInfo(
                version=rule_version(doc) if doc else None,
                runbook_url=str(runbook) if runbook else None,
                team=str(doc.get("team") or DEFAULT_TEAM),
                window_s=span + meta.options.suppress_s,
            )
        return cls(infos, runbook_base=runbook_base)


def rule_version(doc: dict[str, Any]) -> str:
    """``<version|modified|date>+<8 hex digest of the document>`` (only the digest without any of them).

    >>> rule_version({"id": "r1", "date": "2026-11-28", "title": "t"})[:11]
    '2026-11-28+'
    """
    digest = hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS, default=str), digest_size=4).hexdigest()
    label = doc.get("version") or doc.get("modified") or doc.get("date")
    return f"{label}+{digest}" if label else digest


def _documents_by_id(paths: set[str]) -> dict[str, dict[str, Any]]:
    """Rule id -> its YAML document, over the rule files (unreadable files are skipped: the loader reported them)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(paths):
        try:
            docs = list(yaml.load_all(Path(path).read_text(encoding="utf-8"), Loader=_LOADER))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            log.warning("cannot read %s for rule versions: %s", path, exc)
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("id"):
                found[str(doc["id"])] = doc
    return found
