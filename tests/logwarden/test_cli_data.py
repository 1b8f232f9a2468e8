"""``logwarden normalize`` and the retention rule (no services needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from logwarden.retention import expired_indices

GOOD = b'{"timestamp":"2026-11-02T08:00:00.000Z","method":"GET","path":"/v1/models","status":200,"user_id":"u1"}'


KEY = "test-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def normalize(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGWARDEN_")}
    env["LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY"] = KEY
    return subprocess.run(
        [sys.executable, "-m", "logwarden", "normalize", *args], input=stdin, capture_output=True, timeout=60, env=env
    )


def test_normalize_prints_ecs_lines_and_exits_0_when_all_parse(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(GOOD + b"\n\n" + GOOD.replace(b"u1", b"u2") + b"\r\n")
    result = normalize("--source", "api_access", str(path))
    assert result.returncode == 0, result.stderr
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    pseudonyms = [d["user"]["id"] for d in docs]
    assert all(p.startswith("ps_") for p in pseudonyms) and len(set(pseudonyms)) == 2  # identifiers never in clear
    assert b"u1" not in result.stdout
    assert all(d["event"]["dataset"] == "logwarden.api_access" for d in docs)


def test_normalize_reads_stdin_and_exits_3_with_dead_letters_on_stderr() -> None:
    result = normalize("--source", "api_access", "-", stdin=GOOD + b"\nnot json\n")
    assert result.returncode == 3
    assert len(result.stdout.splitlines()) == 1
    letters = [json.loads(line) for line in result.stderr.splitlines() if line.startswith(b"{")]
    assert [(letter["reason"], letter["offset"], letter["raw_text"]) for letter in letters] == [
        ("invalid_json", 2, "not json")
    ]


def test_normalize_usage_errors_exit_2(tmp_path: Path) -> None:
    unknown = normalize("--source", "nope", "-")
    assert unknown.returncode == 2
    assert b"--source" in unknown.stderr and b"Traceback" not in unknown.stderr
    missing = normalize("--source", "api_access", str(tmp_path / "absent.jsonl"))
    assert missing.returncode == 2 and b"absent.jsonl" in missing.stderr


def test_retention_picks_only_dated_event_indices_of_the_prefix_before_the_cutoff() -> None:
    names = [
        "lw-events-2026.10.30",
        "lw-events-2026.10.31",
        "lw-events-2026.11.01",
        "lw-events-2026.13.01",  # not a date: never deleted
        "lw-alerts",
        "other-events-2020.01.01",
        "lw-events-2020.01.01-restored",
    ]
    assert expired_indices(names, "lw", date(2026, 11, 1)) == ["lw-events-2026.10.30", "lw-events-2026.10.31"]
    assert expired_indices(names, "lw", date(2020, 1, 1)) == []
