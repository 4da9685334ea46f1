"""`Accepted`: a `Deferred` saying the provider took the message (Twilio answered
`201 queued`): the delivery loop reports `queued` for every notification the message carries
(each gets its own status), then waits for the provider's final status as for any `Deferred`.
Only channels whose provider reports progress later raise it; the others report only a final
outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.notifier.channels.deferred import Deferred


class Accepted(Deferred):
    def __init__(
        self, until: datetime, reason: str, *, notification_ids: Sequence[str], at: datetime
    ) -> None:
        super().__init__(until, reason)
        self.notification_ids = tuple(notification_ids)
        self.at = at
