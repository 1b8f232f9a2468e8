"""``logwarden models ...`` end to end on generated data: synth, train, score, evaluate, promote, list."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from logwarden.cli_models import register

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    main = typer.Typer()

    @main.command()
    def version() -> None:  # a second command, so that "models" stays a sub-command
        typer.echo("0")

    register(main)
    return main


def invoke(app: typer.Typer, *args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_train_score_evaluate_promote(app: typer.Typer, tmp_path: Path) -> None:
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    invoke(app, "models", "synth", "--out", str(train), "--minutes", "20", "--seed", "1")
    invoke(app, "models", "synth", "--out", str(test), "--minutes", "10", "--seed", "1", "--start",
           "2026-11-02T08:20:00Z", "--scenario", "payload_attack")  # fmt: skip
    registry = tmp_path / "models"
    out = invoke(app, "models", "train", "--preset", "request-content", "--data", str(train), "--out", str(registry))
    version_dir = Path(out.strip().splitlines()[-1])
    assert version_dir == registry / "request-content" / "v1"
    meta = orjson.loads((version_dir / "metadata.json").read_bytes())
    assert meta["preset"] == "request-content" and len(meta["data_hash"]) == 64

    lines = invoke(app, "models", "score", "--model", str(registry / "request-content"), "--data", str(test))
    records = [orjson.loads(line) for line in lines.splitlines()]
    inputs = test.read_bytes().splitlines()
    assert len(records) == len(inputs)
    assert all(0 <= r["score"] <= 100 and isinstance(r["anomalous"], bool) and r["explanation"] for r in records)
    attack = [r for r, line in zip(records, inputs, strict=True) if b"payload_attack" in line]
    assert attack and sum(r["anomalous"] for r in attack) >= len(attack) // 2

    report_dir = tmp_path / "report"
    out = invoke(app, "models", "evaluate", "--model", str(version_dir), "--data", str(test), "--labels",
                 "labels.scenario", "--report", str(report_dir))  # fmt: skip
    report = orjson.loads(out)
    assert report["by_type"]["payload_attack"]["roc_auc"] > 0.9 and "alerts_per_day" in report
    assert (report_dir / "report.html").is_file() and (report_dir / "pr_curve.png").is_file()

    invoke(app, "models", "train", "--preset", "request-content", "--data", str(train), "--out", str(registry))
    invoke(app, "models", "promote", "--model", str(registry / "request-content"), "--version", "v1")
    invoke(app, "models", "promote", "--model", str(registry / "request-content"), "--version", "v2", "--shadow")
    listing = orjson.loads(invoke(app, "models", "list", str(registry)))
    assert listing == {"name": "request-content", "versions": ["v1", "v2"], "current": "v1", "shadow": "v2"}


def test_bad_inputs_are_configuration_errors(app: typer.Typer, tmp_path: Path) -> None:
    from logwarden.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown preset"):
        runner.invoke(app, ["models", "train", "--preset", "x", "--data", "d", "--out", "o"], catch_exceptions=False)
    with pytest.raises(ConfigError, match="--data"):
        runner.invoke(app, ["models", "train", "--preset", "request-content", "--out", str(tmp_path)],
                      catch_exceptions=False)  # fmt: skip
    with pytest.raises(ConfigError, match="neither a model directory"):
        runner.invoke(app, ["models", "score", "--model", str(tmp_path), "--data", "x"], catch_exceptions=False)
