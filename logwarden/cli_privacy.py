"""``logwarden reveal``: audited re-identification of the values sealed by the privacy chain (AES-256-GCM).

Registered on the main app by :func:`register` (``register(app)`` in ``logwarden/cli.py``). The work is
:func:`ingest.privacy.encrypt.reveal_command`: one audit record per document (who, why, when, which
document, which fields; never the values) is appended to the audit log, and fsynced, before the document's
values are printed.

Exit codes: 0 every document revealed; 1 a document could not be opened (key id not in the keyring, wrong
key, altered or malformed sealed value, input line not JSON), the ones before it were revealed and audited;
2 usage (no keyring, unreadable keyring or input, missing actor or reason).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from ingest.privacy import PrivacyError, RevealError
from ingest.privacy.encrypt import Keyring, decode_key, reveal_command
from logwarden.cli_common import ConfigOption, configure, err
from logwarden.errors import ConfigError

DEFAULT_AUDIT_LOG = "reveal-audit.jsonl"  # under the store directory (LOGWARDEN_STORE_PATH)


def register(app: typer.Typer) -> None:
    """Add the ``reveal`` command to the main app."""
    app.command()(reveal)


def read_keyring(path: Path) -> dict[str, bytes]:
    """A keyring file: JSON ``{key id: base64 or hex 32-byte key}`` (what ``logwarden demo`` writes).

    :class:`ConfigError` names the file and the problem, never a key.
    """
    try:
        data: Any = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the keyring: {exc.strerror}") from None
    except orjson.JSONDecodeError:
        raise ConfigError(f"{path}: not a JSON object of key id -> key") from None
    if not isinstance(data, dict) or not data or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path}: not a JSON object of key id -> key")
    keyring: dict[str, bytes] = {}
    for key_id, key in data.items():
        try:
            keyring[str(key_id)] = decode_key(key)
        except ValueError as exc:
            raise ConfigError(f"{path}: key {key_id!r}: {exc}") from None
    return keyring


def _lines(path: Path | None) -> Iterable[bytes]:
    if path is None or str(path) == "-":
        return sys.stdin.buffer
    try:
        return path.open("rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]usage error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(2)


def reveal(
    input_file: Annotated[
        Path | None,
        typer.Argument(
            metavar="[INPUT]",
            help="JSON lines of documents or Elasticsearch hits ({_id, _source}); '-' or none = stdin.",
        ),
    ] = None,
    actor: Annotated[str, typer.Option(help="Who asks (audited), e.g. your e-mail address.")] = "",
    reason: Annotated[str, typer.Option(help="Why (audited), e.g. an incident or ticket id.")] = "",
    field: Annotated[
        list[str] | None, typer.Option("--field", "-f", help="Reveal only this field (repeatable).")
    ] = None,
    keyring: Annotated[
        Path | None,
        typer.Option(help="Keyring JSON file {key id: key} (default: LOGWARDEN_PRIVACY__ENCRYPTION_KEYS)."),
    ] = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(help=f"Audit log, JSON lines appended (default: <LOGWARDEN_STORE_PATH>/{DEFAULT_AUDIT_LOG})."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Re-identify sealed documents for an authorized person: print their original values, audited.

    Each output line is {"id": <document id>, "revealed": {field: original value}}. Every document is
    recorded in the audit log (who, why, when, which document, which fields; never the values) before its
    values are printed. Exit 1 when a document cannot be opened, 2 on usage errors.
    """
    try:
        settings = configure(config)
        if not actor.strip() or not reason.strip():
            raise _usage("--actor and --reason are required: every re-identification is audited")
        ring: Keyring = read_keyring(keyring) if keyring is not None else settings.privacy.keyring()
        if not ring:
            raise _usage(
                "no encryption keyring: set LOGWARDEN_PRIVACY__ENCRYPTION_KEYS or pass --keyring "
                "(the demo's is <store>/encryption-keys.json)"
            )
        log_path = audit_log if audit_log is not None else settings.store_path / DEFAULT_AUDIT_LOG
        lines = _lines(input_file)
    except ConfigError as exc:
        raise _usage(str(exc)) from None
    count = 0
    try:
        count = reveal_command(
            lines, sys.stdout, ring, actor=actor, reason=reason, audit_log=log_path, fields=field or None
        )
    except RevealError as exc:
        err.print(f"[red]cannot reveal:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    except PrivacyError as exc:
        raise _usage(str(exc)) from None
    except OSError as exc:  # the audit log cannot be written: nothing more is revealed
        err.print(f"[red]audit log {escape(str(log_path))}:[/red] {escape(str(exc.strerror))}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        close = getattr(lines, "close", None)
        if close is not None and lines is not sys.stdin.buffer:
            close()
    err.print(
        f"revealed {count} document(s) for {escape(actor)}; audit records in {escape(str(log_path))}",
        highlight=False,
    )
