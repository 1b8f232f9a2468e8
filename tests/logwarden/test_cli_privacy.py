"""``logwarden reveal``: audited re-identification from the command line, and its errors."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ingest.privacy.encrypt import Sealer, generate_key
from logwarden.cli import app

LOGWARDEN = Path(sys.executable).parent / "logwarden"
KEY = generate_key()
OTHER_KEY = generate_key()
RING_ENV = orjson.dumps({"k1": KEY}).decode()


def sealed_hit(doc_id: str, user: str = "alice") -> dict[str, Any]:
    ring = {"k1": base64.urlsafe_b64decode(KEY)}
    doc = Sealer(ring, "k1", ["user.id", "user.email"])({"user": {"id": user, "email": f"{user}@example.com"}})
    return {"_id": doc_id, "_source": doc}


def write_hits(path: Path, *hits: dict[str, Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(h) + b"\n" for h in hits))
    return path


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("LOGWARDEN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOGWARDEN_STORE_PATH", str(tmp_path / "store"))
    monkeypatch.setenv("LOGWARDEN_PRIVACY__ENCRYPTION_KEYS", RING_ENV)
    return CliRunner()


def reveal(cli: CliRunner, *args: str) -> Any:
    return cli.invoke(app, ["reveal", *args])


def test_reveals_and_audits_before_printing(cli: CliRunner, tmp_path: Path) -> None:
    hits = write_hits(tmp_path / "hits.jsonl", sealed_hit("d1"), sealed_hit("d2", "bob"))
    audit = tmp_path / "audit.jsonl"
    result = reveal(cli, str(hits), "--actor", "analyst@corp", "--reason", "INC-42", "--audit-log", str(audit))
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"id": "d1", "revealed": {"user.email": "alice@example.com", "user.id": "alice"}},
        {"id": "d2", "revealed": {"user.email": "bob@example.com", "user.id": "bob"}},
    ]
    entries = [orjson.loads(line) for line in audit.read_bytes().splitlines()]
    assert [(e["user"]["name"], e["reason"], e["document_id"]) for e in entries] == [
        ("analyst@corp", "INC-42", "d1"),
        ("analyst@corp", "INC-42", "d2"),
    ]
    assert "alice" not in audit.read_text() and "bob" not in audit.read_text()
    assert "revealed 2 document(s) for analyst@corp" in result.stderr


def test_stdin_fields_and_default_audit_log(cli: CliRunner, tmp_path: Path) -> None:
    stdin = orjson.dumps(sealed_hit("d1")).decode() + "\n"
    result = cli.invoke(app, ["reveal", "--actor", "a", "--reason", "r", "-f", "user.id"], input=stdin)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {"id": "d1", "revealed": {"user.id": "alice"}}
    entry = orjson.loads((tmp_path / "store" / "reveal-audit.jsonl").read_bytes())
    assert entry["fields"] == ["user.id"]


def test_keyring_file(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGWARDEN_PRIVACY__ENCRYPTION_KEYS")
    ring = tmp_path / "encryption-keys.json"
    ring.write_bytes(orjson.dumps({"k1": KEY}))
    hits = write_hits(tmp_path / "hits.jsonl", sealed_hit("d1"))
    result = reveal(cli, str(hits), "--actor", "a", "--reason", "r", "--keyring", str(ring))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reason", "r"], "--actor and --reason are required"),
        (["--actor", "a", "--reason", " "], "--actor and --reason are required"),
        (["--actor", "a", "--reason", "r", "missing.jsonl"], "cannot read"),
        (["--actor", "a", "--reason", "r", "--keyring", "nope.json"], "cannot read the keyring"),
    ],
)
def test_usage_errors_exit_2(cli: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    os.chdir(tmp_path)
    result = reveal(cli, *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_no_keyring_exits_2(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGWARDEN_PRIVACY__ENCRYPTION_KEYS")
    hits = write_hits(tmp_path / "hits.jsonl", sealed_hit("d1"))
    result = reveal(cli, str(hits), "--actor", "a", "--reason", "r")
    assert result.exit_code == 2
    assert "no encryption keyring" in result.stderr


def test_bad_keyring_file_never_prints_the_key(cli: CliRunner, tmp_path: Path) -> None:
    ring = tmp_path / "ring.json"
    ring.write_bytes(orjson.dumps({"k1": "c2hvcnQta2V5"}))
    result = reveal(cli, "--actor", "a", "--reason", "r", "--keyring", str(ring))
    assert result.exit_code == 2
    assert "key 'k1'" in result.stderr and "c2hvcnQta2V5" not in result.stderr


def tampered(hit: dict[str, Any]) -> dict[str, Any]:
    """One bit of the ciphertext flipped (in the decoded bytes: a base64 character may carry unused bits)."""
    privacy = hit["_source"]["logwarden"]["privacy"]
    prefix, _, blob = privacy["sealed"].rpartition(".")
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[len(raw) // 2] ^= 0x01
    privacy["sealed"] = f"{prefix}.{base64.urlsafe_b64encode(bytes(raw)).decode('ascii')}"
    return hit


@pytest.mark.parametrize(
    ("ring", "hit", "message"),
    [
        ({"k2": KEY}, sealed_hit("d1"), "key id 'k1', which is not in the keyring (key ids: k2)"),
        ({"k1": OTHER_KEY}, sealed_hit("d1"), "wrong key for key id 'k1', or the value was altered"),
        ({"k1": KEY}, tampered(sealed_hit("d1")), "wrong key for key id 'k1', or the value was altered"),
        ({"k1": KEY}, {"_id": "d1", "_source": {"user": {"id": "x"}}}, "holds no sealed values"),
    ],
)
def test_documents_that_cannot_be_opened_exit_1(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ring: dict[str, str], hit: Any, message: str
) -> None:
    monkeypatch.setenv("LOGWARDEN_PRIVACY__ENCRYPTION_KEYS", orjson.dumps(ring).decode())
    audit = tmp_path / "audit.jsonl"
    hits = write_hits(tmp_path / "hits.jsonl", hit)
    result = reveal(cli, str(hits), "--actor", "a", "--reason", "r", "--audit-log", str(audit))
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert not audit.exists()  # nothing revealed, nothing to audit


def env(**extra: str) -> dict[str, str]:
    """The environment without any LOGWARDEN_* of the caller, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("LOGWARDEN_")}, **extra}


def test_entry_point_exit_codes(tmp_path: Path) -> None:
    """The installed command, as an analyst runs it."""
    hits = write_hits(tmp_path / "hits.jsonl", sealed_hit("d1"))
    ok = subprocess.run(
        [str(LOGWARDEN), "reveal", str(hits), "--actor", "a", "--reason", "r"],
        cwd=tmp_path,
        env=env(LOGWARDEN_PRIVACY__ENCRYPTION_KEYS=RING_ENV),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert orjson.loads(ok.stdout)["revealed"]["user.id"] == "alice"
    assert (tmp_path / ".logwarden" / "reveal-audit.jsonl").exists()
    usage = subprocess.run(
        [str(LOGWARDEN), "reveal", str(hits)], cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=120
    )
    assert usage.returncode == 2
