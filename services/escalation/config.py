"""Escalation's part of the configuration file: escalation policies, each service's policy, and
each user's personal notification rules. The composition root reads the whole file and hands
escalation an `EscalationConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

from pydantic import Field

from tocsin.runtime.config_types import Duration, Identifier, StrictModel, non_empty


class NotificationRuleConfig(StrictModel):
    contact: Identifier
    after: Duration = timedelta(0)


class TargetConfig(StrictModel):
    user: Identifier


class LevelConfig(StrictModel):
    delay: Duration = timedelta(0)
    targets: Annotated[tuple[TargetConfig, ...], non_empty("target")]


class EscalationPolicyConfig(StrictModel):
    id: Identifier
    repeat: int = Field(default=0, ge=0, le=20)
    levels: Annotated[tuple[LevelConfig, ...], non_empty("level")]


class EscalationUser(StrictModel):
    id: str
    name: str
    notification_rules: tuple[NotificationRuleConfig, ...] = ()
    contact_ids: tuple[str, ...] = Field(default=(), description="All contacts, in order.")


class EscalationConfig(StrictModel):
    policies: tuple[EscalationPolicyConfig, ...] = ()
    service_policies: Mapping[str, str] = Field(
        default_factory=dict, description="Service id -> its escalation policy id."
    )
    users: tuple[EscalationUser, ...] = ()

    def policy_for(self, service_id: str) -> EscalationPolicyConfig | None:
        policy_id = self.service_policies.get(service_id)
        return next((p for p in self.policies if p.id == policy_id), None)
