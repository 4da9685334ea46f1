"""Grafana unified alerting webhook → `AlertReceived` messages (pure).

Grafana sends Alertmanager's shape plus `orgId`, `state`, `title`, `message`, and per alert
`values`, `valueString`, `silenceURL`, `dashboardURL`, `panelURL`, `imageURL`. Its alerts carry
Grafana's own fingerprint, which is kept. The extra per-alert links and the evaluated values
become annotations (the sender's own annotations win on a name clash).
"""

from __future__ import annotations

import json

from pydantic import Field

from schemas import AlertReceived, AlertStatus
from services.ingest.domain.formats.alertmanager import AlertmanagerAlert, to_message
from services.ingest.domain.formats.common import URL_LIMIT, Lenient, ParseContext, Text, present


class GrafanaAlert(AlertmanagerAlert):
    values: dict[Text, float | None] | None = None
    valueString: Text | None = None
    silenceURL: Text | None = Field(default=None, max_length=URL_LIMIT)
    dashboardURL: Text | None = Field(default=None, max_length=URL_LIMIT)
    panelURL: Text | None = Field(default=None, max_length=URL_LIMIT)
    imageURL: Text | None = Field(default=None, max_length=URL_LIMIT)


class GrafanaWebhook(Lenient):
    version: Text | None = None
    groupKey: Text | None = None
    status: AlertStatus | None = None
    receiver: Text | None = None
    alerts: list[GrafanaAlert] = Field(max_length=10_000)
    orgId: int | None = None
    state: Text | None = None
    title: Text | None = None
    message: Text | None = None


def _grafana_annotations(alert: GrafanaAlert) -> dict[str, str]:
    extra: dict[str, str] = {}
    for name in ("valueString", "silenceURL", "dashboardURL", "panelURL", "imageURL"):
        value = present(getattr(alert, name))
        if value is not None:
            extra[name] = value
    if alert.values:
        extra["values"] = json.dumps(alert.values, sort_keys=True)
    return extra


def parse(document: object, context: ParseContext) -> list[AlertReceived]:
    webhook = GrafanaWebhook.model_validate(document)
    return [
        to_message(
            alert,
            context,
            source="grafana",
            extra_annotations=_grafana_annotations(alert),
            fallback_summary=webhook.title,
        )
        for alert in webhook.alerts
    ]
