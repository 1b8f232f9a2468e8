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


def test_kafka_event_loop_warnings_are_dropped_and_its_other_warnings_kept() -> None:
    def record(name: str, msg: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, None, None)

    quiet = OneLineLibraryErrors()
    blocked = "Task <kafka.net.selector.Task object at 0x7f> ran for 0.226s (>0.100s threshold). It is blocking the"
    assert not quiet.filter(record("kafka.net.selector", blocked + " event loop -- likely a tight sync loop"))
    assert quiet.filter(record("kafka.net.selector", "Unable to connect to bootstrap server"))
    assert quiet.filter(record("kafka.coordinator", blocked + " event loop"))
