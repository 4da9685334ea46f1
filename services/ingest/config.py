"""Ingest's part of the configuration file: integrations (who may send alerts, in which
format, with which limits and signatures) and heartbeats. The composition root reads the whole
file and hands ingest an `IngestConfig`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from tocsin.runtime.config_problems import ConfigProblems
from tocsin.runtime.config_types import Duration, Identifier, StrictModel

IntegrationType = Literal["alertmanager", "grafana", "datadog", "pagerduty", "generic"]
SIGNED_TYPES = ("grafana", "generic")


class IngestLimitsConfig(StrictModel):
    """What one webhook request may carry; past these ingest answers 413 (sizes, counts) or
    422 (a name or value too long), naming the field."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_alerts: int = Field(default=1000, ge=1, le=10_000, description="alerts per request")
    max_labels: int = Field(default=128, ge=1, le=1000, description="labels (and annotations)")
    max_name_length: int = Field(default=256, ge=1, le=1024)
    max_value_length: int = Field(default=8192, ge=1, le=16_384)


class HmacConfig(StrictModel):
    """Shared secret for request signatures: Grafana's `X-Grafana-Alerting-Signature` (hex
    HMAC-SHA256 of the body, or of `timestamp:body` with a timestamp header) or, for generic
    senders, `X-Tocsin-Signature: sha256=<hex>`."""

    secret: SecretStr = Field(min_length=16, description="Never logged.")
    timestamp_header: str | None = Field(default=None, min_length=1, max_length=100)
    max_skew: Duration = timedelta(minutes=5)


class IntegrationRouteConfig(StrictModel):
    """`routes[]`: alerts whose labels match all `matchers` (Alertmanager syntax) go to
    `service` instead of the integration's. Triage applies the routes (it owns the rules and
    the matcher grammar, which the composition root checks when the file loads); ingest only
    carries them in its section of the file."""

    matchers: tuple[Annotated[str, Field(min_length=1, max_length=4096)], ...] = ()
    service: Identifier


class IntegrationConfig(StrictModel):
    id: Identifier
    type: IntegrationType
    token: SecretStr = Field(min_length=16, description="Stored hashed, never logged.")
    service: Identifier
    hmac: HmacConfig | None = None
    limits: IngestLimitsConfig = IngestLimitsConfig()
    rate_limit_per_minute: int = Field(
        default=600, ge=0, le=1_000_000, description="events per minute (pagerduty); 0 = none"
    )
    routes: tuple[IntegrationRouteConfig, ...] = Field(
        default=(), max_length=1000, description="First match wins; else `service`."
    )

    @model_validator(mode="after")
    def _signatures_fit_the_type(self) -> IntegrationConfig:
        if self.hmac is not None and self.type not in SIGNED_TYPES:
            raise ConfigProblems(
                [
                    (
                        ("hmac",),
                        f"signatures are supported for {' and '.join(SIGNED_TYPES)} "
                        f"integrations, not {self.type}",
                    )
                ]
            )
        if self.hmac is not None and self.hmac.timestamp_header and self.type != "grafana":
            raise ConfigProblems(
                [
                    (
                        ("hmac", "timestamp_header"),
                        "only Grafana signs with a timestamp; generic signatures have none",
                    )
                ]
            )
        return self


class HeartbeatConfig(StrictModel):
    """A job that must ping `POST /v1/heartbeats/{token}` at least every `interval` (+ grace);
    a missed ping raises an alert on `service`, the next ping resolves it."""

    id: Identifier
    token: SecretStr = Field(min_length=16, description="Stored hashed, never logged.")
    service: Identifier
    interval: Duration
    grace: Duration = timedelta(0)
    severity: str = Field(default="critical", min_length=1, max_length=64)
    summary: str | None = Field(default=None, min_length=1, max_length=1024)

    @model_validator(mode="after")
    def _interval_is_positive(self) -> HeartbeatConfig:
        if self.interval < timedelta(seconds=1):
            raise ConfigProblems([(("interval",), "must be at least 1s")])
        return self


class IngestConfig(StrictModel):
    integrations: tuple[IntegrationConfig, ...] = ()
    heartbeats: tuple[HeartbeatConfig, ...] = ()
