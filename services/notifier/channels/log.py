"""`log`: write the page to the `tocsin.pages` log (for trying Tocsin out)."""

from __future__ import annotations

import logging

from schemas import NotificationRequested
from services.notifier.config import ContactConfig


class LogChannel:
    def __init__(self) -> None:
        self._log = logging.getLogger("tocsin.pages")

    async def send(self, contact: ContactConfig, request: NotificationRequested) -> None:
        incident = request.incident
        self._log.warning(
            "PAGE %s -> %s/%s: [%s] %s (%s, incident %s, %d alert(s), level %d)",
            request.event.value,
            request.recipient.user_id,
            contact.id,
            incident.severity.value,
            incident.title,
            incident.status,
            incident.id,
            incident.alert_count,
            request.escalation_level,
        )
