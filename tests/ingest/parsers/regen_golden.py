"""Regenerate the expected side of the parser golden files from the ``.raw`` cases.

    .venv/bin/python tests/ingest/parsers/regen_golden.py [SOURCE ...]

For each ``golden/<source>/<case>.raw`` it writes ``<case>.ecs.json`` (the document the parser
returns) or, when the parser refuses the record, ``<case>.error.json`` (the reason code). Review the
diff before committing: golden files change only through this script, never by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ingest.errors import ParseError
from ingest.parsers import get_parser

GOLDEN = Path(__file__).resolve().parent / "golden"


def expected(source: str, raw: bytes) -> tuple[str, dict[str, object]]:
    """``("ecs", document)`` or ``("error", {"reason": ...})`` for one raw case."""
    try:
        return "ecs", get_parser(source)(raw)
    except ParseError as exc:
        return "error", {"reason": exc.reason}


def regenerate(source: str) -> int:
    count = 0
    for raw_path in sorted((GOLDEN / source).glob("*.raw")):
        kind, value = expected(source, raw_path.read_bytes())
        for stale in (raw_path.with_suffix(".ecs.json"), raw_path.with_suffix(".error.json")):
            stale.unlink(missing_ok=True)
        target = raw_path.with_suffix(f".{kind}.json")
        target.write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        count += 1
    return count


def main() -> None:
    sources = sys.argv[1:] or sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
    for source in sources:
        print(f"{source}: {regenerate(source)} cases")


if __name__ == "__main__":
    main()
