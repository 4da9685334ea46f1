"""Process settings, read once from the environment (prefix `TOCSIN_`) at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tocsin.runtime.durations import parse_duration


def _duration(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        return (
            timedelta(seconds=float(text))
            if text.replace(".", "", 1).isdigit()
            else (parse_duration(text))
        )
    return value


SettingDuration = Annotated[timedelta, BeforeValidator(_duration)]


class Settings(BaseSettings):
    """Everything a Tocsin process needs to reach its infrastructure."""

    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:19092"
    # Prefix of every topic and consumer group (isolates deployments sharing a cluster).
    kafka_namespace: str = ""
    mongo_url: str = "mongodb://127.0.0.1:27018/?directConnection=true&retryWrites=false"
    mongo_database: str = "tocsin"
    admin_token: SecretStr | None = Field(
        default=None, description="Bootstraps the admin API key (Authorization: Bearer ...)."
    )
    config: Path | None = None
    # Where people and receivers reach the operator API (pages link to the incident there),
    # e.g. https://tocsin.example.com; unset, the run mode may use its listening address.
    public_url: str | None = Field(default=None, max_length=1024, pattern=r"^https?://")
    # Every process in one deployment needs a distinct id for timer leases and client ids.
    instance_id: str | None = None
    # Bounded retries of a failing handler before the message goes to `<topic>.dlq`.
    handler_attempts: int = Field(default=5, ge=1, le=50)
    handler_backoff_seconds: float = Field(default=0.2, gt=0)
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    # Contract topics are created with these (production: 3 replicas, min ISR 2).
    kafka_partitions: int = Field(default=4, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_min_insync_replicas: int = Field(default=1, ge=1)
    # `retention.ms` of the topics Tocsin creates (a week: a consumer down longer loses records).
    kafka_retention_hours: float = Field(default=168.0, gt=0)
    # How every Kafka client connects (Strimzi, managed Kafka): TLS and/or SASL.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # CA bundle for the brokers' certificates (SSL, SASL_SSL); unset, the system's trust store.
    kafka_ssl_cafile: Path | None = None
    # `tocsin admin init` retries until Kafka and MongoDB answer within this long.
    init_timeout_seconds: float = Field(default=120.0, gt=0)
    # Kafka evicts a consumer that does not fetch within max.poll.interval; a batch stops taking
    # new records after the budget (the rest is fetched again), which must be well inside it.
    kafka_max_poll_interval_seconds: float = Field(default=300.0, gt=0)
    kafka_batch_budget_seconds: float = Field(default=60.0, gt=0)
    timer_poll_seconds: float = Field(default=0.25, gt=0)
    timer_lease_seconds: float = Field(default=30.0, gt=0)
    # Notifier: a contact failing retryably (timeout, 5xx) is retried with backoff for this
    # long, at most this many attempts, then reported failed (escalation tries the next one).
    notifier_retry_period_seconds: float = Field(default=300.0, gt=0)
    notifier_max_attempts: int = Field(default=30, ge=1, le=1000)
    notifier_backoff_seconds: float = Field(default=1.0, gt=0)
    notifier_backoff_cap_seconds: float = Field(default=30.0, gt=0)
    # Attempts that end in an unexpected error (a bug, not the channel's failure) before the
    # notification is dead-lettered and reported failed.
    notifier_error_attempts: int = Field(default=3, ge=1, le=50)
    # Retention (GoAlert-style cleanup; 0 keeps forever), written as in the config file
    # (`180d`, `12h`, `30s`) or plain seconds. Resolved incidents (with their timeline and
    # memberships) and resolved alerts; delivered or failed notifications; finished timers and
    # recorded command outcomes.
    retention_resolved: SettingDuration = timedelta(days=180)
    retention_notifications: SettingDuration = timedelta(days=30)
    retention_internal: SettingDuration = timedelta(days=7)
    retention_sweep_seconds: float = Field(default=300.0, gt=0)
    otel_console: bool = False
    # SQLite `synchronous` for the embedded bus and store. NORMAL (WAL) survives a kill -9 of
    # the process; an OS crash or power loss may lose the last transactions. FULL fsyncs each.
    embedded_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
