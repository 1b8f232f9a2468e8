"""The README's two set-up commands exist, and CI runs exactly the README's test command."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> tuple[str, str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    demo = next(lines[i + 1] for i, line in enumerate(lines) if line.startswith("# 1."))
    test = next(lines[i + 1] for i, line in enumerate(lines) if line.startswith("# 2."))
    return demo.strip(), test.strip()


def test_the_first_command_installs_and_runs_the_demo() -> None:
    demo, _ = _commands()
    assert "pip install" in demo and demo.endswith("logwarden demo")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = _commands()
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test in [line.strip() for line in ci], ".ci/run must run the README's test command as written"
