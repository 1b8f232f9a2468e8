"""What every ``logwarden`` command shares: the error console, the --config option, settings + logging."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from logwarden.settings import Settings, load_settings

err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (else LOGWARDEN_CONFIG).")
]


class OneLineLibraryErrors(logging.Filter):
    """Client libraries' handled network errors as one warning line, not a traceback.

    kafka-python logs a connection reset it recovers from with ``log.exception``: the operator needs to know it
    happened, not the library's stack. Records of our own loggers keep their tracebacks. Its warnings that a task
    blocked its event loop are dropped.
    """

    PREFIXES = ("kafka.", "elastic_transport.", "urllib3.")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "kafka.net.selector" and "blocking the event loop" in str(record.msg):
            # kafka-python's I/O thread waited for the GIL while a batch was processed: expected in a worker
            # that spends its time in Python, and nothing an operator can act on (the consumer lag metric is)
            return False
        if record.exc_info and record.name.startswith(self.PREFIXES):
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure(config: Path | None, **overrides: object) -> Settings:
    """Load the settings (``ConfigError`` on a bad value) and set up logging to stderr."""
    settings = load_settings(config, **overrides)
    logging.basicConfig(
        level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, OneLineLibraryErrors) for f in handler.filters):
            handler.addFilter(OneLineLibraryErrors())
    # kafka-python logs every failed bootstrap attempt; at start-up our own one-line error says it better
    logging.getLogger("kafka").setLevel(logging.CRITICAL if settings.log_level != "DEBUG" else logging.DEBUG)
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    return settings
