"""Secret redaction: every kind, anywhere in a document; generated secrets never survive."""

from __future__ import annotations

import string
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.privacy.redact import TRIGGERS, Redactor, might_hold_secret, redact_text

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        ("/v1/files?api_key=sk-abc123&limit=10", "/v1/files?api_key=[REDACTED:api_key]&limit=10", {"api_key"}),
        ("?key=AIzaXYZ&x=1", "?key=[REDACTED:api_key]&x=1", {"api_key"}),
        ("token=abc&access_token=def", "token=[REDACTED:token]&access_token=[REDACTED:token]", {"token"}),
        (
            "?password=hunter2&passwd=x&pwd=y",
            "?password=[REDACTED:password]&passwd=[REDACTED:password]&pwd=[REDACTED:password]",
            {"password"},
        ),
        ('{"password": "hunter 2", "user": "bob"}', '{"password": [REDACTED:password], "user": "bob"}', {"password"}),
        ("login failed, password: hunter2", "login failed, password: [REDACTED:password]", {"password"}),
        (
            "Authorization: Bearer abc.def-ghi",
            "Authorization: Bearer [REDACTED:authorization]",
            {"authorization", "bearer_token"},
        ),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [REDACTED:authorization]", {"authorization"}),
        ("sent Bearer abcdefgh12345678 upstream", "sent Bearer [REDACTED:bearer_token] upstream", {"bearer_token"}),
        (f"cookie {JWT} end", "cookie [REDACTED:jwt] end", {"jwt"}),
        ("key sk-proj-AbCdEfGhIjKlMnOpQrSt used", "key [REDACTED:api_key] used", {"api_key"}),
        ("stripe sk_live_0123456789abcdefABCD", "stripe [REDACTED:api_key]", {"api_key"}),
        ("gh ghp_" + "a" * 36, "gh [REDACTED:api_key]", {"api_key"}),
        ("hf hf_" + "B" * 34, "hf [REDACTED:api_key]", {"api_key"}),
        (
            "id AKIAIOSFODNN7EXAMPLE and ASIAIOSFODNN7EXAMPLE",
            "id [REDACTED:aws_access_key_id] and [REDACTED:aws_access_key_id]",
            {"aws_access_key_id"},
        ),
        (f"aws_secret_access_key={AWS_SECRET}", "aws_secret_access_key=[REDACTED:aws_secret_key]", {"aws_secret_key"}),
        (f'"SecretAccessKey": "{AWS_SECRET}"', '"SecretAccessKey": [REDACTED:aws_secret_key]', {"aws_secret_key"}),
        ("https://bob:s3cr3t@example.com/x", "https://bob:[REDACTED:url_password]@example.com/x", {"url_password"}),
        ("next=%2Fcb%3Ftoken%3Dabc123%26x%3D1", "next=%2Fcb%3Ftoken%3D[REDACTED:token]%26x%3D1", {"token"}),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- ok",
            "[REDACTED:private_key] ok",
            {"private_key"},
        ),
        (
            "X-Amz-Signature=0a1b2c&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F2026",
            "X-Amz-Signature=[REDACTED:signature]&X-Amz-Credential=[REDACTED:aws_access_key_id]",
            {"signature", "secret", "aws_access_key_id"},
        ),
    ],
)
def test_kinds(text: str, expected: str, kinds: set[str]) -> None:
    assert redact_text(text) == (expected, frozenset(kinds))


