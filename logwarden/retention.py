"""Which daily event indices fall out of the retention period."""

from __future__ import annotations

import re
from datetime import date


def expired_indices(names: list[str], prefix: str, cutoff: date) -> list[str]:
    """Indices ``<prefix>-events-YYYY.MM.DD`` dated strictly before ``cutoff``; other names are never touched.

    >>> expired_indices(["lw-events-2026.01.01", "lw-events-2026.02.01", "lw-alerts", "lw-events-x"],
    ...                 "lw", date(2026, 1, 15))
    ['lw-events-2026.01.01']
    """
    pattern = re.compile(rf"{re.escape(prefix)}-events-(\d{{4}})\.(\d{{2}})\.(\d{{2}})")
    doomed = []
    for name in sorted(names):
        match = pattern.fullmatch(name)
        if not match:
            continue
        try:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
        if day < cutoff:
            doomed.append(name)
    return doomed
