"""Kibana deep links for alerts: Discover on the source events of a detection.

The link opens the events data view (``logwarden-events``, imported by ``logwarden setup --kibana``) on the
detection's time range (a minute of margin on each side) with a KQL query that selects its evidence:

- the group's fields (``user.id : "ps_..." and source.ip : "..."``) when the detection has a group, so the
  analyst sees every event of the entity in the window, the matching ones and their context;
- otherwise the ids of its source events (``_id : ("a" or "b")``, at most :data:`MAX_IDS` of them, to keep
  the URL short);
- otherwise the alert document itself in the alerts data view.

Kibana reads its app state as rison in the URL fragment; strings are quoted with ``'`` and rison escapes
``'`` and ``!`` with ``!``. KQL strings are double-quoted with ``\\`` escapes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from urllib.parse import quote

from detectors.detection import Detection

EVENTS_VIEW: Final = "logwarden-events"
ALERTS_VIEW: Final = "logwarden-alerts"
MAX_IDS: Final = 20
MARGIN: Final = timedelta(minutes=1)


def kql_string(value: str) -> str:
    """A KQL quoted string.

    >>> kql_string('a"b\\\\c')
    '"a\\\\"b\\\\\\\\c"'
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rison_string(value: str) -> str:
    """A rison quoted string.

    >>> rison_string("it's ok!")
    "'it!'s ok!!'"
    """
    return "'" + value.replace("!", "!!").replace("'", "!'") + "'"


def evidence_query(detection: Detection) -> str | None:
    """The KQL query that selects a detection's source events (None when it has neither group nor ids)."""
    if detection.group:
        return " and ".join(f"{field} : {kql_string(str(value))}" for field, value in sorted(detection.group.items()))
    if detection.event_ids:
        return "_id : (" + " or ".join(kql_string(i) for i in detection.event_ids[:MAX_IDS]) + ")"
    return None


def _shifted(timestamp: str, delta: timedelta) -> str:
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return (moment + delta).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def discover_url(kibana_url: str, detection: Detection, alert_id: str) -> str:
    """Kibana Discover on the detection's source events (or on the alert document when there is no evidence)."""
    query = evidence_query(detection)
    view = EVENTS_VIEW
    if query is None:
        view, query = ALERTS_VIEW, f"logwarden.alert.id : {kql_string(alert_id)}"
    start = _shifted(detection.first_seen, -MARGIN)
    end = _shifted(detection.last_seen or detection.first_seen, MARGIN)
    g = f"(time:(from:{rison_string(start)},to:{rison_string(end)}))"
    source = f"dataSource:(dataViewId:{rison_string(view)},type:dataView)"
    a = f"({source},query:(language:kuery,query:{rison_string(query)}))"
    return f"{kibana_url.rstrip('/')}/app/discover#/?_g={quote(g, safe='')}&_a={quote(a, safe='')}"
