"""The heartbeat loop and pings: records pings, and turns missed or resumed pings into alerts on
`alerts.raw`, safely with several ingest replicas.

A state change is claimed with compare-and-set on the heartbeat's `version` (and an empty
outbox), writing the alert into the document's outbox; only the winner publishes it, then
clears the outbox. If the process dies in between, any replica re-publishes an outbox older
than `outbox_stale` with the same `event_id`, which triage dedupes. The next change waits until
the outbox is empty, so a heartbeat's alerts reach the bus in order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from schemas import ALERTS_RAW, AlertReceived, AlertStatus
from services.ingest.domain.heartbeats import Heartbeat, HeartbeatStatus, alert, transition
from services.ingest.metrics import HEARTBEAT_TRANSITIONS
from services.ingest.store import IngestStore, Outbox
from tocsin.runtime.bus import Bus, PublishError
from tocsin.runtime.clock import Clock
from tocsin.runtime.store import StoreUnavailable

log = logging.getLogger(__name__)


class HeartbeatMonitor:
    def __init__(
        self,
        bus: Bus,
        store: IngestStore,
        clock: Clock,
        heartbeat_ids: list[str],
        *,
        poll_seconds: float = 1.0,
        outbox_stale: timedelta = timedelta(seconds=30),
    ) -> None:
        self._bus = bus
        self._store = store
        self._clock = clock
        self._ids = heartbeat_ids
        self._poll_seconds = poll_seconds
        self._outbox_stale = outbox_stale

    async def ping(self, heartbeat_id: str) -> Heartbeat | None:
        """Record a ping durably; resolve at once if the heartbeat was down."""
        if not await self._store.record_ping(heartbeat_id, self._clock.now()):
            return None
        found = await self._store.heartbeats([heartbeat_id])
        if not found:
            return None
        heartbeat, outbox = found[0]
        try:
            await self._settle(heartbeat, outbox, self._clock.now())
        except PublishError as error:
            # The ping is recorded and the resolution sits in the outbox: the loop finishes it.
            log.warning("heartbeat %s: resolution not published yet: %s", heartbeat_id, error)
        return heartbeat

    def watch(self, heartbeat_ids: list[str]) -> None:
        """The heartbeats of a reloaded configuration (removed ones are no longer checked)."""
        self._ids = heartbeat_ids

    async def check_once(self) -> None:
        if not self._ids:
            return
        now = self._clock.now()
        for heartbeat, outbox in await self._store.heartbeats(self._ids):
            await self._settle(heartbeat, outbox, now)

    async def run(self, before_check: Callable[[], Awaitable[None]] | None = None) -> None:
        """The durable loop: check every `poll_seconds`; outages of Kafka or MongoDB are waited
        out (the state is in MongoDB, so nothing is lost), anything else stops the process.
        `before_check`: e.g. applying a reloaded configuration first."""
        while True:
            try:
                if before_check is not None:
                    await before_check()
                await self.check_once()
            except (PublishError, StoreUnavailable) as error:
                log.warning("heartbeat check failed, retrying: %s", error)
            await asyncio.sleep(self._poll_seconds)

    async def _settle(self, heartbeat: Heartbeat, outbox: Outbox | None, now: datetime) -> None:
        if outbox is not None:
            if now - outbox.created_at >= self._outbox_stale:
                await self._publish(heartbeat.id, outbox)
            return
        status = transition(heartbeat, now)
        if status is None:
            return
        event_id = uuid.uuid4()
        message = alert(heartbeat, status, now, event_id)
        entry = Outbox(event_id, message.model_dump_json(), now)
        new_status = HeartbeatStatus.DOWN if status is AlertStatus.FIRING else HeartbeatStatus.UP
        if await self._store.claim_transition(heartbeat, new_status, now, entry):
            HEARTBEAT_TRANSITIONS.labels(heartbeat=heartbeat.id, status=new_status.value).inc()
            log.info("heartbeat %s is %s", heartbeat.id, new_status.value)
            await self._publish(heartbeat.id, entry)

    async def _publish(self, heartbeat_id: str, outbox: Outbox) -> None:
        message = AlertReceived.model_validate_json(outbox.message_json)
        await self._bus.publish(ALERTS_RAW, message.fingerprint, message)
        await self._store.clear_outbox(heartbeat_id, outbox.event_id)
