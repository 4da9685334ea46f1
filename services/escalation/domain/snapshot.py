"""What a page says about its incident beyond the lifecycle: the latest alerts (bounded) and
where the incident is in the operator API (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from schemas import AlertDetails
from schemas.notifications import MAX_SNAPSHOT_ALERTS


def latest_alerts(
    current: Sequence[AlertDetails], arrived: AlertDetails | None
) -> tuple[AlertDetails, ...]:
    """The incident's latest alerts, newest first, one per fingerprint, at most
    `MAX_SNAPSHOT_ALERTS`: an alert that changes (fires again, resolves) moves to the front."""
    if arrived is None:
        return tuple(current[:MAX_SNAPSHOT_ALERTS])
    others = [a for a in current if a.fingerprint != arrived.fingerprint]
    return (arrived, *others[: MAX_SNAPSHOT_ALERTS - 1])


def incident_url(public_url: str | None, incident_id: str) -> str | None:
    if public_url is None:
        return None
    return f"{public_url.rstrip('/')}/api/v1/incidents/{quote(incident_id, safe='')}"
