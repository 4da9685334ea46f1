"""The notifier's routes: what providers and responders call back (acknowledge links, button
clicks, replies), one module per provider, included here for the contact types this deployment
can reach."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter

from services.notifier import inbound_email, inbound_slack, inbound_twilio
from services.notifier.ack_links import AckLinks
from services.notifier.config import NotifierConfig
from services.notifier.contact_store import ContactStore
from services.notifier.message_store import MessageStore
from services.notifier.store import NotifierStore
from tocsin.runtime.bus import Bus
from tocsin.runtime.clock import Clock


def router(
    bus: Bus,
    config: NotifierConfig,
    clock: Clock,
    messages: MessageStore,
    *,
    twilio: tuple[ContactStore, NotifierStore] | None = None,
    woken: Callable[[], None] = lambda: None,
) -> APIRouter:
    api = APIRouter()
    providers = config.providers
    if providers.twilio is not None and twilio is not None:
        contacts, queue = twilio
        api.include_router(
            inbound_twilio.router(
                providers.twilio, config.public_url, contacts, queue, bus, clock, woken
            )
        )
    if providers.smtp is not None:
        links = AckLinks(messages, clock, config.public_url)
        api.include_router(inbound_email.router(links, bus, clock))
    if providers.slack is not None:
        api.include_router(inbound_slack.router(providers.slack, config.contacts, bus, clock))
    return api
