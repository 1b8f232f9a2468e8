"""Rule commands: ``logwarden rules lint``, ``logwarden rules test`` and ``logwarden detect``.

Register them on the main app with :func:`register` (``rules`` group plus the ``detect`` command).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Annotated, BinaryIO

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from detectors.detection import Detection
from detectors.sigma.engine import RuleEngine
from detectors.sigma.lint import lint as lint_rules
from detectors.sigma.loader import load_rules
from detectors.sigma.testing import run_rule_tests
from detectors.sigma.watermark import DEFAULT_LATENESS_S, event_time
from ingest.records import NormalizedEvent, Record
from logwarden.errors import ConfigError

rules_app = typer.Typer(help="Sigma rules: lint them, run their test events.", no_args_is_help=True)
_err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)
_out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

PathsArgument = Annotated[list[Path], typer.Argument(help="Rule files or directories.", exists=True)]
BATCH = 1000


def register(app: typer.Typer) -> None:
    """Add ``rules lint``, ``rules test`` and ``detect`` to the main ``logwarden`` app."""
    app.add_typer(rules_app, name="rules")
    app.command()(detect)


@rules_app.command("lint")
def lint(
    paths: PathsArgument,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object: loaded, failed, errors.")] = False,
    strict: Annotated[bool, typer.Option(help="Fail on warnings too.")] = False,
) -> None:
    """Report every problem of the rules at once (path:line). Exit 1 on errors (a rule that does not load, a
    field outside the ECS catalogue); warnings (no test file, unmapped foreign field, expired exception) only
    fail with --strict."""
    report = lint_rules(paths)
    if json_output:
        typer.echo(orjson.dumps(report.as_dict()).decode())
    else:
        for problem in report.problems:
            colour = "red" if problem.severity == "error" else "yellow"
            _out.print(f"[{colour}]{escape(str(problem))}[/{colour}]", highlight=False)
        _err.print(f"{report.loaded} rules loaded, {report.failed} failed, {len(report.problems)} problems")
    if report.errors or (strict and report.problems):
        raise typer.Exit(1)


@rules_app.command("test")
def test(paths: PathsArgument) -> None:
    """Run the test events beside every rule file through the engine; exit 1 on any failure."""
    report = run_rule_tests(paths)
    table = Table(title="rule tests", title_justify="left")
    for column in ("result", "file:line", "case", "expected", "got"):
        table.add_column(column)
    for case in report.cases:
        result = "[green]ok[/green]" if case.ok else "[red]FAIL[/red]"
        where = f"{Path(case.path).name}:{case.line}"
        expected = ", ".join(f"{k}={v}" for k, v in case.expected.items())
        got = ", ".join(f"{k}={v}" for k, v in case.actual.items())
        table.add_row(result, escape(where), escape(case.name), escape(expected), escape(got))
    _out.print(table)
    for case in report.cases:
        for failure in case.failures:
            _out.print(f"[red]{escape(case.path)}:{case.line}: {escape(case.name)}: {escape(failure)}[/red]")
    for error in report.errors:
        _out.print(f"[red]{escape(str(error))}[/red]")
    for path in report.untested:
        _out.print(f"[yellow]{escape(path)}: no test events[/yellow]")
    failed = sum(not c.ok for c in report.cases)
    _err.print(f"{len(report.cases)} cases, {failed} failed, {len(report.errors)} load errors")
    if not report.ok:
        raise typer.Exit(1)


def detect(
    rules: Annotated[list[Path], typer.Option("--rules", "-r", help="Rule files or directories.", exists=True)],
    events: Annotated[str, typer.Option("--events", "-e", help="ECS documents, one JSON object a line; - for stdin.")],
    stats: Annotated[bool, typer.Option("--stats", help="Matches per rule and projected alerts per day.")] = False,
    lateness: Annotated[float, typer.Option(help="Allowed lateness of events, seconds.")] = DEFAULT_LATENESS_S,
) -> None:
    """Run rules over ECS documents (JSON lines) and print the detections as JSON lines (final states)."""
    ruleset = load_rules(rules)
    for error in ruleset.errors:
        _err.print(f"[red]rule skipped:[/red] {escape(str(error))}", highlight=False)
    engine = RuleEngine(ruleset, lateness_s=lateness)
    final: dict[str, Detection] = {}
    times: list[float] = []
    bad = 0
    batch: list[NormalizedEvent] = []
    with _open(events) as handle:
        for number, line in enumerate(handle, start=1):
            event = _event(line, events, number)
            if event is None:
                bad += line.strip() != b""
                continue
            _span(event, times)
            batch.append(event)
            if len(batch) >= BATCH:
                final.update((d.id, d) for d in engine.process(batch))
                batch = []
    final.update((d.id, d) for d in engine.process(batch))
    final.update((d.id, d) for d in engine.flush())
    for det in final.values():
        typer.echo(orjson.dumps(dataclasses.asdict(det)).decode())
    if bad:
        _err.print(f"[yellow]{bad} lines are not JSON objects: skipped[/yellow]")
    if stats:
        _print_stats(engine, list(final.values()), times)


def _open(path: str) -> AbstractContextManager[BinaryIO]:
    if path == "-":
        return nullcontext(sys.stdin.buffer)
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise ConfigError(f"--events: cannot read {path}: {exc.strerror}") from None


def _event(line: bytes, source: str, number: int) -> NormalizedEvent | None:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    doc_id = str(doc.pop("_id", "") or hashlib.blake2b(line.strip(), digest_size=16).hexdigest())
    return NormalizedEvent(doc_id, doc, Record("jsonl", line, source, 0, number))


def _span(event: NormalizedEvent, times: list[float]) -> None:
    """Keep the earliest and latest event time seen (for alerts per day)."""
    try:
        t = event_time(str(event.doc["@timestamp"]))
    except (KeyError, ValueError):
        return
    if not times:
        times.extend((t, t))
    else:
        times[0], times[1] = min(times[0], t), max(times[1], t)


def _print_stats(engine: RuleEngine, detections: list[Detection], times: list[float]) -> None:
    days = (times[1] - times[0]) / 86400 if times else 0.0
    per_rule = Counter(d.rule_id for d in detections)
    metas = [r.meta for r in engine.ruleset.rules] + [c.meta for c in engine.ruleset.correlations]
    table = Table(title=f"rules over {days * 24:.1f} hours of events", title_justify="left")
    for column in ("rule", "level", "matches", "detections", "alerts/day"):
        table.add_column(column, justify="left" if column in ("rule", "level") else "right")
    for meta in sorted(metas, key=lambda m: (-per_rule[m.id], -engine.stats.rule_matches[m.id], m.name)):
        per_day = f"{per_rule[meta.id] / days:.1f}" if days > 0 else "n/a"
        row = (meta.name, meta.level, str(engine.stats.rule_matches[meta.id]), str(per_rule[meta.id]), per_day)
        table.add_row(*(escape(v) for v in row))
    _err.print(table)
    _err.print(", ".join(f"{k} {v}" for k, v in engine.counters().items()), highlight=False)
