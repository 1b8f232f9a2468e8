"""pandas DataFrames of the features, for notebooks.

>>> from detectors.ml.frames import behaviour_frame
>>> doc = {"@timestamp": "2026-11-02T08:00:01.000Z", "logwarden": {"api": {"key_id": "k1"}}}
>>> frame = behaviour_frame([doc])
>>> frame[["entity_type", "entity", "window_start", "requests_1m"]].to_dict("records")[0]["entity"]
'k1'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from detectors.ml.features.behaviour import BehaviourConfig, EntityBehaviour
from detectors.ml.features.content import RequestContent
from detectors.ml.training import behaviour_rows


def behaviour_frame(docs: Sequence[dict[str, Any]], config: BehaviourConfig | None = None) -> pd.DataFrame:
    """One row per entity-window: ``entity_type``, ``entity``, ``window_start``, then the features."""
    eb = EntityBehaviour(config)
    frames = []
    for rows in behaviour_rows(eb, docs):
        frame = pd.DataFrame(rows.X, columns=eb.feature_names)
        start = datetime.fromtimestamp(rows.bucket * eb.hop * 60, UTC)
        frame.insert(0, "window_start", pd.Timestamp(start))
        frame.insert(0, "entity", rows.keys)
        frame.insert(0, "entity_type", rows.entity_type)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["entity_type", "entity", "window_start", *eb.feature_names])
    return pd.concat(frames, ignore_index=True)


def content_frame(docs: Sequence[Mapping[str, Any]], fitted: RequestContent | None = None) -> pd.DataFrame:
    """One row per request (input order) with the content features (``fitted`` vocabulary, else fitted on docs)."""
    content = fitted or RequestContent().fit(docs)
    return pd.DataFrame(content.transform(docs), columns=content.feature_names)
