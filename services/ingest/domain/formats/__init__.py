"""Sender formats as data: an integration's `type` names one entry of `FORMATS`.

Each entry says how to parse a body into `AlertReceived` messages (a pure function), which
request signature it may carry, whether one request holds many alerts, and the JSON Schema that
documents its body. No plugin machinery: add a module and a line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from schemas import AlertReceived
from services.ingest.domain.formats import alertmanager, datadog, generic, grafana, pagerduty
from services.ingest.domain.formats.common import ParseContext

Parser = Callable[[object, ParseContext], list[AlertReceived]]
Signature = Literal["grafana", "tocsin"]


@dataclass(frozen=True)
class Format:
    name: str
    parse: Parser
    body_models: tuple[type[BaseModel], ...]
    signature: Signature | None = None
    many_alerts: bool = True
    # PagerDuty senders expect PagerDuty's answers (400 "invalid event", 429) on any route.
    pagerduty_answers: bool = False

    def body_schema(self) -> dict[str, Any]:
        schemas = [model.model_json_schema() for model in self.body_models]
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}


FORMATS: Mapping[str, Format] = {
    "alertmanager": Format("alertmanager", alertmanager.parse, (alertmanager.AlertmanagerWebhook,)),
    "grafana": Format("grafana", grafana.parse, (grafana.GrafanaWebhook,), signature="grafana"),
    "datadog": Format("datadog", datadog.parse, (datadog.DatadogWebhook,), many_alerts=False),
    "pagerduty": Format(
        "pagerduty",
        pagerduty.parse,
        (pagerduty.PagerDutyEvent,),
        many_alerts=False,
        pagerduty_answers=True,
    ),
    "generic": Format(
        "generic",
        generic.parse,
        (generic.GenericAlert, generic.GenericBatch),
        signature="tocsin",
    ),
}

__all__ = ["FORMATS", "Format", "ParseContext"]
