"""One pure parser per log source, registered in :data:`PARSERS`.

A parser takes the raw bytes of one record and returns an ECS document (a nested ``dict``).
It does no I/O, reads no clock and keeps no state; it raises :class:`ingest.errors.ParseError`
with a short reason code when the record is not what the source promises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from ingest.errors import ParseError
from ingest.parsers import api_access, audit, cloudtrail, github_audit, k8s_audit, okta, web_access
from ingest.parsers._common import split_json_array

Parser = Callable[[bytes], dict[str, Any]]
#: Framing for sources whose one transport record may hold several events (a CloudTrail
#: ``{"Records": [...]}`` envelope, a JSON array of Okta events): raw record -> raw events.
Splitter = Callable[[bytes], list[bytes]]

PARSERS: Final[dict[str, Parser]] = {
    "api_access": api_access.parse,
    "audit": audit.parse,
    "okta": okta.parse,
    "github_audit": github_audit.parse,
    "nginx": web_access.parse_nginx,
    "apache": web_access.parse_apache,
    "cloudtrail": cloudtrail.parse,
    "k8s_audit": k8s_audit.parse,
}

SPLITTERS: Final[dict[str, Splitter]] = {
    "okta": split_json_array,
    "github_audit": split_json_array,
    "cloudtrail": cloudtrail.split,
    "k8s_audit": k8s_audit.split,
}


def get_parser(source: str) -> Parser:
    """The parser registered for ``source``; :class:`ParseError` names the known ones otherwise."""
    try:
        return PARSERS[source]
    except KeyError:
        known = ", ".join(sorted(PARSERS))
        raise ParseError("unknown_source", f"no parser for source {source!r} (known: {known})") from None
