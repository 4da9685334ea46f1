"""`Deferred`: a channel's answer that the notification is neither delivered nor failed yet and
is to be tried again at `until`: a page held by a contact's rate limit (it goes out with the
next bundle), or a message the provider took whose delivery receipt has not come yet. The
delivery loop puts the notification back in the queue, due then; it is not an attempt, and the
retry period does not run meanwhile. A provider's callback can make it due earlier (the store's
`wake`)."""

from __future__ import annotations

from datetime import datetime


class Deferred(Exception):
    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
