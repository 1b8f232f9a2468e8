"""Sealing (AES-256-GCM) and audited re-identification."""

from __future__ import annotations

import base64
import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.privacy import PrivacyError, RevealError
from ingest.privacy.encrypt import (
    Sealer,
    decode_key,
    generate_key,
    jsonl_audit_log,
    open_sealed,
    reidentify,
    reveal,
    reveal_command,
)

K1, K2 = os.urandom(32), os.urandom(32)
FIELDS = ["user.id", "user.email", "logwarden.api.key_id", "event.original"]


def sealed_doc(ring: dict[str, bytes] | None = None, key_id: str = "k1", **values: Any) -> dict[str, Any]:
    doc = {"user": {"id": "alice", "email": "alice@example.com"}, "url": {"path": "/v1/x"}, **values}
    return Sealer(ring or {"k1": K1}, key_id, FIELDS)(doc)


def test_round_trip_and_format() -> None:
    doc = sealed_doc()
    sealed = doc["logwarden"]["privacy"]["sealed"]
    assert sealed.startswith("v1.k1.")
    assert doc["logwarden"]["privacy"]["sealed_key_id"] == "k1"
    assert "alice" not in sealed
    assert reveal(doc, {"k1": K1}) == {"user.email": "alice@example.com", "user.id": "alice"}
    assert doc["user"]["id"] == "alice"  # sealing copies; pseudonymization replaces later


def test_ciphertext_differs_per_call() -> None:
    a, b = sealed_doc(), sealed_doc()
    assert a["logwarden"]["privacy"]["sealed"] != b["logwarden"]["privacy"]["sealed"]
    assert reveal(a, {"k1": K1}) == reveal(b, {"k1": K1})


def test_nothing_to_seal_adds_nothing() -> None:
    assert Sealer({"k1": K1}, "k1", FIELDS)({"url": {"path": "/"}}) == {"url": {"path": "/"}}


def test_wrong_key_fails_clearly() -> None:
    with pytest.raises(RevealError, match=r"wrong key for key id 'k1', or the value was altered"):
        reveal(sealed_doc(), {"k1": K2})


def test_unknown_key_id_fails_clearly() -> None:
    with pytest.raises(RevealError, match=r"key id 'k1', which is not in the keyring \(key ids: k2\)"):
        reveal(sealed_doc(), {"k2": K2})


def test_tampering_is_detected() -> None:
    doc = sealed_doc()
    version, key_id, blob = doc["logwarden"]["privacy"]["sealed"].split(".")
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[-1] ^= 1
    with pytest.raises(RevealError, match="altered"):
        open_sealed(f"{version}.{key_id}.{base64.urlsafe_b64encode(bytes(raw)).decode()}", {"k1": K1})
    # the key id is bound to the ciphertext: relabelling it to another key that the ring holds fails
    with pytest.raises(RevealError, match="altered"):
        open_sealed(f"{version}.k2.{blob}", {"k1": K1, "k2": K1})


@pytest.mark.parametrize("value", ["", "v2.k1.abc", "v1..abc", "v1.k1.", "v1.k1.!!!", "v1.k1.YWJj"])
def test_malformed_sealed_values(value: str) -> None:
    with pytest.raises(RevealError):
        open_sealed(value, {"k1": K1})


def test_document_without_sealed_values() -> None:
    with pytest.raises(RevealError, match="no sealed values"):
        reveal({"user": {"id": "x"}}, {"k1": K1})


def test_flattened_documents_and_key_rotation() -> None:
    old = sealed_doc({"k1": K1}, "k1")
    new = sealed_doc({"k1": K1, "k2": K2}, "k2")
    ring = {"k1": K1, "k2": K2}
    assert new["logwarden"]["privacy"]["sealed_key_id"] == "k2"
    flat = {"logwarden.privacy.sealed": old["logwarden"]["privacy"]["sealed"]}
    assert reveal(flat, ring) == reveal(new, ring)


def test_remove_fields_keeps_them_only_sealed() -> None:
    sealer = Sealer({"k1": K1}, "k1", FIELDS, remove_fields=["event.original"])
    doc = sealer({"event": {"original": "raw line with alice", "kind": "event"}, "user": {"id": "alice"}})
    assert doc["event"] == {"kind": "event"}
    assert reveal(doc, {"k1": K1})["event.original"] == "raw line with alice"


