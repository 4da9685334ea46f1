"""Triage's handlers: `alerts.raw` (dedup, open or join an incident, resolve it when quiet)
and `incidents.lifecycle` (release an incident escalation resolved, see domain/lifecycle.py).

`alerts.raw` is handled a consumer batch at a time (`AlertTriage.handle_batch`): the alerts'
states are read in one bulk read, the silences and inhibition sources in force once, and the
batch goes in rounds: a round takes each fingerprint's next step (one occurrence, or a run of
repeats recorded as one write), opens or joins the incidents it needs (one atomic upsert per
group, so several replicas agree), records its alerts in one bulk write, then publishes its
incident events in one `publish_many`. Per fingerprint the order is kept; a storm of repeats
and adds takes one round.

Re-entrant: a redelivered batch (or a part of one) skips the occurrences an alert already
recorded (its stored `last_event_id` is one of them), finishes what the last recorded one left
undone (its publish), and publishes the same incident event ids again, which escalation dedupes.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from schemas import (
    INCIDENTS_EVENTS,
    AlertReceived,
    AlertStatus,
    ChangeSummary,
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    Severity,
)
from services.triage.changes import ChangeStore, changes_before
from services.triage.config import TriageConfig
from services.triage.domain import (
    AlertContent,
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
from services.triage.domain.flapping import NOT_FLAPPING, FlapState, track
from services.triage.domain.grouping import GroupingRule, group_takes
from services.triage.domain.ids import RETRIAGE, held_event_id, retriage_event_id
from services.triage.domain.inhibition import SourceAlert, inhibited_by, is_source
from services.triage.domain.maintenance import MaintenanceWindow, in_maintenance
from services.triage.domain.recurrence import RECURRENCE_WINDOW, recurrence
from services.triage.domain.silences import Silence, silenced_by
from services.triage.maintenance_store import WindowsInForce, no_windows
from services.triage.metrics import (
    ALERTS_BY_SERVICE,
    ALERTS_TRIAGED,
    INCIDENT_RECURRENCES,
    INCIDENTS_RELEASED,
)
from services.triage.refreshed import Refreshed
from services.triage.silence_store import SilencesInForce, no_silences
from services.triage.store import (
    AlertRecord,
    AlertWrite,
    GroupJoin,
    IncidentRecord,
    NewIncident,
    StoredState,
    TriageStore,
    alert_content_key,
)
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock, SystemClock
from tocsin.runtime.live_config import Current, Fixed

log = logging.getLogger(__name__)


_CAS_ATTEMPTS = 5


def _opened_or_added(opened: bool) -> IncidentEventKind:
    return IncidentEventKind.OPENED if opened else IncidentEventKind.ALERT_ADDED


def _content_of(alert: AlertReceived) -> AlertContent:
    return AlertContent(
        alertname=alert.alertname,
        summary=alert.summary,
        severity=alert.severity,
        labels=alert.labels,
        annotations=alert.annotations,
        generator_url=alert.generator_url,
    )


@dataclass(frozen=True)
class _Pending:
    position: int  # in the batch
    alert: AlertReceived
    # The alert's last recorded occurrence, delivered again: only its publish may be missing.
    recorded: bool = False


def _unrecorded(record: AlertRecord | None, pending: list[_Pending]) -> list[_Pending]:
    """An alert's occurrences in a batch without those it recorded already: its stored last
    event id names the last one recorded (per fingerprint the order is the log's)."""
    if record is None or record.last_event_id is None:
        return pending
    for n, item in enumerate(pending):
        if item.alert.event_id == record.last_event_id:
            return [replace(item, recorded=True), *pending[n + 1 :]]
    return pending


@dataclass
class _Working:
    """One fingerprint's state while its batch is triaged (as stored, then as each step left
    it), and its occurrences not triaged yet, in order."""

    record: AlertRecord | None
    stored: StoredState | None  # as read before the batch
    pending: list[_Pending]
    latest: AlertReceived | None = None  # what the last step recorded, if any

    def content(self) -> AlertContent | None:
        if self.latest is not None:
            return _content_of(self.latest)
        return self.stored.content() if self.stored is not None else None

    def says(self, alert: AlertReceived) -> bool:
        """Whether the alert as recorded says what `alert` says (a repeat that does is
        recorded without rewriting what it says)."""
        if self.latest is not None:
            return alert_content_key(self.latest) == alert_content_key(alert)
        return self.stored is not None and self.stored.says(alert)


@dataclass
class _Step:
    """One fingerprint's part of a round: `alerts` (one occurrence, or a run of repeats), how
    triage classified it, and what it decided."""

    position: int
    alerts: list[AlertReceived]
    previous: AlertRecord | None
    occurrence: Occurrence
    key: str
    labels: dict[str, str]
    routed: str
    source: bool
    incident_id: str | None = None
    decision: str | None = None
    held_by: str | None = None
    opened: bool = False
    rule: GroupingRule | None = None
    same_content: bool = False  # the alert says what the stored alert says
    flap: FlapState | None = None  # after this step; None: flap detection is off
    flapped_into: str | None = None  # the open incident a flapping alert stays in

    @property
    def flapping(self) -> bool:
        return self.flap is not None and self.flap.flapping

    @property
    def was_flapping(self) -> bool:
        return self.previous is not None and self.previous.flap.flapping

    @property
    def last(self) -> AlertReceived:
        return self.alerts[-1]


@dataclass(frozen=True)
class _Held:
    """A NEW alert occurrence triage held back: its decision, and what held it
    (`alert:<fingerprint>`, `silence:<id>` or `maintenance:<id>`)."""

    alert: AlertReceived
    decision: str
    held_by: str
    group_key: str

    @property
    def inhibitor(self) -> str | None:
        kind, _, ref = self.held_by.partition(":")
        return ref if kind == "alert" else None


def _held_again(
    alert: AlertReceived, record: AlertRecord, stored: StoredState | None
) -> _Held | None:
    """The recorded NEW occurrence `alert` came again and was held back: what held it, as
    recorded (its `alert_held` event is then decided again by the same rule)."""
    if (
        stored is None
        or record.occurrence_event_id != alert.event_id
        or record.incident_id is not None
    ):
        return None
    held_by, decision = stored.doc.get("held_by"), stored.doc.get("decision")
    if not isinstance(held_by, str) or not isinstance(decision, str):
        return None
    return _Held(alert, decision, held_by, record.group_key)


@dataclass
class _Round:
    steps: list[_Step] = field(default_factory=list)
    # Work that finishes what an earlier delivery recorded but may not have published.
    reannounce: list[tuple[AlertReceived, AlertRecord]] = field(default_factory=list)
    # Recorded held occurrences whose `alert_held` event may not have been published.
    reheld: list[_Held] = field(default_factory=list)


class AlertTriage:
    def __init__(
        self,
        bus: Bus,
        store: TriageStore,
        config: TriageConfig | Current[TriageConfig],
        silences: SilencesInForce | None = None,
        clock: Clock | None = None,
        *,
        windows: WindowsInForce | None = None,
        changes: ChangeStore | None = None,
    ) -> None:
        self._bus = bus
        self._store = store
        # A reload swaps the section; read it through `.current` each time (live_config.py).
        self._live = Fixed(config) if isinstance(config, TriageConfig) else config
        self._silences = silences if silences is not None else no_silences()
        self._windows = windows if windows is not None else no_windows()
        self._changes = changes  # an opening incident carries its service's recent changes
        self._sources = Refreshed(self._firing_sources, clock or SystemClock())
        # Outcomes of the batch being triaged, counted into the metrics once at its end.
        self._outcomes: Counter[tuple[str, str]] = Counter()

    @property
    def _config(self) -> TriageConfig:
        return self._live.current

    async def _firing_sources(self, _: datetime) -> list[SourceAlert]:
        if not self._config.inhibit_rules:
            return []
        return await self._store.firing_sources()

    async def handle(self, alert: AlertReceived) -> None:
        await self.handle_batch([alert])

    async def handle_batch(self, alerts: Sequence[AlertReceived]) -> None:
        if not alerts:
            return
        by_fingerprint: dict[str, list[_Pending]] = {}
        for n, alert in enumerate(alerts):
            by_fingerprint.setdefault(alert.fingerprint, []).append(_Pending(n, alert))
        stored = await self._store.get_alerts(list(by_fingerprint))
        working: dict[str, _Working] = {}
        for fingerprint, pending in by_fingerprint.items():
            state = stored.get(fingerprint)
            record = state.record if state is not None else None
            working[fingerprint] = _Working(record, state, _unrecorded(record, pending))
        silences = await self._silences.current()
        windows = await self._windows.current()
        sources = {s.fingerprint: s for s in await self._sources.current()}
        source_seen = False
        try:
            while True:
                round_ = self._next_round(working)
                if not round_.steps and not round_.reannounce:
                    return
                for alert, record in round_.reannounce:
                    await self._finish_recorded(alert, record)
                if round_.reheld:
                    reheld = await self._held_events(round_.reheld, {})
                    if reheld:
                        await self._bus.publish_many(INCIDENTS_EVENTS, reheld)
                if round_.steps:
                    source_seen |= await self._triage_round(
                        round_.steps, silences, windows, sources
                    )
                    for step in round_.steps:
                        self._advance(working[step.last.fingerprint], step)
        finally:
            if source_seen:
                # Recorded (or maybe recorded): this process's next alerts see it at once.
                self._sources.invalidate()
            for (service_id, outcome), n in self._outcomes.items():
                ALERTS_TRIAGED.labels(outcome=outcome).inc(n)
                ALERTS_BY_SERVICE.labels(service=service_id, outcome=outcome).inc(n)
            self._outcomes.clear()

    # -- planning a round ----------------------------------------------------------------

    def _next_round(self, working: dict[str, _Working]) -> _Round:
        round_ = _Round()
        for state in working.values():
            while state.pending:
                item = state.pending.pop(0)
                if item.recorded:
                    if state.record is not None:
                        round_.reannounce.append((item.alert, state.record))
                        held = _held_again(item.alert, state.record, state.stored)
                        if held is not None:
                            round_.reheld.append(held)
                    continue
                step = self._plan(state, item)
                if step is None:
                    continue  # a retriage the alert's later changes made moot
                if step.occurrence in (Occurrence.REPEAT, Occurrence.RESOLVED_REPEAT):
                    # A run of repeats changes nothing but the count and the last fields.
                    status = step.last.status
                    while (
                        state.pending
                        and state.pending[0].alert.status is status
                        and not state.pending[0].alert.correlation_id.startswith(RETRIAGE)
                    ):
                        step.alerts.append(self._completed(state, state.pending.pop(0).alert))
                step.same_content = state.says(step.last)
                step.flap = self._flap(step)
                round_.steps.append(step)
                break
        # Batch order across fingerprints too (as one at a time would have seen them).
        round_.steps.sort(key=lambda step: step.position)
        return round_

    def _flap(self, step: _Step) -> FlapState | None:
        rule = self._config.flapping_rule(step.last.service_id)
        if rule is None:
            return None
        previous = step.previous
        changed = step.occurrence is Occurrence.RESOLVED or (
            step.occurrence is Occurrence.NEW
            and previous is not None
            and previous.status is AlertStatus.RESOLVED
        )
        before = previous.flap if previous is not None else NOT_FLAPPING
        return track(rule, before, changed, step.last.occurred_at)

    @staticmethod
    def _completed(state: _Working, alert: AlertReceived) -> AlertReceived:
        """A resolve completed with what the stored alert says (content.py)."""
        if state.record is None or alert.status is not AlertStatus.RESOLVED:
            return alert
        stored = state.content()
        return keep_trigger_content(stored, alert) if stored is not None else alert

    def _plan(self, state: _Working, item: _Pending) -> _Step | None:
        previous = state.record
        alert = self._completed(state, item.alert)
        labels = {label.name: label.value for label in alert.labels}
        alert, routed = self._route(alert, labels)
        rule = self._config.grouping_rule(alert.service_id)
        key = group_key(alert.service_id, alert.alertname, labels, rule)
        if previous is not None and alert.status is AlertStatus.RESOLVED:
            # A resolve updates only what it carries, and never moves the alert to a group.
            key = previous.group_key
        if alert.correlation_id.startswith(RETRIAGE) and (
            previous is None
            or alert.event_id != retriage_event_id(alert.fingerprint, previous.last_event_id)
        ):
            return None  # the alert changed (resolved, fired again) after the sweep read it
        occurrence = classify(
            AlertState(previous.status, previous.incident_id) if previous else None, alert
        )
        source = is_source(self._config.inhibitions, labels)
        return _Step(
            item.position, [alert], previous, occurrence, key, labels, routed, source, rule=rule
        )

    def _advance(self, state: _Working, step: _Step) -> None:
        last = step.last
        before = state.record
        new = step.occurrence is Occurrence.NEW
        state.record = AlertRecord(
            fingerprint=last.fingerprint,
            status=last.status,
            incident_id=step.incident_id if new else (before.incident_id if before else None),
            group_key=step.key,
            last_event_id=last.event_id,
            occurrence_event_id=last.event_id
            if new
            else (before.occurrence_event_id if before else None),
            count=(before.count if before else 0) + len(step.alerts),
            flap=step.flap if step.flap is not None else (before.flap if before else NOT_FLAPPING),
        )
        state.latest = last  # a resolve was completed with the stored content

    # -- a round -------------------------------------------------------------------------

    async def _triage_round(
        self,
        steps: list[_Step],
        silences: Sequence[Silence],
        windows: Sequence[MaintenanceWindow],
        sources: dict[str, SourceAlert],
    ) -> bool:
        rules = self._config.inhibitions
        source_seen = False
        joining: dict[str, list[_Step]] = {}  # group key -> NEW steps that open or join it
        for step in steps:
            alert = step.last
            source_seen |= step.source
            if step.source and alert.status is AlertStatus.FIRING:
                # Seen by the alerts after it in this batch, as one at a time would see it.
                sources[alert.fingerprint] = SourceAlert(alert.fingerprint, step.labels)
            elif alert.status is AlertStatus.RESOLVED:
                sources.pop(alert.fingerprint, None)
            if step.flapping and step.occurrence is Occurrence.RESOLVED:
                # Its incident stays open: the next firing is a flap, not a new page.
                self._count(alert, "flapping")
                step.decision = "flapping" + step.routed
                continue
            if step.occurrence is not Occurrence.NEW:
                self._count(alert, step.occurrence.value, len(step.alerts))
                continue
            silence = silenced_by(silences, step.labels, alert.occurred_at)
            if silence is not None:
                # Recorded, attached to nothing: the alert is triaged once the silence ended
                # (see unsilence.py).
                self._count(alert, "silenced")
                step.decision = f"silenced by {silence.id}" + step.routed
                step.held_by = f"silence:{silence.id}"
                continue
            window = in_maintenance(windows, alert.service_id, alert.occurred_at)
            if window is not None:
                # Held like a silenced alert, triaged once the window ended (unsilence.py).
                self._count(alert, "maintenance")
                step.decision = f"in maintenance window {window.window_id}" + step.routed
                step.held_by = f"maintenance:{window.window_id}"
                continue
            inhibition = (
                inhibited_by(rules, alert.fingerprint, step.labels, list(sources.values()))
                if rules
                else None
            )
            if inhibition is not None:
                inhibitor, n = inhibition
                self._count(alert, "inhibited")
                step.decision = (
                    f"inhibited by alert {inhibitor.fingerprint} (inhibit_rules[{n}])" + step.routed
                )
                step.held_by = f"alert:{inhibitor.fingerprint}"
                continue
            if await self._stays_in_incident(step):
                self._count(alert, "flapping")
                step.decision = "flapping" + step.routed
                continue
            self._count(alert, step.occurrence.value)
            joining.setdefault(step.key, []).append(step)
        # Open or join first, then record the alerts with their incidents in one write: a
        # crash in between leaves them unrecorded, and the redelivery joins the same
        # incidents again (the ids are derived from the messages).
        for group in joining.values():
            await self._join(group)
        for step in (s for group in joining.values() for s in group if s.opened):
            assert step.incident_id is not None
            await self._link_recurrence(step.incident_id, step.key, step.last)
        members = [(s.incident_id, s.last.fingerprint) for g in joining.values() for s in g]
        if members:
            await self._store.add_members([(i, f) for i, f in members if i is not None])
        by_incident: dict[str, list[_Step]] = {}
        for group in joining.values():
            for step in group:
                if step.incident_id is not None:
                    by_incident.setdefault(step.incident_id, []).append(step)
        before: dict[str, IncidentRecord] = {}
        for incident_id, joined in by_incident.items():
            before[incident_id] = await self._raise_for(incident_id, joined)
        await self._flag_flapping(steps)
        await self._store.record_alerts([self._write(step) for step in steps])
        events: list[tuple[str, IncidentEvent]] = []
        for step in steps:
            if step.flapped_into is not None:
                kind = IncidentEventKind.ALERT_ADDED  # adds a line to the timeline, pages nobody
                events += await self._events(step.flapped_into, [(step.last, kind)])
        for incident_id, joined in by_incident.items():
            events += await self._events(
                incident_id,
                [
                    (
                        s.last,
                        IncidentEventKind.OPENED if s.opened else IncidentEventKind.ALERT_ADDED,
                    )
                    for s in joined
                ],
                before.get(incident_id),
            )
        resolving: dict[str, _Step] = {}
        for step in steps:
            previous = step.previous
            if previous is None or not previous.incident_id or step.flapping:
                continue
            held_open = step.was_flapping and step.last.status is AlertStatus.RESOLVED
            if step.occurrence is Occurrence.RESOLVED or held_open:
                resolving[previous.incident_id] = step  # the last resolve of each incident
        for incident_id, step in resolving.items():
            assert step.previous is not None
            events += await self._resolved_if_quiet(step.last, incident_id, step.previous.group_key)
        events += await self._held(steps)  # after the opening of an incident it relates to
        if events:
            await self._bus.publish_many(INCIDENTS_EVENTS, events)
        return source_seen

    async def _held(self, steps: Sequence[_Step]) -> list[tuple[str, IncidentEvent]]:
        """An `alert_held` event for each NEW alert held back (see `_held_events`)."""
        held = [
            _Held(s.last, s.decision, s.held_by, s.key)
            for s in steps
            if s.held_by is not None and s.decision is not None
        ]
        in_round = {s.last.fingerprint: s.incident_id for s in steps if s.incident_id}
        return await self._held_events(held, in_round)

    async def _held_events(
        self, held: Sequence[_Held], in_round: Mapping[str, str | None]
    ) -> list[tuple[str, IncidentEvent]]:
        """An `alert_held` event for each alert held back that relates to an open incident:
        an inhibited alert to its source alert's incident, a silenced or maintenance-held one
        to its group's open incident. That incident's timeline says what triage held back, and
        why. The ids derive from the held occurrence: a redelivery publishes the same."""
        if not held:
            return []
        inhibitors = {h.alert.fingerprint: h.inhibitor for h in held if h.inhibitor is not None}
        missing = [f for f in inhibitors.values() if f not in in_round]
        stored = await self._store.get_alerts(missing) if missing else {}
        group_keys = [h.group_key for h in held if h.inhibitor is None]
        groups = await self._store.open_group_incidents(group_keys) if group_keys else {}
        incidents: dict[str, tuple[IncidentRecord, int] | None] = {}
        events: list[tuple[str, IncidentEvent]] = []
        for item in held:
            incident_id: str | None
            if item.inhibitor is not None:
                incident_id = in_round.get(item.inhibitor)
                if incident_id is None:
                    state = stored.get(item.inhibitor)
                    incident_id = state.record.incident_id if state is not None else None
            else:
                incident_id = groups.get(item.group_key)
            if incident_id is None:
                continue
            if incident_id not in incidents:
                incident = await self._store.get_incident(incident_id)
                incidents[incident_id] = (
                    (incident, await self._store.firing_count(incident_id))
                    if incident is not None and incident.status == "open"
                    else None
                )
            found = incidents[incident_id]
            if found is None:
                continue
            incident, firing_count = found
            event = self._event(
                item.alert,
                incident,
                firing_count,
                IncidentEventKind.ALERT_HELD,
                held_event_id(item.alert.event_id),
            ).model_copy(update={"held": item.decision})
            events.append((incident_id, event))
            log.debug("incident %s: alert %s held back", incident_id, item.alert.fingerprint)
        return events

    async def _stays_in_incident(self, step: _Step) -> bool:
        """A flapping alert firing again stays in its incident, if that is still open (a
        person may have resolved it: then it opens or joins one as usual, and pages)."""
        previous = step.previous
        if not step.flapping or previous is None or previous.incident_id is None:
            return False
        incident = await self._store.get_incident(previous.incident_id, with_count=False)
        if incident is None or incident.status != "open":
            return False
        step.incident_id = step.flapped_into = previous.incident_id
        return True

    async def _flag_flapping(self, steps: Sequence[_Step]) -> None:
        """Flag an incident when an alert of it starts flapping; unflag it when it stopped."""
        for step in steps:
            incident_id = step.incident_id or (step.previous.incident_id if step.previous else None)
            if incident_id is None or step.flap is None or step.flapping == step.was_flapping:
                continue
            await self._store.set_flapping(incident_id, step.flapping)
            what = "flapping" if step.flapping else "no longer flapping"
            log.info("incident %s: alert %s %s", incident_id, step.last.fingerprint, what)

    async def _join(self, group: list[_Step]) -> None:
        """Open or join the group's incident for each of its new alerts, in order: one upsert
        for the group, again only for an alert past the window of the incident it would join,
        or for each alert when the group limits its alerts (a place is taken atomically)."""
        current: GroupJoin | None = None
        for step in group:
            alert, rule = step.last, step.rule
            assert rule is not None
            if (
                current is not None
                and rule.max_alerts is None
                and group_takes(rule, current.opened_at, alert.occurred_at)
            ):
                joined = GroupJoin(current.incident_id, False, current.opened_at)
            else:
                severity, reasons = self._assess(alert, step.labels)
                joined = await self._store.join_group(
                    NewIncident(
                        candidate_id=candidate_incident_id(alert.event_id),
                        group_key=step.key,
                        service_id=alert.service_id,
                        title=alert.summary,
                        severity=severity,
                        severity_reasons=reasons,
                        opened_at=alert.occurred_at,
                    ),
                    rule,
                )
                current = joined
            step.incident_id, step.opened = joined.incident_id, joined.opened
            how = "opened it" if joined.opened else f"grouped by {rule.describe()}"
            step.decision = f"grouped into incident {joined.incident_id} ({how})" + step.routed

    async def _link_recurrence(self, incident_id: str, key: str, opener: AlertReceived) -> None:
        """Link a new incident to the group's incidents resolved in the 30 days before it."""
        since = opener.occurred_at - RECURRENCE_WINDOW
        found = recurrence(await self._store.resolved_in_group(key, since), opener.occurred_at)
        if await self._store.link_recurrence(incident_id, found) and found is not None:
            INCIDENT_RECURRENCES.labels(service=opener.service_id).inc()
            log.info(
                "incident %s recurs: %d in 30 days, last %s", incident_id, found.count, found.of
            )

    async def _raise_for(self, incident_id: str, joined: list[_Step]) -> IncidentRecord:
        """Make the incident as severe as its most severe new alert (the first of those), and
        one level more for its blast radius once it holds more alerts than the service's
        limit: as one alert at a time would have, but with one read of the incident. Returns
        the incident as it was before."""
        previous = await self._incident(incident_id, with_count=False)
        assessed = [(step, *self._assess(step.last, step.labels)) for step in joined]
        # SEV0 first: the most severe, the first of those if several.
        step, severity, reasons = min(assessed, key=lambda a: list(Severity).index(a[1]))
        await self._raise_severity(incident_id, severity, reasons, step.last.event_id)
        limit = self._config.blast_radius.get(joined[0].last.service_id)
        if limit is not None:
            # The cause is the alert that took the incident past the limit.
            count = (await self._incident(incident_id)).alert_count
            crossing = min(max(limit - (count - len(joined)), 0), len(joined) - 1)
            cause = joined[crossing].last.event_id
            at_cause = count - len(joined) + crossing + 1  # the alerts once the cause joined
            await self._raise_for_blast_radius(incident_id, limit, cause, at_cause)
        return previous

    @staticmethod
    def _write(step: _Step) -> AlertWrite:
        return AlertWrite(
            alert=step.last,
            occurrence=step.occurrence,
            group_key=step.key,
            incident_id=step.incident_id,
            decision=step.decision,
            held_by=step.held_by,
            inhibit_source=step.source,
            count=len(step.alerts),
            first_seen_at=step.alerts[0].occurred_at,
            same_content=step.same_content,
            flap=step.flap,
        )

    # -- redelivery ----------------------------------------------------------------------

    async def _finish_recorded(self, alert: AlertReceived, previous: AlertRecord) -> None:
        """The alert's last recorded occurrence came again: only the publish that followed its
        write may be missing. Do it again, with the same ids."""
        events: list[tuple[str, IncidentEvent]] = []
        if previous.occurrence_event_id == alert.event_id and previous.incident_id:
            opened = previous.incident_id == candidate_incident_id(alert.event_id)
            kind = IncidentEventKind.OPENED if opened else IncidentEventKind.ALERT_ADDED
            events = await self._events(previous.incident_id, [(alert, kind)])
        elif alert.status is AlertStatus.RESOLVED and previous.incident_id:
            events = await self._resolved_if_quiet(alert, previous.incident_id, previous.group_key)
        if events:
            await self._bus.publish_many(INCIDENTS_EVENTS, events)

    # -- shared --------------------------------------------------------------------------

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

    def _count(self, alert: AlertReceived, outcome: str, n: int = 1) -> None:
        self._outcomes[alert.service_id, outcome] += n

    def _assess(
        self, alert: AlertReceived, labels: dict[str, str]
    ) -> tuple[Severity, tuple[str, ...]]:
        return assess_severity(
            alert.severity, self._config.tier(alert.service_id), self._config.severity_rule(labels)
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
            incident = await self._incident(incident_id, with_count=False)
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
        self, incident_id: str, limit: int, cause_event_id: uuid.UUID, alert_count: int
    ) -> None:
        """One level more severe once the incident holds more than `limit` alerts (once: the
        reason it leaves makes a redelivery, or the next alert, change nothing)."""
        for _ in range(_CAS_ATTEMPTS):
            incident = await self._incident(incident_id, with_count=False)
            if incident.status != "open":
                return
            raised = blast_radius_raise(
                incident.severity, incident.severity_reasons, alert_count, limit
            )
            if raised is None:
                return
            new_severity, new_reasons = raised
            if await self._store.raise_severity(
                incident_id, incident.severity, new_severity, new_reasons, cause_event_id
            ):
                return
        raise RuntimeError(f"incident {incident_id}: severity kept changing under us")

    async def _resolved_if_quiet(
        self, alert: AlertReceived, incident_id: str, key: str
    ) -> list[tuple[str, IncidentEvent]]:
        if await self._store.firing_count(incident_id) > 0:
            return []
        await self._store.close(incident_id, key, alert.occurred_at)
        return await self._events(incident_id, [(alert, IncidentEventKind.ALERTS_RESOLVED)])

    async def _incident(self, incident_id: str, *, with_count: bool = True) -> IncidentRecord:
        incident = await self._store.get_incident(incident_id, with_count=with_count)
        if incident is None:
            raise RuntimeError(f"incident {incident_id} vanished while triaging")
        return incident

    async def _events(
        self,
        incident_id: str,
        caused: Sequence[tuple[AlertReceived, IncidentEventKind]],
        before: IncidentRecord | None = None,
    ) -> list[tuple[str, IncidentEvent]]:
        """What these occurrences did to the incident, in order (the incident read once for
        all of them); after an occurrence that raised the severity (as recorded on the
        incident, so a redelivery says it again), that too. Each event says the incident as
        that occurrence left it: the severity `before` until the raise, and the counts less
        the alerts added after it."""
        final = await self._incident(incident_id)
        firing_final = await self._store.firing_count(incident_id)
        raised_at = next(
            (n for n, (a, _) in enumerate(caused) if a.event_id == final.severity_event_id),
            None,
        )
        events: list[tuple[str, IncidentEvent]] = []
        for n, (alert, kind) in enumerate(caused):
            incident = final
            later = len(caused) - 1 - n if kind is not IncidentEventKind.ALERTS_RESOLVED else 0
            if before is not None and (raised_at is None or n < raised_at):
                incident = replace(
                    incident, severity=before.severity, severity_reasons=before.severity_reasons
                )
            incident = replace(incident, alert_count=max(incident.alert_count - later, 0))
            firing_count = max(firing_final - later, 0)
            # The opening alert's time is the incident's opening time.
            changes = (
                await changes_before(self._changes, incident.service_id, alert.occurred_at)
                if kind is IncidentEventKind.OPENED
                else ()
            )
            events.append(
                (
                    incident.id,
                    self._event(
                        alert,
                        incident,
                        firing_count,
                        kind,
                        incident_event_id(alert.event_id),
                        changes,
                    ),
                )
            )
            if kind is not IncidentEventKind.ALERTS_RESOLVED and (
                incident.severity_event_id == alert.event_id
            ):
                events.append(
                    (
                        incident.id,
                        self._event(
                            alert,
                            incident,
                            firing_count,
                            IncidentEventKind.SEVERITY_CHANGED,
                            severity_event_id(alert.event_id),
                        ),
                    )
                )
            # An alert storm adds thousands of alerts to one incident: log those at debug only.
            level = logging.DEBUG if kind is IncidentEventKind.ALERT_ADDED else logging.INFO
            log.log(level, "incident %s: %s (%s)", incident.id, kind.value, incident.severity.value)
        return events

    @staticmethod
    def _event(
        alert: AlertReceived,
        incident: IncidentRecord,
        firing_count: int,
        kind: IncidentEventKind,
        event_id: uuid.UUID,
        changes: tuple[ChangeSummary, ...] = (),
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
            changes=changes,
            flapping=incident.flapping,
            recurrence_of=incident.recurrence_of,
            recurrence_count=incident.recurrence_count,
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
