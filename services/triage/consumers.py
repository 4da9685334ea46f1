"""Triage's handlers: `alerts.raw` (dedup, open or join an incident, resolve it when quiet)
and `incidents.lifecycle` (release an incident escalation resolved, see domain/lifecycle.py).

Re-entrant: a redelivered message (same `event_id`) finishes whatever an earlier delivery left
half done, and publishes the same incident event id again, which escalation dedupes.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from schemas import (
    INCIDENTS_EVENTS,
    AlertReceived,
    AlertStatus,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    Severity,
)
from services.triage.config import TriageConfig
from services.triage.domain import (
    AlertState,
    LifecycleEffect,
    Occurrence,
    alert_details,
    assess_severity,
    blast_radius_raise,
    candidate_incident_id,
    classify,
    group_key,
    incident_event_id,
    keep_trigger_content,
    on_lifecycle,
    raised_severity,
    severity_event_id,
)
from services.triage.domain.grouping import GroupingRule
from services.triage.domain.ids import RETRIAGE, retriage_event_id
from services.triage.domain.inhibition import SourceAlert, inhibited_by, is_source
from services.triage.domain.silences import silenced_by
from services.triage.metrics import ALERTS_BY_SERVICE, ALERTS_TRIAGED, INCIDENTS_RELEASED
from services.triage.refreshed import Refreshed
from services.triage.silence_store import SilencesInForce, no_silences
from services.triage.store import IncidentRecord, NewIncident, TriageStore
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock, SystemClock
from tocsin.runtime.live_config import Current, Fixed

log = logging.getLogger(__name__)


_CAS_ATTEMPTS = 5


def _opened_or_added(opened: bool) -> IncidentEventKind:
    return IncidentEventKind.OPENED if opened else IncidentEventKind.ALERT_ADDED


class AlertTriage:
    def __init__(
        self,
        bus: Bus,
        store: TriageStore,
        config: TriageConfig | Current[TriageConfig],
        silences: SilencesInForce | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._bus = bus
        self._store = store
        # A reload swaps the section; read it through `.current` each time (live_config.py).
        self._live = Fixed(config) if isinstance(config, TriageConfig) else config
        self._silences = silences if silences is not None else no_silences()
        self._sources = Refreshed(self._firing_sources, clock or SystemClock())
        self._source_seen = False

    @property
    def _config(self) -> TriageConfig:
        return self._live.current

    async def _firing_sources(self, _: datetime) -> list[SourceAlert]:
        if not self._config.inhibit_rules:
            return []
        return await self._store.firing_sources()

    async def handle(self, alert: AlertReceived) -> None:
        try:
            await self._handle(alert)
        finally:
            if self._source_seen:
                # Recorded (or maybe recorded): this process's next alerts see it at once.
                self._sources.invalidate()
                self._source_seen = False

    async def _handle(self, alert: AlertReceived) -> None:
        previous = await self._store.get_alert(alert.fingerprint)
        if previous is not None and alert.status is AlertStatus.RESOLVED:
            stored = await self._store.get_content(alert.fingerprint)
            if stored is not None:
                alert = keep_trigger_content(stored, alert)
        labels = {label.name: label.value for label in alert.labels}
        alert, routed = self._route(alert, labels)
        rule = self._config.grouping_rule(alert.service_id)
        key = group_key(alert.service_id, alert.alertname, labels, rule)
        if previous is not None and alert.status is AlertStatus.RESOLVED:
            # A resolve updates only what it carries, and never moves the alert to a group.
            key = previous.group_key
        if previous is not None and previous.last_event_id == alert.event_id:
            # Redelivery: the alert was recorded (after its incident was opened or joined);
            # only the publish that followed may be missing. Do it again with the same id.
            if previous.occurrence_event_id == alert.event_id and previous.incident_id:
                opened = previous.incident_id == candidate_incident_id(alert.event_id)
                await self._announce(alert, previous.incident_id, _opened_or_added(opened))
            elif alert.status is AlertStatus.RESOLVED and previous.incident_id:
                await self._resolve_if_quiet(alert, previous.incident_id, previous.group_key)
            return
        if alert.correlation_id.startswith(RETRIAGE) and (
            previous is None
            or alert.event_id != retriage_event_id(alert.fingerprint, previous.last_event_id)
        ):
            return  # the alert changed (resolved, fired again) after the sweep read it
        state = AlertState(previous.status, previous.incident_id) if previous else None
        occurrence = classify(state, alert)
        rules = self._config.inhibitions
        source = is_source(rules, labels)
        self._source_seen = source
        if occurrence is Occurrence.NEW:
            silence = silenced_by(await self._silences.current(), labels, alert.occurred_at)
            if silence is not None:
                # Recorded, attached to nothing: the alert is triaged once the silence ended
                # (see unsilence.py).
                self._count(alert, "silenced")
                await self._store.record_alert(
                    alert,
                    occurrence,
                    key,
                    None,
                    f"silenced by {silence.id}" + routed,
                    held_by=f"silence:{silence.id}",
                    inhibit_source=source,
                )
                return
            inhibition = (
                inhibited_by(rules, alert.fingerprint, labels, await self._sources.current())
                if rules
                else None
            )
            if inhibition is not None:
                inhibitor, n = inhibition
                self._count(alert, "inhibited")
                await self._store.record_alert(
                    alert,
                    occurrence,
                    key,
                    None,
                    f"inhibited by alert {inhibitor.fingerprint} (inhibit_rules[{n}])" + routed,
                    held_by=f"alert:{inhibitor.fingerprint}",
                    inhibit_source=source,
                )
                return
            self._count(alert, occurrence.value)
            # Open or join (and raise the severity) first, then record the alert with its
            # incident in one write: a crash in between leaves the alert unrecorded, and the
            # redelivery joins the same incident again (the ids are derived from the message).
            severity, reasons = self._assess(alert, labels)
            incident_id, opened = await self._open_or_join(alert, key, severity, reasons, rule)
            await self._raise_severity(incident_id, severity, reasons, alert.event_id)
            limit = self._config.blast_radius.get(alert.service_id)
            if limit is not None:
                await self._raise_for_blast_radius(incident_id, limit, alert.event_id)
            how = "opened it" if opened else f"grouped by {rule.describe()}"
            decision = f"grouped into incident {incident_id} ({how})" + routed
            await self._store.record_alert(
                alert, occurrence, key, incident_id, decision, inhibit_source=source
            )
            await self._announce(alert, incident_id, _opened_or_added(opened))
            return
        self._count(alert, occurrence.value)
        await self._store.record_alert(alert, occurrence, key, None, inhibit_source=source)
        if occurrence is Occurrence.RESOLVED and previous is not None and previous.incident_id:
            await self._resolve_if_quiet(alert, previous.incident_id, previous.group_key)

    def _route(self, alert: AlertReceived, labels: dict[str, str]) -> tuple[AlertReceived, str]:
        """The alert sent to the service its integration's routes pick, and why (for the
        alert's decision); unchanged when no route matches."""
        routed = self._config.route(alert.integration_id, labels)
        if routed is None:
            return alert, ""
        service_id, n = routed
        why = (
            f"; routed to service {service_id} by routes[{n}] of integration {alert.integration_id}"
        )
        if service_id == alert.service_id:
            return alert, why
        return alert.model_copy(update={"service_id": service_id}), why

    @staticmethod
    def _count(alert: AlertReceived, outcome: str) -> None:
        ALERTS_TRIAGED.labels(outcome=outcome).inc()
        ALERTS_BY_SERVICE.labels(service=alert.service_id, outcome=outcome).inc()

    def _assess(
        self, alert: AlertReceived, labels: dict[str, str]
    ) -> tuple[Severity, tuple[str, ...]]:
        return assess_severity(
            alert.severity, self._config.tier(alert.service_id), self._config.severity_rule(labels)
        )

    async def _open_or_join(
        self,
        alert: AlertReceived,
        key: str,
        severity: Severity,
        reasons: tuple[str, ...],
        rule: GroupingRule,
    ) -> tuple[str, bool]:
        return await self._store.open_or_join(
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
            rule,
        )

    async def _raise_severity(
        self,
        incident_id: str,
        severity: Severity,
        reasons: tuple[str, ...],
        cause_event_id: uuid.UUID,
    ) -> None:
        """Make the incident as severe as this alert, if it is more severe (the opener too:
        a racing alert may have created the incident with its own, lower, severity)."""
        for _ in range(_CAS_ATTEMPTS):
            incident = await self._incident(incident_id)
            if incident.severity_event_id == cause_event_id or incident.status != "open":
                return  # raised by an earlier delivery of this message, or closed meanwhile
            raised = raised_severity(incident.severity, severity, reasons)
            if raised is None:
                return
            new_severity, new_reasons = raised
            if await self._store.raise_severity(
                incident_id, incident.severity, new_severity, new_reasons, cause_event_id
            ):
                return
        raise RuntimeError(f"incident {incident_id}: severity kept changing under us")

    async def _raise_for_blast_radius(
        self, incident_id: str, limit: int, cause_event_id: uuid.UUID
    ) -> None:
        """One level more severe once the incident holds more than `limit` alerts (once: the
        reason it leaves makes a redelivery, or the next alert, change nothing)."""
        for _ in range(_CAS_ATTEMPTS):
            incident = await self._incident(incident_id)
            if incident.status != "open":
                return
            raised = blast_radius_raise(
                incident.severity, incident.severity_reasons, incident.alert_count, limit
            )
            if raised is None:
                return
            new_severity, new_reasons = raised
            if await self._store.raise_severity(
                incident_id, incident.severity, new_severity, new_reasons, cause_event_id
            ):
                return
        raise RuntimeError(f"incident {incident_id}: severity kept changing under us")

    async def _resolve_if_quiet(self, alert: AlertReceived, incident_id: str, key: str) -> None:
        if await self._store.firing_count(incident_id) > 0:
            return
        await self._store.close(incident_id, key, alert.occurred_at)
        await self._announce(alert, incident_id, IncidentEventKind.ALERTS_RESOLVED)

    async def _incident(self, incident_id: str) -> IncidentRecord:
        incident = await self._store.get_incident(incident_id)
        if incident is None:
            raise RuntimeError(f"incident {incident_id} vanished while triaging")
        return incident

    async def _announce(
        self, alert: AlertReceived, incident_id: str, kind: IncidentEventKind
    ) -> None:
        """Publish what this occurrence did to the incident; if it raised the severity (as
        recorded on the incident, so a redelivery says it again), that too, right after."""
        incident = await self._incident(incident_id)
        firing_count = await self._store.firing_count(incident_id)
        events = [(kind, incident_event_id(alert.event_id))]
        if kind is not IncidentEventKind.ALERTS_RESOLVED and (
            incident.severity_event_id == alert.event_id
        ):
            events.append((IncidentEventKind.SEVERITY_CHANGED, severity_event_id(alert.event_id)))
        await self._bus.publish_many(
            INCIDENTS_EVENTS,
            [
                (incident.id, self._event(alert, incident, firing_count, kind, event_id))
                for kind, event_id in events
            ],
        )
        for kind, _ in events:
            # An alert storm adds thousands of alerts to one incident: log those at debug only.
            level = logging.DEBUG if kind is IncidentEventKind.ALERT_ADDED else logging.INFO
            log.log(level, "incident %s: %s (%s)", incident.id, kind.value, incident.severity.value)

    @staticmethod
    def _event(
        alert: AlertReceived,
        incident: IncidentRecord,
        firing_count: int,
        kind: IncidentEventKind,
        event_id: uuid.UUID,
    ) -> IncidentEvent:
        return IncidentEvent(
            event_id=event_id,
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
            firing_count=firing_count,
            fingerprint=alert.fingerprint,
            alert=alert_details(alert),
        )


class LifecycleTriage:
    """Releases an incident once escalation resolved it, so that a still-firing alert pages
    again with a new incident on its next firing occurrence instead of counting silently."""

    def __init__(self, store: TriageStore) -> None:
        self._store = store

    async def handle(self, change: IncidentLifecycleChanged) -> None:
        if on_lifecycle(change.status) is LifecycleEffect.NONE:
            return
        # Idempotent without a record of event ids: releasing twice changes nothing, and a
        # late redelivery only touches this incident, never one opened after it.
        if await self._store.release(change.incident_id, change.occurred_at, change.actor):
            INCIDENTS_RELEASED.inc()
            log.info("incident %s resolved by %s: released", change.incident_id, change.actor)
        else:
            log.debug("incident %s is not triage's: lifecycle change ignored", change.incident_id)
