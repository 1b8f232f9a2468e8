"""Masking of e-mail addresses, phone numbers and card numbers in free-text fields."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.privacy.mask import Masker, luhn_valid, mask_text


def luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        ("from alice@example.com", "from [MASKED:email]", {"email"}),
        ("/v1/users/bob.smith%40corp.example.org/keys", "/v1/users/[MASKED:email]/keys", {"email"}),
        ("email=a+tag@sub.example.co.uk&x=1", "email=[MASKED:email]&x=1", {"email"}),
        ("call +1 (555) 123-4567 now", "call [MASKED:phone] now", {"phone"}),
        ("tel:+4930123456", "tel:[MASKED:phone]", {"phone"}),
        ("ring 555-123-4567 or 555.123.4567", "ring [MASKED:phone] or [MASKED:phone]", {"phone"}),
        ("(555) 123-4567", "[MASKED:phone]", {"phone"}),
        ("Berlin 030 1234567, London 020 7946 0958", "Berlin [MASKED:phone], London [MASKED:phone]", {"phone"}),
        ("0049 30 1234567", "[MASKED:phone]", {"phone"}),
        ("card 4111 1111 1111 1111 exp", "card [MASKED:card] exp", {"card"}),
        ("pan=4111-1111-1111-1111", "pan=[MASKED:card]", {"card"}),
        ("amex 378282246310005.", "amex [MASKED:card].", {"card"}),
        ("n=12 4111111111111111", "n=12 [MASKED:card]", {"card"}),
    ],
)
def test_kinds(text: str, expected: str, kinds: set[str]) -> None:
    assert mask_text(text) == (expected, frozenset(kinds))


@pytest.mark.parametrize(
    "text",
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0.6723.116 Safari/537.36",
        "from 203.0.113.50 and 192.168.100.200 and 2001:db8::1",
        "at 2026-11-02 08:21:25 and 2026-11-02T08:21:25.466Z",
        "4111 1111 1111 1112",  # fails the Luhn check
        "req_0a1b2c3d4e5f60718293a4b5",
        "bytes=1730534400 latency 2381.5 tokens 1180",
        "version 1.54.3 build 20261102",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "@timestamp and @mention",
    ],
)
def test_no_false_positives(text: str) -> None:
    assert mask_text(text) == (text, frozenset())


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_masker_touches_only_its_fields_and_records_kinds() -> None:
    doc = {
        "message": "mail a@b.example",
        "url": {"query": "p=+49 30 1234567", "path": "/v1/x"},
        "user": {"email": "a@b.example"},
        "tags": ["c@d.example"],
        "logwarden": {"audit": {"metadata": {"note": "card 4111 1111 1111 1111"}}},
    }
    out = Masker(["message", "url.query", "url.path", "tags", "logwarden.audit.metadata"])(doc)
    assert out["message"] == "mail [MASKED:email]"
    assert out["url"] == {"query": "p=[MASKED:phone]", "path": "/v1/x"}
    assert out["user"]["email"] == "a@b.example"  # not a mask field (pseudonymized instead)
    assert out["tags"] == ["[MASKED:email]"]
    assert out["logwarden"]["audit"]["metadata"] == {"note": "card [MASKED:card]"}
    assert out["logwarden"]["privacy"]["masked"] == ["card", "email", "phone"]


def test_masker_clean_document_unchanged_and_cached() -> None:
    masker = Masker(["message"])
    doc = {"message": "nothing here"}
    assert masker(dict(doc)) == doc
    masker({"message": "nothing here"})
    assert masker._mask.cache_info().hits >= 1


# --- properties -------------------------------------------------------------------------------------------

_filler = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=25)
_sep = st.sampled_from([" ", "\n", ", ", " (", "=", ": ", "/", "; "])


@st.composite
def cards(draw: st.DrawFn) -> tuple[str, str]:
    """(formatted card number, its digits)."""
    length = draw(st.integers(13, 19))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1, max_size=length - 1))
    digits = luhn_complete(body)
    style = draw(st.sampled_from(["plain", "4s", "4d", "random"]))
    if style == "plain":
        return digits, digits
    if style in ("4s", "4d"):
        sep = " " if style == "4s" else "-"
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4)), digits
    cuts = sorted(draw(st.sets(st.integers(1, length - 1), max_size=5)))
    parts = [digits[i:j] for i, j in zip([0, *cuts], [*cuts, length], strict=True)]
    return "".join(
        p + (draw(st.sampled_from([" ", "-"])) if k < len(parts) - 1 else "") for k, p in enumerate(parts)
    ), digits


def _no_digit_edges(text: str) -> bool:
    return not text or not text[-1].isdigit()


@settings(max_examples=400, deadline=None)
@given(_filler, _sep, cards(), _sep, _filler)
def test_no_valid_card_survives(before: str, sep1: str, card: tuple[str, str], sep2: str, after: str) -> None:
    formatted, digits = card
    text = before + sep1 + formatted + sep2 + after
    masked, _ = mask_text(text)
    assert formatted not in masked
    # nor any Luhn-valid run of 13-19 digits made of the card's digits
    runs = re.findall(r"\d(?:[ -]?\d)*", masked)
    assert not any(digits in re.sub(r"[ -]", "", run) for run in runs)


@settings(max_examples=400, deadline=None)
@given(_filler, _sep, st.emails(), _sep, _filler)
def test_no_email_survives(before: str, sep1: str, email: str, sep2: str, after: str) -> None:
    masked, kinds = mask_text(before + sep1 + email + sep2 + after)
    assert email not in masked
    assert "email" in kinds


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"\+[1-9][0-9]{1,2}( [0-9]{2,4}){2,4}", fullmatch=True), _sep, _filler)
def test_international_phone_numbers_are_masked(phone: str, sep: str, after: str) -> None:
    if sum(c.isdigit() for c in phone) >= 8:
        assert phone not in mask_text("tel" + sep + phone + " " + after)[0]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_masking_is_idempotent(text: str) -> None:
    once, _ = mask_text(text)
    assert mask_text(once)[0] == once
