"""Triage of held alerts once nothing holds them: a loop finds firing alerts a silence, a
maintenance window or an inhibition held, and for each that no silence in force, no window in
force on its service and no firing source alert holds any more publishes an occurrence on
`alerts.raw` (keyed by its fingerprint, so it is ordered with the alert's own occurrences).
The consumer triages it as a first firing: it opens or joins an incident and pages.

Several replicas may sweep at once: the occurrence's event id derives from the alert's last
occurrence, so they publish the same one and the consumer dedupes them; if the alert changed
after the sweep read it (resolved, fired again), the consumer drops the occurrence."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

from schemas import ALERTS_RAW, AlertReceived, AlertStatus
from schemas.envelope import Envelope
from services.triage.config import TriageConfig
from services.triage.domain.ids import RETRIAGE
from services.triage.domain.inhibition import inhibited_by
from services.triage.domain.maintenance import in_maintenance
from services.triage.domain.silences import silenced_by
from services.triage.maintenance_store import WindowsInForce, no_windows
from services.triage.retriage import retriage_occurrence, valid_or_none
from services.triage.silence_store import SilenceStore
from services.triage.store import HeldAlert, TriageStore
from tocsin.runtime.backoff import backoff_delay
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.consumer import UNAVAILABLE
from tocsin.runtime.live_config import Current, Fixed

log = logging.getLogger(__name__)

_PAGE = 500


class Unsilencer:
    def __init__(
        self,
        bus: Bus,
        store: TriageStore,
        silences: SilenceStore,
        config: TriageConfig | Current[TriageConfig],
        clock: Clock,
        interval: timedelta = timedelta(seconds=5),
        windows: WindowsInForce | None = None,
    ) -> None:
        self._bus = bus
        self._store = store
        self._silences = silences
        # A reload swaps the section; read it through `.current` each time (live_config.py).
        self._live = Fixed(config) if isinstance(config, TriageConfig) else config
        self._clock = clock
        self._interval = interval
        self._windows = windows if windows is not None else no_windows()

    @property
    def _config(self) -> TriageConfig:
        return self._live.current

    async def run(self) -> None:
        unavailable = 0
        while True:
            try:
                await self.sweep()
            except UNAVAILABLE as error:
                unavailable += 1
                log.warning("unsilence loop: %s (%s); retrying", type(error).__name__, error)
                await asyncio.sleep(
                    backoff_delay(unavailable, base=0.5, cap=10.0, random=random.random)
                )
                continue
            unavailable = 0
            await asyncio.sleep(self._interval.total_seconds())

    async def sweep(self) -> int:
        """Publish an occurrence for each held alert nothing holds now; how many."""
        now = self._clock.now()
        in_force = await self._silences.in_force(now)
        windows = await self._windows.current()
        rules = self._config.inhibitions
        sources = await self._store.firing_sources() if rules else []
        published = 0
        after: str | None = None
        while True:
            page = await self._store.held_firing(after, _PAGE)
            messages: list[tuple[str, Envelope]] = []
            for alert in page:
                labels = {label.name: label.value for label in alert.content.labels}
                if (
                    silenced_by(in_force, labels, now) is None
                    and in_maintenance(windows, alert.service_id, now) is None
                    and inhibited_by(rules, alert.fingerprint, labels, sources) is None
                ):
                    message = _occurrence_or_none(alert, now)
                    if message is not None:
                        messages.append((alert.fingerprint, message))
            if messages:
                await self._bus.publish_many(ALERTS_RAW, messages)
                published += len(messages)
            if len(page) < _PAGE:
                break
            after = page[-1].fingerprint
        if published:
            log.info("%d held alerts still firing after what held them ended: triaged", published)
        return published


def occurrence(alert: HeldAlert, now: datetime) -> AlertReceived:
    return retriage_occurrence(alert, now, AlertStatus.FIRING, f"{RETRIAGE}{alert.held_by}")


def _occurrence_or_none(alert: HeldAlert, now: datetime) -> AlertReceived | None:
    return valid_or_none("unsilence sweep", alert, lambda: occurrence(alert, now))
