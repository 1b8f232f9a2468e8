"""User-agent enrichment (ua-parser with its bundled regexes: works offline)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.enrich.useragent import MAX_LENGTH, UserAgentEnricher

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(scope="module")
def enricher() -> UserAgentEnricher:
    return UserAgentEnricher()


def ua(enricher: UserAgentEnricher, original: str) -> dict[str, Any]:
    out: dict[str, Any] = enricher({"user_agent": {"original": original}})["user_agent"]
    return out


def test_browser_with_os(enricher: UserAgentEnricher) -> None:
    assert ua(enricher, CHROME_WINDOWS) == {
        "original": CHROME_WINDOWS,
        "name": "Chrome",
        "version": "130.0.0.0",
        "os": {"name": "Windows", "version": "10"},
    }


def test_mobile_device(enricher: UserAgentEnricher) -> None:
    out = ua(enricher, IPHONE)
    assert out["name"] == "Mobile Safari"
    assert out["os"] == {"name": "iOS", "version": "17.4"}
    assert out["device"] == {"name": "iPhone"}


@pytest.mark.parametrize(
    ("original", "name", "version"),
    [
        ("python-requests/2.31.0", "Python Requests", "2.31"),
        ("curl/8.5.0", "curl", "8.5.0"),
        ("openai-python/1.54.3", "openai-python", "1.54.3"),
        ("OpenAI/NodeJS/4.71.0", "OpenAI/NodeJS", "4.71.0"),
        ("Zapier", "Zapier", None),
    ],
)
def test_api_clients(enricher: UserAgentEnricher, original: str, name: str, version: str | None) -> None:
    out = ua(enricher, original)
    assert out["name"] == name
    assert out.get("version") == version
    assert "os" not in out and "device" not in out


@pytest.mark.parametrize("original", ["", "-", "()", "x" * (MAX_LENGTH + 1)])
def test_unparseable_adds_nothing(enricher: UserAgentEnricher, original: str) -> None:
    assert ua(enricher, original) == {"original": original}


def test_documents_without_user_agent_are_untouched(enricher: UserAgentEnricher) -> None:
    assert enricher({"user": {"id": "u"}}) == {"user": {"id": "u"}}
    assert enricher({"user_agent": "odd"}) == {"user_agent": "odd"}
    assert enricher({"user_agent": {"original": 5}}) == {"user_agent": {"original": 5}}


def test_existing_fields_are_kept(enricher: UserAgentEnricher) -> None:
    out = enricher({"user_agent": {"original": CHROME_WINDOWS, "name": "from-parser"}})["user_agent"]
    assert out["name"] == "from-parser"
    assert out["os"]["name"] == "Windows"


def test_cached_and_not_shared(enricher: UserAgentEnricher) -> None:
    a, b = ua(enricher, IPHONE), ua(enricher, IPHONE)
    assert enricher.parse.cache_info().hits >= 1
    a["os"]["name"] = "changed"
    assert b["os"]["name"] == "iOS"
    assert ua(enricher, IPHONE)["os"]["name"] == "iOS"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_any_string_gives_string_fields(enricher: UserAgentEnricher, original: str) -> None:
    out = ua(enricher, original)
    assert out["original"] == original
    for key in ("name", "version"):
        assert key not in out or isinstance(out[key], str)
