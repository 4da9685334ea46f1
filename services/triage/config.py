"""Triage's part of the configuration file: what it needs to know of each service (its tier
weighs in the severity). The composition root hands triage a `TriageConfig`."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field

from tocsin.runtime.config_types import StrictModel

DEFAULT_TIER = 2


class TriageConfig(StrictModel):
    service_tiers: Mapping[str, int] = Field(
        default_factory=dict, description="Service id -> tier (0 critical path .. 3 low)."
    )

    def tier(self, service_id: str) -> int:
        return self.service_tiers.get(service_id, DEFAULT_TIER)
