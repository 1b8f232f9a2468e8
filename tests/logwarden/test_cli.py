"""The ``logwarden`` command as users run it: the installed entry point in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

LOGWARDEN = Path(sys.executable).parent / "logwarden"
SECRET = "hunter2-very-secret"
PSEUDONYMIZATION_KEY = "test-key-0123456789-abcdefghijklmnopqrstuvwxyz"
UNSET = "\x00unset"  # pass as a value to drop a variable from the environment


def env(**extra: str) -> dict[str, str]:
    """The environment without any LOGWARDEN_* of the caller, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("LOGWARDEN_")}
    base["LOGWARDEN_METRICS_PORT"] = "0"  # never bind the default port in tests
    base["LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY"] = PSEUDONYMIZATION_KEY
    base.update(extra)
    return {k: v for k, v in base.items() if v != UNSET}


def start(args: list[str], cwd: Path, **extra: str) -> subprocess.Popen[str]:
    assert LOGWARDEN.is_file(), f"the logwarden entry point is not installed next to {sys.executable}"
    return subprocess.Popen(
        [str(LOGWARDEN), *args], cwd=cwd, env=env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    proc = start(args, cwd, **extra)
    out, err = proc.communicate(timeout=400)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def last_json_line(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{result.stderr}"
    summary = orjson.loads(lines[-1])
    assert isinstance(summary, dict)
    return summary


def free_port() -> int:
    """A port nothing listens on (bound and closed a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_json_summary_and_same_seed_same_result(tmp_path: Path) -> None:
    # two stores have two pseudonymization keys: the rules give the same alerts, the models' distinct-count
    # sketches hash other values (so --no-ml here; the ML test below checks one store reruns identically)
    args = ["demo", "--json", "--minutes", "5", "--seed", "11", "--no-ml"]
    first = start([*args, "--store", str(tmp_path / "a")], tmp_path)
    second = start([*args, "--store", str(tmp_path / "b")], tmp_path)
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=400)
        results.append(last_json_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err)))
    a, b = results
    assert {"events", "alerts", "alerts_by_rule", "dead_letters", "store"} <= set(a)
    assert a["events"] > 0
    assert a["dead_letters"] == 3
    assert a["alerts"] == sum(a["alerts_by_rule"].values())
    assert a["store"] == str(tmp_path / "a")
    assert (tmp_path / "a" / "logwarden.duckdb").is_file()
    assert len((tmp_path / "a" / "dead-letters.jsonl").read_bytes().splitlines()) == 3
    a.pop("store"), b.pop("store")
    assert a == b


def test_demo_runs_the_ml_models_it_trained_and_reuses_them(tmp_path: Path) -> None:
    args = ["demo", "--json", "--minutes", "40", "--scenario", "credential_stuffing", "--store", str(tmp_path)]
    first = run(args, tmp_path)
    summary = last_json_line(first)
    assert "trained now" in first.stderr
    assert summary["alerts_by_rule"].get("ml_entity_behaviour", 0) >= 1, summary
    # the accounts the stuffing address tried share its campaign: far fewer campaigns than alerts
    assert (
        1 <= summary["campaigns_by_rule"]["ml_entity_behaviour"] * 3 <= summary["alerts_by_rule"]["ml_entity_behaviour"]
    )
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["entity-behaviour", "request-content"]
    again = run(args, tmp_path)
    assert "reused" in again.stderr
    assert last_json_line(again)["alerts_by_rule"] == summary["alerts_by_rule"]
    plain = last_json_line(run([*args, "--no-ml"], tmp_path))
    assert not any(rule.startswith("ml_") for rule in plain["alerts_by_rule"])


def test_demo_brute_force_scenario_raises_the_brute_force_alert(tmp_path: Path) -> None:
    result = run(["demo", "--json", "--minutes", "20", "--scenario", "brute_force", "--store", str(tmp_path)], tmp_path)
    summary = last_json_line(result)
    assert summary["alerts_by_rule"].get("api_login_brute_force", 0) >= 1
    assert summary["dead_letters"] == 3


def test_run_with_elasticsearch_down_fails_with_one_clear_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(["run", "--until-idle", "1"], tmp_path, LOGWARDEN_ELASTICSEARCH_URL=url)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    naming = [line for line in result.stderr.splitlines() if "LOGWARDEN_ELASTICSEARCH_URL" in line]
    assert len(naming) == 1, result.stderr
    assert url in naming[0]


def test_config_bad_metrics_port_exits_2_naming_the_setting(tmp_path: Path) -> None:
    result = run(["config"], tmp_path, LOGWARDEN_METRICS_PORT="70000")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert "LOGWARDEN_METRICS_PORT" in line
    assert result.stdout == ""


def test_config_masks_the_password(tmp_path: Path) -> None:
    result = run(
        ["config"],
        tmp_path,
        LOGWARDEN_ELASTICSEARCH_USERNAME="elastic",
        LOGWARDEN_ELASTICSEARCH_PASSWORD=SECRET,
        LOGWARDEN_BATCH_SIZE="42",
    )
    assert result.returncode == 0, result.stderr
    shown = orjson.loads(result.stdout)
    assert shown["elasticsearch_password"] == "**********"
    assert shown["elasticsearch_username"] == "elastic"
    assert shown["batch_size"] == 42
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("content", ["batch_size: [1\n", "- a list\n"])
def test_config_file_that_is_not_a_mapping_exits_2(tmp_path: Path, content: str) -> None:
    path = tmp_path / "logwarden.yml"
    path.write_text(content, encoding="utf-8")
    result = run(["config", "--config", str(path)], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "LOGWARDEN_CONFIG" in result.stderr


def test_version(tmp_path: Path) -> None:
    from logwarden import __version__

    result = run(["version"], tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, __version__)


def test_run_without_a_pseudonymization_key_refuses_to_start(tmp_path: Path) -> None:
    result = run(["run"], tmp_path, LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY=UNSET)
    assert result.returncode == 2
    assert "LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY" in result.stderr and "Traceback" not in result.stderr


def test_privacy_can_be_switched_off_explicitly_but_not_by_omission(tmp_path: Path) -> None:
    line = tmp_path / "one.jsonl"
    line.write_text('{"timestamp":"2026-11-02T08:00:00Z","method":"GET","path":"/","status":200,"user_id":"u-7"}\n')
    refused = run(
        ["normalize", "--source", "api_access", str(line)], tmp_path, LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY=UNSET
    )
    assert refused.returncode == 2 and "LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY" in refused.stderr
    off = run(
        ["normalize", "--source", "api_access", str(line)],
        tmp_path,
        LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY=UNSET,
        LOGWARDEN_PRIVACY__PSEUDONYMIZE="false",
    )
    assert off.returncode == 0, off.stderr
    assert '"id":"u-7"' in off.stdout  # the operator chose clear identifiers, explicitly


def test_setup_generates_the_pseudonymization_key_file_once(tmp_path: Path) -> None:
    key_file = tmp_path / "state" / "pseudonymization.key"
    extra = {
        "LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY": UNSET,
        "LOGWARDEN_PRIVACY__PSEUDONYMIZATION_KEY_FILE": str(key_file),
    }
    first = run(["setup", "--no-kafka", "--no-elasticsearch"], tmp_path, **extra)
    assert first.returncode == 0, first.stderr
    key = key_file.read_text()
    assert len(key.strip()) >= 32 and (key_file.stat().st_mode & 0o777) == 0o600
    again = run(["setup", "--no-kafka", "--no-elasticsearch"], tmp_path, **extra)
    assert again.returncode == 0 and key_file.read_text() == key  # never rotated behind the operator's back
