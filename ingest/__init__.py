"""Ingest: raw log records in, normalized Elastic Common Schema (ECS) documents out.

Parsers are pure (`parse(raw) -> dict`), sources and sinks do the I/O, and
:func:`ingest.pipeline.normalize` joins them without knowing which transport runs.
"""
