"""Stakeholder subscribers of a status page (services/notifier/status_consumers.py and
status_notices.py) on the embedded store, with the fake Slack Web API and a real HTTP webhook
receiver: every update reaches every stakeholder of the incident's service, internal ones
marked; a stakeholder scoped to another service hears nothing; a failed send fails the message
and its redelivery tells only those not yet told; the resolve is announced once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from schemas import (
    IncidentEvent,
    IncidentEventKind,
    IncidentLifecycleChanged,
    IncidentUpdatePosted,
    LifecycleStatus,
    Severity,
    UpdateStatus,
)
from services.notifier.config import NotifierConfig
from services.notifier.message_store import MongoMessageStore
from services.notifier.status import StatusService
from services.notifier.status_notices import NoticeFailed
from services.notifier.status_store import StatusStore
from services.notifier.status_views import timestamp
from tests.e2e.harness import WebhookReceiver
from tests.fakes.slack import FakeSlack
from tocsin.runtime.clock import SystemClock
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile
from tocsin.runtime.live_config import Fixed
from tocsin.runtime.mongo import Document

NOW = datetime.now(UTC)


@dataclass
class Rig:
    status: StatusService
    slack: FakeSlack
    hook: WebhookReceiver

    def slack_texts(self, channel: str) -> list[str]:
        return [m.text for m in self.slack.messages(channel=channel)]

    def hook_updates(self) -> list[tuple[str, bool]]:
        return [
            (p.body["incident_update"]["status"], p.body["public"])
            for p in self.hook.snapshot()
            if p.status == 200
        ]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    slack = FakeSlack().start()
    hook = WebhookReceiver()
    hook.start()
    config = NotifierConfig.model_validate(
        {
            "public_url": "https://tocsin.example.com",
            "providers": {
                "slack": {
                    "bot_token": slack.bot_token,
                    "signing_secret": slack.signing_secret,
                    "base_url": slack.base_url,
                }
            },
            "status_pages": [
                {
                    "id": "public",
                    "title": "Example status",
                    "components": [
                        {"id": "checkout", "name": "Checkout", "services": ["checkout"]},
                        {"id": "search", "name": "Search", "services": ["search"]},
                    ],
                    "subscribers": [
                        {"type": "webhook", "address": hook.url("/status")},
                        {"type": "slack", "address": "C0CHECKOUT", "services": ["checkout"]},
                        {"type": "slack", "address": "C0SEARCH", "services": ["search"]},
                    ],
                }
            ],
        }
    )
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    database = cast(AsyncDatabase[Document], EmbeddedDatabase(file))
    store = StatusStore(database)
    await store.ensure_indexes()
    async with httpx.AsyncClient() as client:
        status = StatusService(
            store, Fixed(config), SystemClock(), client, MongoMessageStore(database)
        )
        try:
            yield Rig(status, slack, hook)
        finally:
            slack.stop()
            hook.stop()
            file.close()


def opened() -> IncidentEvent:
    return IncidentEvent(
        occurred_at=NOW,
        correlation_id="inc-1",
        kind=IncidentEventKind.OPENED,
        incident_id="inc-1",
        service_id="checkout",
        group_key="checkout/Down",
        title="Postgres primary db-7 down",
        severity=Severity.SEV0,
        alert_count=1,
        firing_count=1,
    )


def posted(message: str, *, public: bool, minutes: int) -> IncidentUpdatePosted:
    return IncidentUpdatePosted(
        occurred_at=NOW + timedelta(minutes=minutes),
        correlation_id="inc-1",
        incident_id="inc-1",
        service_id="checkout",
        status=UpdateStatus.IDENTIFIED,
        message=message,
        public=public,
    )


async def test_stakeholders_hear_every_update_once(rig: Rig) -> None:
    consumers = rig.status.consumers
    await consumers.on_incident_event(opened())
    assert rig.hook_updates() == [("investigating", True)]
    [first] = rig.slack_texts("C0CHECKOUT")
    assert "Checkout: investigating an issue" in first
    assert "db-7" not in first  # the public name, not the alert's title

    await consumers.on_update(posted("db-7 failed over; replica lag.", public=False, minutes=5))
    assert rig.hook_updates()[-1] == ("identified", False)
    assert rig.slack_texts("C0CHECKOUT")[-1].startswith("[internal, not on the public page]")

    # The webhook fails once: the message fails, and its redelivery tells only the webhook.
    rig.hook.fail_next = 1
    public = posted("We found the cause and are fixing it.", public=True, minutes=9)
    with pytest.raises(NoticeFailed):
        await consumers.on_update(public)
    assert len(rig.slack_texts("C0CHECKOUT")) == 3
    await consumers.on_update(public)
    assert rig.hook_updates()[-1] == ("identified", True)
    assert len(rig.slack_texts("C0CHECKOUT")) == 3
    # The webhook says when the update was posted, as Statuspage's `incident_update` does.
    last = rig.hook.snapshot()[-1].body["incident_update"]
    assert last["created_at"] == timestamp(NOW + timedelta(minutes=9))

    resolved = IncidentLifecycleChanged(
        occurred_at=NOW + timedelta(minutes=30),
        correlation_id="inc-1",
        incident_id="inc-1",
        service_id="checkout",
        status=LifecycleStatus.RESOLVED,
    )
    await consumers.on_lifecycle(resolved)
    await consumers.on_lifecycle(resolved)  # redelivered: nobody is told twice
    assert [s for s, _ in rig.hook_updates()] == [
        "investigating",
        "identified",
        "identified",
        "resolved",
    ]
    assert len(rig.slack_texts("C0CHECKOUT")) == 4
    assert rig.slack_texts("C0SEARCH") == []

    # What the page says now: resolved, with the public updates only.
    view = await rig.status.pages.view("public")
    assert view is not None
    (past,) = view.history
    assert [u.status.value for u in past.updates] == ["resolved", "identified", "investigating"]
    assert all("db-7" not in u.body for u in past.updates)


async def test_an_update_is_escaped_on_the_page_and_in_the_feed(rig: Rig) -> None:
    consumers = rig.status.consumers
    await consumers.on_incident_event(opened())
    await consumers.on_update(posted('<script>alert("x")</script> & more', public=True, minutes=1))
    html = await rig.status.pages.render("public", "html")
    feed = await rig.status.pages.render("public", "atom")
    assert html is not None
    assert feed is not None
    assert b"<script>" not in html.body
    assert b"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in html.body
    assert b"<script>" not in feed.body
    assert b"&lt;script&gt;" in feed.body
