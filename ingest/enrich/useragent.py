"""``user_agent.name``, ``.version``, ``.os.name``, ``.os.version``, ``.device.name`` from ``user_agent.original``.

Parsed with ua-parser (the uap-core regexes ship inside the ``ua-parser-builtins`` wheel: no download at
run time; the ``ua-parser-rs`` accelerator is used when installed, ~10x faster on a cache miss) and cached
per user-agent string (LRU). API clients that uap-core does not know (``openai-python/1.54.3``,
``OpenAI/NodeJS/4.71.0``) get their product token as name and version.

>>> enrich = UserAgentEnricher()
>>> enrich({"user_agent": {"original": "openai-python/1.54.3"}})["user_agent"]
{'original': 'openai-python/1.54.3', 'name': 'openai-python', 'version': '1.54.3'}
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

import ua_parser
from ua_parser import Domain

#: Longer user-agent strings are not parsed (uap-core regexes on megabyte strings are an attack surface).
MAX_LENGTH: Final = 1024
_PRODUCT: Final = re.compile(r"^([A-Za-z][\w.-]{0,63}(?:/[A-Za-z][\w.-]{0,31})*)(?:/(\d[\w.-]{0,31}))?(?:$|[\s;(])")

# name, version, os name, os version, device name
Parsed = tuple[str | None, str | None, str | None, str | None, str | None]
_NOTHING: Final[Parsed] = (None, None, None, None, None)


def _version(*parts: str | None) -> str | None:
    out: list[str] = []
    for part in parts:
        if part is None or part == "":
            break
        out.append(part)
    return ".".join(out) or None


class UserAgentEnricher:
    """Add the parsed user agent to documents that have ``user_agent.original``; existing fields are kept."""

    def __init__(self, *, cache_size: int = 16_384) -> None:
        self._parser = ua_parser.Parser(ua_parser.BestAvailableResolver(ua_parser.load_builtins()))
        self.parse = lru_cache(maxsize=cache_size)(self._parse)

    def __repr__(self) -> str:
        return "UserAgentEnricher()"

    def _parse(self, original: str) -> Parsed:
        if len(original) > MAX_LENGTH:
            return _NOTHING
        result = self._parser(original, Domain.ALL)
        ua, os_, device = result.user_agent, result.os, result.device
        name = version = os_name = os_version = device_name = None
        if ua is not None and ua.family != "Other":
            name, version = ua.family, _version(ua.major, ua.minor, ua.patch, ua.patch_minor)
        elif product := _PRODUCT.match(original):
            name, version = product.group(1), product.group(2)
        if os_ is not None and os_.family != "Other":
            os_name, os_version = os_.family, _version(os_.major, os_.minor, os_.patch, os_.patch_minor)
        if device is not None and device.family != "Other":
            device_name = device.family
        return name, version, os_name, os_version, device_name

    def __call__(self, doc: dict[str, Any]) -> dict[str, Any]:
        node = doc.get("user_agent")
        if type(node) is not dict:
            return doc
        original = node.get("original")
        if type(original) is not str or not original:
            return doc
        name, version, os_name, os_version, device_name = self.parse(original)
        # fresh dicts per document: later transforms change documents in place, never the cache
        if name is not None:
            node.setdefault("name", name)
        if version is not None:
            node.setdefault("version", version)
        if os_name is not None:
            os_node = node.setdefault("os", {})
            if type(os_node) is dict:
                os_node.setdefault("name", os_name)
                if os_version is not None:
                    os_node.setdefault("version", os_version)
        if device_name is not None:
            device = node.setdefault("device", {})
            if type(device) is dict:
                device.setdefault("name", device_name)
        return doc
