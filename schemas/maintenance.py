"""`maintenance.windows` (triage → notifier): a maintenance window created, replaced or deleted
through triage's REST API (`/api/v1/maintenance-windows`). The notifier keeps its own copy of
each window so its status pages show the API's windows as scheduled maintenance, as they show
the configuration file's. The window's comment stays private: it is not in the message."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.envelope import Envelope, UtcDatetime


class MaintenanceWindowChanged(Envelope):
    """The window as it is now (`deleted`: it is gone). `event_id` is derived from the window's
    content, so a retried publish of the same change is recognised; the newest `occurred_at`
    wins."""

    kind: Literal["maintenance.window_changed"] = "maintenance.window_changed"
    window_id: str = Field(min_length=1, max_length=100)
    services: tuple[str, ...] = Field(default=(), max_length=1000)
    starts_at: UtcDatetime | None = Field(default=None, description="First occurrence's start.")
    duration_seconds: float = Field(default=0.0, ge=0)
    rrule: str | None = Field(default=None, max_length=1024)
    timezone: str = Field(default="UTC", max_length=100)
    deleted: bool = False


__all__ = ["MaintenanceWindowChanged"]
