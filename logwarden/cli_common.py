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


def configure(config: Path | None, **overrides: object) -> Settings:
    """Load the settings (``ConfigError`` on a bad value) and set up logging to stderr."""
    settings = load_settings(config, **overrides)
    logging.basicConfig(
        level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # kafka-python logs every failed bootstrap attempt; at start-up our own one-line error says it better
    logging.getLogger("kafka").setLevel(logging.CRITICAL if settings.log_level != "DEBUG" else logging.DEBUG)
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    return settings
