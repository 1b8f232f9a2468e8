"""Our two correlation types that Sigma lacks, written in the same YAML style as Sigma correlations.

``absence``: a trigger not followed by an expected event within the timespan, for the same group (an MFA
challenge without a success). It fires once the watermark passes the trigger's time + timespan::

    correlation:
      type: absence
      rules: [mfa_challenge]          # triggers (any of them)
      followed-by: [mfa_success]      # expected follow-ups (any of them)
      group-by: [user.id]
      timespan: 5m
      aliases: {...}                  # optional, as in Sigma (a group-by name per rule)

``first_seen``: the first time a value of ``field`` is seen for a group (a new country for an API key),
after a learning period during which values are only learned. ``timespan`` is how long a value stays
known after it was last seen (state expiry)::

    correlation:
      type: first_seen
      rules: [api_request]
      group-by: [logwarden.api.key_id]
      field: source.geo.country_iso_code
      learning-period: 7d
      learning-scope: rule            # rule (default): one period from the rule's first event; group: per group
      timespan: 30d

pySigma refuses unknown correlation types, so the loader hands pySigma an equivalent ``event_count``
document (same references, group-by, aliases and ``field``) for validation, reference resolution and
field mapping, then turns the result into the custom type here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from detectors.errors import RuleError
from detectors.sigma.build import timespan_seconds
from detectors.sigma.rules import CorrelationRule

CUSTOM_TYPES = frozenset({"absence", "first_seen"})
_COMMON = {"type", "rules", "group-by", "timespan", "aliases", "generate"}
_KEYS = {"absence": _COMMON | {"followed-by"}, "first_seen": _COMMON | {"field", "learning-period", "learning-scope"}}


@dataclass(frozen=True)
class CustomSpec:
    """What the custom type adds to the stand-in Sigma correlation."""

    type: str
    trigger_count: int
    learning_s: float = 0.0
    learning_scope: str = "rule"


def is_custom(doc: dict[str, Any]) -> bool:
    corr = doc.get("correlation")
    return isinstance(corr, dict) and corr.get("type") in CUSTOM_TYPES


def _refs(value: Any, what: str, path: str, line: int) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise RuleError(path, line, f"{what} must be a rule name or id, or a list of them")


def stand_in(doc: dict[str, Any], path: str, line: int) -> tuple[dict[str, Any], CustomSpec]:
    """The Sigma ``event_count`` stand-in for a custom correlation document, and the custom part."""
    corr = doc["correlation"]
    kind = corr["type"]
    unknown = sorted(set(corr) - _KEYS[kind])
    if unknown:
        raise RuleError(path, line, f"{kind} correlation: unknown keys {unknown} (known: {sorted(_KEYS[kind])})")
    triggers = _refs(corr.get("rules"), f"{kind} correlation: rules", path, line)
    sigma: dict[str, Any] = {
        "type": "event_count",
        "rules": triggers,
        "timespan": corr.get("timespan"),
        "condition": {"gte": 1},
        "generate": corr.get("generate", False),
    }
    for key in ("group-by", "aliases"):
        if key in corr:
            sigma[key] = corr[key]
    if kind == "absence":
        sigma["rules"] = triggers + _refs(corr.get("followed-by"), "absence correlation: followed-by", path, line)
        if sigma["timespan"] is None:
            raise RuleError(path, line, "absence correlation needs a timespan")
        return {**doc, "correlation": sigma}, CustomSpec(kind, len(triggers))
    field = corr.get("field")
    if not isinstance(field, str) or not field:
        raise RuleError(path, line, "first_seen correlation needs a field (the value whose first sighting fires)")
    sigma["condition"] = {"gte": 1, "field": field}
    if sigma["timespan"] is None:
        sigma["timespan"] = "3650d"  # remember values for ten years unless told otherwise
    learning = corr.get("learning-period")
    learning_s = timespan_seconds(learning, path, line, "learning-period") if learning is not None else 0.0
    scope = corr.get("learning-scope", "rule")
    if scope not in ("rule", "group"):
        raise RuleError(path, line, f"learning-scope must be 'rule' or 'group', not {scope!r}")
    return {**doc, "correlation": sigma}, CustomSpec(kind, len(triggers), learning_s, scope)


def finish(rule: CorrelationRule, spec: CustomSpec) -> CorrelationRule:
    """The custom correlation from its compiled stand-in."""
    if spec.type == "absence":
        triggers, followed = rule.rules[: spec.trigger_count], rule.rules[spec.trigger_count :]
        return replace(rule, type="absence", rules=triggers, followed_by=followed, op="gte", count=1)
    return replace(
        rule, type="first_seen", op="gte", count=1, learning_s=spec.learning_s, learning_scope=spec.learning_scope
    )
