"""Deterministic ids: a redelivered message must produce the same incident id and event ids, so
that every downstream handler can dedupe on them. Ids are persisted: never change a derivation."""

from __future__ import annotations

import uuid

# The correlation id of the occurrences triage publishes itself (see retriage_event_id).
RETRIAGE = "tocsin-retriage:"

_NAMESPACE = uuid.UUID("6f1c1d2e-4b7a-4e49-9a43-1d0a8f5b2c11")


def candidate_incident_id(occurrence_event_id: uuid.UUID) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"incident:{occurrence_event_id}"))


def incident_event_id(cause_event_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"incident-event:{cause_event_id}")


def severity_event_id(cause_event_id: uuid.UUID) -> uuid.UUID:
    """The `incident.severity_changed` event an alert occurrence caused (besides its own)."""
    return uuid.uuid5(_NAMESPACE, f"severity-event:{cause_event_id}")


def retriage_event_id(fingerprint: str, last_event_id: uuid.UUID | None) -> uuid.UUID:
    """The occurrence triage publishes for a silenced alert still firing once its silence
    ended: the same from every replica sweeping, so the consumer sees one and dedupes the
    rest; a new one after the alert changed (`last_event_id`)."""
    return uuid.uuid5(_NAMESPACE, f"retriage:{fingerprint}:{last_event_id}")


def held_event_id(cause_event_id: uuid.UUID) -> uuid.UUID:
    """The `alert_held` event a held alert occurrence caused on the incident it relates to."""
    return uuid.uuid5(_NAMESPACE, f"held-event:{cause_event_id}")
