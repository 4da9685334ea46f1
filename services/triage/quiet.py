"""The end of flapping for an alert that went quiet while resolved: no occurrence of it comes
any more, so nothing would clear its flag and its incident would stay open (domain/flapping.py
clears the flag only on an occurrence after the quiet period).

A loop reads the resolved alerts still flagged flapping whose last change is older than the
shortest quiet period configured (one query on an index: `flapping`, `status`,
`flap_last_change`; a page at a time), and for each whose service's quiet period has passed
publishes an occurrence on `alerts.raw`: the alert resolved again, now, keyed by its fingerprint
(ordered with its own occurrences). The consumer triages it as any resolve: the alert stops
flapping (recorded, the incident unflagged) and its incident resolves if none of its alerts
fires (`alerts_resolved`, paged to nobody).

Several replicas may sweep at once: the occurrence's event id derives from the alert's last
occurrence (domain/ids.py), so they publish the same one and the consumer dedupes it; if the
alert changed after the sweep read it, the consumer drops the occurrence. Durable: what is due
is read from the store each time."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

from schemas import ALERTS_RAW, AlertReceived, AlertStatus
from schemas.envelope import Envelope
from services.triage.config import TriageConfig
from services.triage.domain.ids import RETRIAGE
from services.triage.retriage import retriage_occurrence, valid_or_none
from services.triage.store import QuietFlapping, TriageStore
from tocsin.runtime.backoff import backoff_delay
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock
from tocsin.runtime.consumer import UNAVAILABLE
from tocsin.runtime.live_config import Current, Fixed

log = logging.getLogger(__name__)

_PAGE = 500
QUIET_CORRELATION = f"{RETRIAGE}flapping-quiet"


class QuietSweep:
    def __init__(
        self,
        bus: Bus,
        store: TriageStore,
        config: TriageConfig | Current[TriageConfig],
        clock: Clock,
        interval: timedelta = timedelta(seconds=30),
    ) -> None:
        self._bus = bus
        self._store = store
        # A reload swaps the section; read it through `.current` each time (live_config.py).
        self._live = Fixed(config) if isinstance(config, TriageConfig) else config
        self._clock = clock
        self._interval = interval

    async def run(self) -> None:
        unavailable = 0
        while True:
            try:
                await self.sweep()
            except UNAVAILABLE as error:
                unavailable += 1
                log.warning("flapping sweep: %s (%s); retrying", type(error).__name__, error)
                await asyncio.sleep(
                    backoff_delay(unavailable, base=0.5, cap=10.0, random=random.random)
                )
                continue
            unavailable = 0
            await asyncio.sleep(self._interval.total_seconds())

    def _quiet(self, service_id: str) -> timedelta | None:
        rule = self._config.flapping_rule(service_id)
        return rule.quiet if rule is not None else None

    @property
    def _config(self) -> TriageConfig:
        return self._live.current

    async def sweep(self) -> int:
        """Publish an occurrence for each resolved flapping alert quiet for its service's
        quiet period; how many."""
        config = self._config
        rules = [config.flapping, *config.flapping_by_service.values()]
        quiet_periods = [rule.rule().quiet for rule in rules if rule is not None]
        if not quiet_periods:
            return 0  # flap detection is off: no alert is flagged any more
        now = self._clock.now()
        published = 0
        after: str | None = None
        while True:
            page = await self._store.quiet_flapping(now - min(quiet_periods), after, _PAGE)
            messages: list[tuple[str, Envelope]] = []
            for alert in page:
                quiet = self._quiet(alert.service_id)
                # No rule for its service any more: it stays as it is (nothing would clear it).
                if quiet is not None and now - alert.last_change >= quiet:
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
            log.info("%d resolved alerts quiet after flapping: triaged again", published)
        return published


def occurrence(alert: QuietFlapping, now: datetime) -> AlertReceived:
    return retriage_occurrence(alert, now, AlertStatus.RESOLVED, QUIET_CORRELATION)


def _occurrence_or_none(alert: QuietFlapping, now: datetime) -> AlertReceived | None:
    return valid_or_none("flapping sweep", alert, lambda: occurrence(alert, now))
