"""Logging set-up shared by the commands."""

from __future__ import annotations

import io
import logging

from logwarden.cli_common import OneLineLibraryErrors


def test_library_network_errors_become_one_warning_line_and_ours_keep_their_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(OneLineLibraryErrors())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for name in ("kafka.net.transport", "logwarden.runner"):
        logger = logging.getLogger(name)
        level, disabled = logger.level, logger.disabled  # other tests configure logging in this process
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        logger.addHandler(handler)
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError:
            logger.exception("%s: Error receiving network data closing socket", "<conn>")
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.disabled = disabled
    kafka_line, *ours = stream.getvalue().splitlines()
    assert kafka_line == (
        "WARNING kafka.net.transport: <conn>: Error receiving network data closing socket "
        "(ConnectionResetError: [Errno 104] Connection reset by peer)"
    )
    assert ours[0].startswith("ERROR logwarden.runner:") and "Traceback (most recent call last):" in ours
