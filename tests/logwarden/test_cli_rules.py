"""``logwarden rules lint``, ``logwarden rules test`` and ``logwarden detect`` (logwarden/cli_rules.py)."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import islice
from pathlib import Path

import orjson
import pytest
import typer
import yaml
from typer.testing import CliRunner

from ingest.pipeline import Normalizer
from ingest.records import NormalizedEvent, Record
from ingest.sources.synthetic import generate_api_access, to_json_line
from logwarden.cli_rules import register

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"

BROKEN = """\
title: Broken
id: 12345678-1234-4123-8123-123456789012
logsource: {product: logwarden, service: api_access}
detection:
  s: {user.id|nosuchmodifier: x}
  condition: s
level: low
"""


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """logwarden (test app)."""

    register(app)
    return app


runner = CliRunner()


def test_lint_of_the_shipped_rules(app: typer.Typer) -> None:
    result = runner.invoke(app, ["rules", "lint", str(RULES), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["failed"] == 0 and report["errors"] == []
    assert report["loaded"] >= 30  # the shipped rule set (issue: at least 30 rules)


def test_lint_reports_every_problem_and_fails_on_errors(app: typer.Typer, tmp_path: Path) -> None:
    (tmp_path / "impact_broken.yml").write_text(BROKEN + "---\n" + BROKEN.replace("Broken", "Broken again"))
    result = runner.invoke(app, ["rules", "lint", str(tmp_path), "--json"])
    assert result.exit_code == 1
    report = orjson.loads(result.stdout)
    assert report["loaded"] == 0 and report["failed"] == 2
    lines = sorted(e["line"] for e in report["errors"] if e["severity"] == "error")
    assert lines == [1, 9]
    assert any("no test events" in e["message"] for e in report["errors"])
    text = runner.invoke(app, ["rules", "lint", str(tmp_path)])
    assert f"{tmp_path / 'impact_broken.yml'}:9: error:" in text.stdout


def test_lint_strict_fails_on_warnings(app: typer.Typer, tmp_path: Path) -> None:
    ok = BROKEN.replace("|nosuchmodifier", "")
    (tmp_path / "impact_ok.yml").write_text(ok)
    assert runner.invoke(app, ["rules", "lint", str(tmp_path)]).exit_code == 0  # only a warning: no tests
    assert runner.invoke(app, ["rules", "lint", str(tmp_path), "--strict"]).exit_code == 1


def test_rules_test_passes_for_the_shipped_rules_and_fails_on_a_wrong_expectation(
    app: typer.Typer, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["rules", "test", str(RULES)])
    assert result.exit_code == 0, result.output
    assert re.search(r"\b\d{2,} cases, 0 failed", result.output), result.output
    for path in RULES.glob("*/*.yml"):
        target = tmp_path / path.relative_to(RULES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    tests = next(tmp_path.rglob("*.tests.yml"))
    data = yaml.safe_load(tests.read_text())
    data["tests"][1]["expect"] = {"api_login_brute_force": 1}
    tests.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["rules", "test", str(tmp_path)])
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "expected 1 detections, got 0" in result.stdout


def synthetic_jsonl(path: Path, minutes: int = 30) -> list[NormalizedEvent]:
    stream = generate_api_access(seed=3, duration=timedelta(minutes=minutes), scenarios=["brute_force"])
    events = []
    for raw in islice(stream, 100_000):
        result = Normalizer().normalize(Record("api_access", to_json_line(raw)))
        assert isinstance(result, NormalizedEvent)
        events.append(result)
    path.write_bytes(b"".join(orjson.dumps(e.doc) + b"\n" for e in events) + b"not json\n")
    return events


def test_detect_prints_detections_as_json_lines_and_stats(app: typer.Typer, tmp_path: Path) -> None:
    events = synthetic_jsonl(tmp_path / "events.jsonl")
    result = runner.invoke(
        app, ["detect", "--rules", str(RULES), "--events", str(tmp_path / "events.jsonl"), "--stats"]
    )
    assert result.exit_code == 0, result.output
    detections = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [d["rule_name"] for d in detections] == ["api_login_brute_force"]
    (det,) = detections
    assert det["event_count"] >= 10 and det["suppressed_count"] == 0 and det["risk_score"] == 73.0
    assert det["tags"] == ["attack.credential-access", "attack.t1110.001"]
    assert "1 lines are not JSON objects" in result.stderr
    assert "api_failed_login" in result.stderr and "alerts/day" in result.stderr
    assert f"events {len(events)}" in result.stderr


def test_detect_reads_stdin(app: typer.Typer, tmp_path: Path) -> None:
    synthetic_jsonl(tmp_path / "events.jsonl", minutes=30)
    data = (tmp_path / "events.jsonl").read_bytes()
    result = runner.invoke(app, ["detect", "--rules", str(RULES), "--events", "-"], input=data)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