@pytest.mark.parametrize(
    "text",
    [
        "/v1/chat/completions",
        "limit=20&order=desc&after=file_abc",
        "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
        "2001:db8::1",
        "https://console.example.com/settings/models",
        "task-0123456789abcdefghij",
        "api_key",
        "tokens: 1180, max_tokens=200",
        "key_id=key_Q3v9LmP0sT7xY2aB",
        "bearer tokens are described in RFC 6750",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact_text(text) == (text, frozenset())


def test_might_hold_secret_is_a_sound_precheck() -> None:
    assert not might_hold_secret("/v1/models")
    assert might_hold_secret("a=b")


def test_document_every_string_nested_and_in_lists() -> None:
    doc: dict[str, Any] = {
        "url": {"query": "token=abc"},
        "message": f"jwt {JWT}",
        "tags": ["ok", "AKIAIOSFODNN7EXAMPLE"],
        "deep": {"er": [{"x": "password=1"}]},  # not catalogued, still scanned
        "http": {"response": {"status_code": 200}},
    }
    out = Redactor()(doc)
    assert out["url"]["query"] == "token=[REDACTED:token]"
    assert out["message"] == "jwt [REDACTED:jwt]"
    assert out["tags"] == ["ok", "[REDACTED:aws_access_key_id]"]
    assert out["deep"]["er"][0]["x"] == "password=[REDACTED:password]"
    assert out["logwarden"]["privacy"]["redacted"] == ["aws_access_key_id", "jwt", "password", "token"]


def test_clean_document_is_unchanged() -> None:
    doc = {"url": {"path": "/v1/models"}, "user_agent": {"original": "curl/8.5.0"}}
    assert Redactor()(doc) == {"url": {"path": "/v1/models"}, "user_agent": {"original": "curl/8.5.0"}}


def test_skip_fields_and_secret_fields() -> None:
    doc = {"user": {"id": "token=abc"}, "url": {"query": "token=abc"}, "x": {"password": "plain"}}
    out = Redactor(skip_fields=["user.id"], secret_fields=["x.password"])(doc)
    assert out["user"]["id"] == "token=abc"
    assert out["url"]["query"] == "token=[REDACTED:token]"
    assert out["x"]["password"] == "[REDACTED:secret]"
    assert out["logwarden"]["privacy"]["redacted"] == ["secret", "token"]


def test_kinds_merge_with_existing() -> None:
    doc = {"message": "token=a", "logwarden": {"privacy": {"redacted": ["jwt"]}}}
    assert Redactor()(doc)["logwarden"]["privacy"]["redacted"] == ["jwt", "token"]


# --- properties -------------------------------------------------------------------------------------------

ALNUM = string.ascii_letters + string.digits
_delims = st.sampled_from([" ", "\n", "/", "?", "&", "(", ",", "'", '"', "<", ">", ";", "\t"])
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


def _secret(draw: st.DrawFn) -> tuple[str, str]:
    """(text containing the secret, the secret value that must disappear)."""
    kind = draw(st.sampled_from(["kv", "bearer", "jwt", "sk", "aws", "gh", "auth"]))
    body = draw(st.text(alphabet=ALNUM, min_size=20, max_size=40))
    if kind == "kv":
        name = draw(
            st.sampled_from(
                [
                    "password",
                    "passwd",
                    "pwd",
                    "token",
                    "access_token",
                    "api_key",
                    "key",
                    "client_secret",
                    "aws_secret_access_key",
                    "X-Api-Key",
                    "Password",
                ]
            )
        )
        sep = draw(st.sampled_from(["=", ": ", ":", " = ", '": "', "%3D"]))
        value = draw(st.text(alphabet=ALNUM + "!$*+-./@^_~%", min_size=6, max_size=30))
        quote = '"' if sep == '": "' else ""
        return f"{quote}{name}{sep}{value}{quote}", value
    if kind == "bearer":
        return f"Bearer {body}", body
    if kind == "auth":
        return f"Authorization: {draw(st.sampled_from(['Bearer', 'Basic', 'token']))} {body}", body
    if kind == "jwt":
        return f"eyJ{body}.eyJ{body[::-1]}.{body[:10]}", f"eyJ{body}"
    if kind == "sk":
        return f"sk-proj-{body}", body
    if kind == "gh":
        return f"ghp_{body}{'A' * 16}", body
    aws = "AKIA" + draw(st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16))
    return aws, aws


secrets_in_text = st.composite(
    lambda draw: (lambda s: (draw(_text) + draw(_delims) + s[0] + draw(_delims) + draw(_text), s[1]))(_secret(draw))
)


@settings(max_examples=400, deadline=None)
@given(secrets_in_text())
def test_generated_secrets_never_survive(case: tuple[str, str]) -> None:
    text, secret = case
    before, after = text.split(secret, 1)[0], text.split(secret, 1)[1]
    redacted, kinds = redact_text(text)
    # the secret is gone, unless the surrounding random text happens to repeat it
    assert secret not in redacted or secret in before + after
    assert kinds


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["message", "url", "x", "tags"]), secrets_in_text(), min_size=1))
def test_generated_secrets_never_reach_the_serialized_document(cases: dict[str, tuple[str, str]]) -> None:
    doc = {key: {"nested": [text]} for key, (text, _) in cases.items()}
    out = orjson.dumps(Redactor()(doc)).decode()
    rest = "\n".join(text.replace(secret, "", 1) for text, secret in cases.values())
    for _, secret in cases.values():
        if secret not in rest:  # unless the random text around repeats it
            assert orjson.dumps(secret).decode()[1:-1] not in out


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_text_without_trigger_is_returned_unchanged(text: str) -> None:
    if not might_hold_secret(text):
        assert redact_text(text) == (text, frozenset())
    redacted, _ = redact_text(text)
    assert isinstance(redacted, str)


# --- fast paths give exactly the results of the general path -----------------------------------------------

_trigger_text = st.lists(
    st.one_of(st.sampled_from([*TRIGGERS, "AKI", "ey", "%", "3", "-----BEGI", "github_pa"]), st.characters()),
    max_size=12,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), _trigger_text))
def test_trigger_regex_is_exactly_the_substring_test(text: str) -> None:
    assert might_hold_secret(text) == any(trigger in text for trigger in TRIGGERS)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), secrets_in_text().map(lambda case: case[0])), max_size=30))
def test_redactor_caches_return_what_redact_text_returns(texts: list[str]) -> None:
    redactor = Redactor(cache_size=4)  # tiny: the clean set is emptied and refilled along the way
    for text in [*texts, *texts]:
        assert redactor.redact(text) == redact_text(text)
    doc = {"a": {"b": list(texts)}, "c": dict(enumerate(texts))}
    expected = {
        "a": {"b": [redact_text(t)[0] for t in texts]},
        "c": {i: redact_text(t)[0] for i, t in enumerate(texts)},
    }
    assert {k: v for k, v in redactor(doc).items() if k != "logwarden"} == expected
