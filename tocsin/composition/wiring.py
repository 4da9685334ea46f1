"""Building the four services, shared by both ways of running Tocsin: one service per process
(distributed.py) and all of them in one process (embedded.py). A registry maps each service's
name to its `from_parts`, handing it only its own section of the configuration file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from services.escalation import app as escalation
from services.ingest import app as ingest
from services.notifier import app as notifier
from services.triage import app as triage
from tocsin.composition.config import TocsinConfig
from tocsin.runtime.http import ApiKeys, token_digest
from tocsin.runtime.parts import Parts
from tocsin.runtime.service import Service
from tocsin.runtime.settings import Settings

ServiceName = Literal["ingest", "triage", "escalation", "notifier"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("ingest", "triage", "escalation", "notifier")

BUILDERS: Mapping[ServiceName, Callable[[Parts, TocsinConfig], Service]] = {
    "ingest": lambda parts, config: ingest.from_parts(parts, config.ingest()),
    "triage": lambda parts, config: triage.from_parts(parts, config.triage()),
    "escalation": lambda parts, config: escalation.from_parts(parts, config.escalation()),
    "notifier": lambda parts, config: notifier.from_parts(parts, config.notifier()),
}


def api_keys(settings: Settings) -> ApiKeys:
    digests = {}
    if settings.admin_token is not None:
        digests["admin"] = token_digest(settings.admin_token.get_secret_value())
    return ApiKeys(digests)


def build_service(name: ServiceName, parts: Parts, config: TocsinConfig) -> Service:
    return BUILDERS[name](parts, config)
