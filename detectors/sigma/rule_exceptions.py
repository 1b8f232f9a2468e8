"""Rule exceptions: known-good activity a rule must not alert on, each with an owner, a reason and an expiry.

Files named ``exceptions.yml`` (or ``*.exceptions.yml``) anywhere under the rule paths::

    exceptions:
      - id: ci-bot-retries                 # optional; default <file>:<line>
        rule: api_login_brute_force        # rule name or id, or a list of them
        match:                             # Sigma detection syntax over ECS fields; every item must hold
          user.id: user_ci_bot
          source.ip|cidr: 10.0.0.0/8
        owner: secops@example.com
        reason: the CI bot retries with a rotated password (SEC-123)
        expires: 2027-01-31                # the exception is ignored from this day on (lint reports it)

An exception applies to the events of its rule: a matching event does not match a single-event rule, and
is not counted by a correlation (for a base rule, by any correlation that uses it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from detectors.errors import DetectorError, RuleError
from detectors.sigma.compile import Predicate, compile_tree

EXCEPTION_FILE = "exceptions.yml"
_KEYS = {"id", "rule", "match", "owner", "reason", "expires"}
_REQUIRED = ("rule", "match", "owner", "reason", "expires")


@dataclass(frozen=True)
class RuleException:
    """One compiled exception entry."""

    id: str
    rules: tuple[str, ...]  # rule ids
    predicate: Predicate
    owner: str
    reason: str
    expires: date
    path: str
    line: int

    def expired(self, today: date) -> bool:
        return today >= self.expires


def is_exception_file(path: Path) -> bool:
    return path.name == EXCEPTION_FILE or path.name.endswith("." + EXCEPTION_FILE)


@dataclass
class ExceptionLoad:
    """The active exceptions of some files and what was wrong with them."""

    active: list[RuleException]
    errors: list[RuleError]
    warnings: list[RuleError]


def load_exceptions(
    paths: list[Path], resolve: Callable[[str], str], pipeline: ProcessingPipeline, today: date
) -> ExceptionLoad:
    """Load every exception file; expired entries are left out and reported as warnings."""
    out = ExceptionLoad([], [], [])
    for path in paths:
        for entry, line in _entries(path, out.errors):
            where = str(path)
            try:
                exc = _compile(entry, where, line, resolve, pipeline)
            except RuleError as error:
                out.errors.append(error)
                continue
            if exc.expired(today):
                out.warnings.append(
                    RuleError(where, line, f"exception {exc.id} (owner {exc.owner}) expired on {exc.expires}: ignored")
                )
            else:
                out.active.append(exc)
    return out


def _entries(path: Path, errors: list[RuleError]) -> list[tuple[Any, int]]:
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        errors.append(RuleError(str(path), (mark.line + 1) if mark else 1, f"cannot read exceptions: {exc}"))
        return []
    if data is None:
        return []
    entries = data.get("exceptions") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        errors.append(RuleError(str(path), 1, "an exceptions file holds a mapping with an 'exceptions' list"))
        return []
    assert node is not None
    list_node = next(v for k, v in node.value if k.value == "exceptions")
    return [(entry, item.start_mark.line + 1) for entry, item in zip(entries, list_node.value, strict=True)]


def _compile(
    entry: Any, path: str, line: int, resolve: Callable[[str], str], pipeline: ProcessingPipeline
) -> RuleException:
    if not isinstance(entry, dict):
        raise RuleError(path, line, "an exception must be a mapping")
    unknown = sorted(set(entry) - _KEYS)
    missing = [k for k in _REQUIRED if not entry.get(k)]
    problems = ([f"unknown keys {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])
    if problems:
        raise RuleError(path, line, "exception: " + ", ".join(problems))
    expires = entry["expires"]
    if not isinstance(expires, date):
        try:
            expires = date.fromisoformat(str(expires))
        except ValueError:
            raise RuleError(path, line, f"exception: expires must be a date (YYYY-MM-DD), not {expires!r}") from None
    refs = entry["rule"] if isinstance(entry["rule"], list) else [entry["rule"]]
    try:
        rule_ids = tuple(resolve(str(ref)) for ref in refs)
    except DetectorError as exc:
        raise RuleError(path, line, f"exception: {exc}") from None
    if not isinstance(entry["match"], dict):
        raise RuleError(path, line, "exception: match must be a mapping of fields to values")
    try:
        sigma = SigmaRule.from_dict(
            {
                "title": "exception",
                "logsource": {"product": "logwarden"},
                "detection": {"match": entry["match"], "condition": "match"},
            }
        )
        pipeline.apply(sigma)
        predicate = compile_tree(sigma.detection.parsed_condition[0].parse()).predicate
    except (SigmaError, DetectorError) as exc:
        raise RuleError(path, line, f"exception: bad match: {exc}") from None
    return RuleException(
        id=str(entry.get("id") or f"{Path(path).name}:{line}"),
        rules=rule_ids,
        predicate=predicate,
        owner=str(entry["owner"]),
        reason=str(entry["reason"]),
        expires=expires,
        path=path,
        line=line,
    )