@pytest.mark.parametrize(("ring", "key_id"), [({"k1": K1}, "k2"), ({"k_1": K1}, "k_1"), ({"k1": b"short"}, "k1")])
def test_bad_sealer_config(ring: dict[str, bytes], key_id: str) -> None:
    with pytest.raises(ValueError):
        Sealer(ring, key_id, FIELDS)


def test_repr_never_shows_the_key() -> None:
    assert K1.hex() not in repr(Sealer({"k1": K1}, "k1", FIELDS))


def test_keys_encode_and_decode() -> None:
    key = generate_key()
    assert len(decode_key(key)) == 32
    raw = decode_key(key)
    assert decode_key(base64.b64encode(raw).decode()) == raw
    assert decode_key(raw.hex()) == raw
    assert decode_key(key.rstrip("=")) == raw
    for bad in ["", "not base64!", base64.b64encode(b"x" * 16).decode()]:
        with pytest.raises(ValueError):
            decode_key(bad)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(FIELDS), st.text(max_size=50) | st.lists(st.text(max_size=10), max_size=3), min_size=1
    )
)
def test_any_values_round_trip(values: dict[str, Any]) -> None:
    doc: dict[str, Any] = {}
    for name, value in values.items():
        node = doc
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    expected = {k: v for k, v in values.items() if v is not None}
    assert reveal(Sealer({"k1": K1}, "k1", FIELDS)(doc), {"k1": K1}) == expected


# --- audited re-identification --------------------------------------------------------------------------


def test_reidentify_audits_before_revealing() -> None:
    audit: list[dict[str, Any]] = []
    hits = [{"_id": "d1", "_source": sealed_doc()}, {"id": "d2", "doc": sealed_doc()}, sealed_doc()]
    now = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    out = list(
        reidentify(
            hits,
            {"k1": K1},
            actor="analyst@corp",
            reason="INC-42",
            audit=audit.append,
            fields=["user.id"],
            now=lambda: now,
        )
    )
    assert out == [
        {"id": "d1", "revealed": {"user.id": "alice"}},
        {"id": "d2", "revealed": {"user.id": "alice"}},
        {"id": None, "revealed": {"user.id": "alice"}},
    ]
    assert audit[0] == {
        "@timestamp": "2026-11-02T08:00:00.000Z",
        "event": {"action": "reidentify", "kind": "event"},
        "user": {"name": "analyst@corp"},
        "reason": "INC-42",
        "document_id": "d1",
        "fields": ["user.id"],
    }
    assert "alice" not in orjson.dumps(audit).decode()


def test_reidentify_requires_actor_and_reason() -> None:
    for actor, reason in [("", "why"), ("who", " ")]:
        with pytest.raises(PrivacyError, match="actor and a reason"):
            list(reidentify([sealed_doc()], {"k1": K1}, actor=actor, reason=reason, audit=lambda e: None))


def test_failed_audit_reveals_nothing() -> None:
    def broken(entry: dict[str, Any]) -> None:
        raise OSError("disk full")

    gen = reidentify([sealed_doc()], {"k1": K1}, actor="a", reason="r", audit=broken)
    with pytest.raises(OSError):
        next(gen)


def test_reveal_command_writes_lines_and_the_audit_log(tmp_path: Path) -> None:
    lines = [
        orjson.dumps({"_id": "d1", "_source": sealed_doc()}),
        b"",
        orjson.dumps({"_id": "d2", "_source": sealed_doc()}),
    ]
    out = io.StringIO()
    log = tmp_path / "audit" / "reveal.jsonl"
    assert reveal_command(lines, out, {"k1": K1}, actor="a", reason="r", audit_log=log) == 2
    revealed = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in revealed] == ["d1", "d2"]
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert [e["document_id"] for e in entries] == ["d1", "d2"]
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    jsonl_audit_log(log)({"x": 1})
    assert len(log.read_bytes().splitlines()) == 3


def test_reveal_command_rejects_non_json(tmp_path: Path) -> None:
    with pytest.raises(RevealError, match="line 2: not JSON"):
        reveal_command([b"", b"{nope"], io.StringIO(), {"k1": K1}, actor="a", reason="r", audit_log=tmp_path / "a")
