"""Triage's handler of `alerts.raw`: dedup, open or join an incident, resolve it when quiet.

Re-entrant: a redelivered message (same `event_id`) finishes whatever an earlier delivery left
half done, and publishes the same incident event id again, which escalation dedupes.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter

from schemas import (
    INCIDENTS_EVENTS,
    AlertReceived,
    AlertStatus,
    IncidentEvent,
    IncidentEventKind,
)
from services.triage.domain import (
    AlertState,
    Occurrence,
    assess_severity,
    candidate_incident_id,
    classify,
    group_key,
    incident_event_id,
)
from services.triage.store import NewIncident, TriageStore
from tocsin.bus import Bus
from tocsin.config import TocsinConfig

log = logging.getLogger(__name__)

ALERTS_TRIAGED = Counter(
    "tocsin_triage_alerts_total", "Alert occurrences triaged, by outcome.", ["outcome"]
)


class AlertTriage:
    def __init__(self, bus: Bus, store: TriageStore, config: TocsinConfig) -> None:
        self._bus = bus
        self._store = store
        self._config = config

    async def handle(self, alert: AlertReceived) -> None:
        key = group_key(alert.service_id, alert.alertname)
        previous = await self._store.get_alert(alert.fingerprint)
        if previous is not None and previous.last_event_id == alert.event_id:
            # Redelivery: this message was recorded; finish its follow-up steps, if it had any.
            if alert.status is AlertStatus.FIRING:
                if previous.occurrence_event_id != alert.event_id:
                    return
                occurrence = Occurrence.NEW
            else:
                occurrence = Occurrence.RESOLVED
        else:
            state = AlertState(previous.status, previous.incident_id) if previous else None
            occurrence = classify(state, alert)
            await self._store.record_alert(alert, occurrence, key)
        ALERTS_TRIAGED.labels(outcome=occurrence.value).inc()
        if occurrence is Occurrence.NEW:
            await self._attach(alert, key)
        elif occurrence is Occurrence.RESOLVED and previous is not None and previous.incident_id:
            await self._resolve_if_quiet(alert, previous.incident_id, previous.group_key)

    async def _attach(self, alert: AlertReceived, key: str) -> None:
        service = self._config.service(alert.service_id)
        severity, reasons = assess_severity(alert.severity, service.tier if service else 2)
        incident_id, opened = await self._store.open_or_join(
            NewIncident(
                candidate_id=candidate_incident_id(alert.event_id),
                group_key=key,
                service_id=alert.service_id,
                title=alert.summary,
                severity=severity,
                severity_reasons=reasons,
                opened_at=alert.occurred_at,
            ),
            alert.fingerprint,
        )
        await self._store.attach(alert.fingerprint, incident_id)
        kind = IncidentEventKind.OPENED if opened else IncidentEventKind.ALERT_ADDED
        await self._publish(alert, incident_id, kind)

    async def _resolve_if_quiet(self, alert: AlertReceived, incident_id: str, key: str) -> None:
        if await self._store.firing_count(incident_id) > 0:
            return
        await self._store.close(incident_id, key, alert.occurred_at)
        await self._publish(alert, incident_id, IncidentEventKind.ALERTS_RESOLVED)

    async def _publish(
        self, alert: AlertReceived, incident_id: str, kind: IncidentEventKind
    ) -> None:
        incident = await self._store.get_incident(incident_id)
        if incident is None:
            raise RuntimeError(f"incident {incident_id} vanished while triaging")
        event = IncidentEvent(
            event_id=incident_event_id(alert.event_id),
            occurred_at=alert.occurred_at,
            correlation_id=alert.correlation_id,
            kind=kind,
            incident_id=incident.id,
            service_id=incident.service_id,
            group_key=incident.group_key,
            title=incident.title,
            severity=incident.severity,
            severity_reasons=incident.severity_reasons,
            alert_count=incident.alert_count,
            firing_count=await self._store.firing_count(incident_id),
            fingerprint=alert.fingerprint,
        )
        await self._bus.publish(INCIDENTS_EVENTS, incident.id, event)
        log.info("incident %s: %s (%s)", incident.id, kind.value, incident.severity.value)
