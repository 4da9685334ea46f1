"""Wiring of the notifier service: the `notifications.requested` consumer, the delivery loop
and the channels."""

from __future__ import annotations

import httpx

from schemas import NOTIFICATIONS_REQUESTED, NotificationRequested
from services.notifier.channels import channels
from services.notifier.consumers import Delivery
from services.notifier.store import NotifierStore
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.bus import Bus, Subscription
from tocsin.runtime.clock import Clock
from tocsin.runtime.service import Service

CONSUMER_GROUP = "tocsin-notifier"


def build(
    bus: Bus,
    store: NotifierStore,
    config: TocsinConfig,
    clock: Clock,
    client: httpx.AsyncClient,
    *,
    instance_id: str,
    poll_seconds: float = 0.25,
) -> Service:
    delivery = Delivery(
        bus, store, config, channels(client), clock, instance_id, poll_seconds=poll_seconds
    )
    return Service(
        name="notifier",
        subscriptions=[
            Subscription(
                NOTIFICATIONS_REQUESTED, CONSUMER_GROUP, NotificationRequested, delivery.handle
            )
        ],
        loops=[delivery.run],
        on_start=[store.ensure_indexes],
    )
