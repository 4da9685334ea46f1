"""Wiring of the triage service: the `alerts.raw` consumer."""

from __future__ import annotations

from schemas import ALERTS_RAW, AlertReceived
from services.triage.consumers import AlertTriage
from services.triage.store import TriageStore
from tocsin.bus import Bus, Subscription
from tocsin.config import TocsinConfig
from tocsin.service import Service

CONSUMER_GROUP = "tocsin-triage"


def build(bus: Bus, store: TriageStore, config: TocsinConfig) -> Service:
    triage = AlertTriage(bus, store, config)
    return Service(
        name="triage",
        subscriptions=[Subscription(ALERTS_RAW, CONSUMER_GROUP, AlertReceived, triage.handle)],
        on_start=[store.ensure_indexes],
    )
