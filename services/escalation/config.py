"""Escalation's part of the configuration file: escalation policies, on-call schedules, each
service's policy, and each user's personal notification rules. The composition root reads the
whole file and hands escalation an `EscalationConfig` (through a holder that a reload swaps).

Schedule rules are read by `domain/schedule_parsing.py`, whose errors are in the words of the
person editing the file; the composition adds the key path (`schedules[0].layers[1].rotation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    model_validator,
)

from schemas import Severity
from services.escalation.domain.schedule_parsing import (
    parse_local_start,
    parse_restriction,
    parse_rotation,
    parse_time_zone,
)
from services.escalation.domain.schedules import (
    Layer,
    Restriction,
    Rotation,
    RotationKind,
    Schedule,
)
from services.escalation.domain.targets import ScheduleTarget, Target, UserTarget
from services.escalation.domain.urgency import (
    PageAllLevelsAt,
    Rule,
    SupportHours,
    Urgency,
    urgency_of,
)
from tocsin.runtime.config_problems import ConfigProblems
from tocsin.runtime.config_types import Duration, Identifier, StrictModel, non_empty
from tocsin.runtime.durations import format_duration


def format_rotation(rotation: Rotation) -> str | dict[str, str]:
    """As the file writes it: `weekly`, or `{every: 12h}`."""
    if rotation.kind is RotationKind.EVERY:
        return {"every": format_duration(rotation.period)}
    return rotation.kind.value


def format_restriction(restriction: Restriction) -> dict[str, object]:
    return {
        "days": [day.name.lower() for day in sorted(restriction.days)],
        "from": restriction.start.strftime("%H:%M"),
        "to": restriction.end.strftime("%H:%M"),
    }


def format_local_start(start: datetime) -> str:
    return start.isoformat(timespec="minutes")


# Read and written as the file writes them (a dump of the configuration reads back the same).
RotationValue = Annotated[
    Rotation, PlainValidator(parse_rotation), PlainSerializer(format_rotation)
]
RestrictionValue = Annotated[
    Restriction, PlainValidator(parse_restriction), PlainSerializer(format_restriction)
]
LocalStart = Annotated[
    datetime, PlainValidator(parse_local_start), PlainSerializer(format_local_start)
]
TimeZoneName = Annotated[str, PlainValidator(parse_time_zone)]


class NotificationRuleConfig(StrictModel):
    contact: Identifier
    after: Duration = timedelta(0)
    urgency: Literal["high", "low"] | None = Field(
        default=None, description="The incidents this rule is for; unset, both."
    )

    def rule(self) -> Rule:
        return Rule(self.contact, self.after, Urgency(self.urgency) if self.urgency else None)


class TargetConfig(StrictModel):
    """`{user: alice}` or `{schedule: checkout-primary}` (whoever is on call when it pages)."""

    user: Identifier | None = None
    schedule: Identifier | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TargetConfig:
        if (self.user is None) == (self.schedule is None):
            raise ConfigProblems(
                [
                    (
                        (),
                        "give exactly one of user or schedule, e.g. {user: alice} or "
                        "{schedule: checkout-primary}",
                    )
                ]
            )
        return self

    def target(self) -> Target:
        if self.user is not None:
            return UserTarget(self.user)
        assert self.schedule is not None  # checked above
        return ScheduleTarget(self.schedule)


class LevelConfig(StrictModel):
    delay: Duration = timedelta(0)
    targets: Annotated[tuple[TargetConfig, ...], non_empty("target")]


def _positive(value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise ValueError("must be longer than 0s, e.g. '30m' (leave it out for no timeout)")
    return value


class EscalationPolicyConfig(StrictModel):
    id: Identifier
    repeat: int = Field(default=0, ge=0, le=20)
    levels: Annotated[tuple[LevelConfig, ...], non_empty("level")]
    page_all_levels_at: PageAllLevelsAt | None = Field(
        default=None,
        description="Incidents this severe or more page every level at once; unset, a SEV0 "
        "on a tier-0 service does; `never`, none does.",
    )
    ack_timeout: Annotated[Duration | None, AfterValidator(_positive)] = Field(
        default=None,
        description="An acknowledged incident not resolved within this long is triggered "
        "again and pages from the first level; unset, an acknowledgement lasts.",
    )


def parse_support_hours(value: object) -> SupportHours:
    """`{time_zone: Europe/Berlin, days: [mon, ...], from: "09:00", to: "18:00"}`."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"support_hours {value!r} is not a mapping; write {{time_zone: Europe/Berlin, "
            'days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00"}'
        )
    unknown = set(value) - {"time_zone", "days", "from", "to"}
    if unknown:
        raise ValueError(
            f"support_hours has unknown keys {sorted(map(str, unknown))}; use time_zone, days, "
            "from and to"
        )
    if "time_zone" not in value:
        raise ValueError("support_hours needs time_zone (e.g. time_zone: Europe/Berlin)")
    window = parse_restriction({k: v for k, v in value.items() if k != "time_zone"})
    return SupportHours(parse_time_zone(value["time_zone"]), window)


def format_support_hours(hours: SupportHours) -> dict[str, object]:
    return {"time_zone": hours.time_zone, **format_restriction(hours.window)}


SupportHoursValue = Annotated[
    SupportHours, PlainValidator(parse_support_hours), PlainSerializer(format_support_hours)
]
UrgencyName = Literal["high", "low"]


class ServiceUrgencyConfig(StrictModel):
    """A service's `urgency:` key: the urgency of each severity, and optional support hours
    (outside them every incident of the service is low urgency)."""

    SEV0: UrgencyName = "high"
    SEV1: UrgencyName = "high"
    SEV2: UrgencyName = "low"
    SEV3: UrgencyName = "low"
    support_hours: SupportHoursValue | None = None

    def urgency(self, severity: Severity, at: datetime) -> Urgency:
        by_severity = {sev: Urgency(getattr(self, sev.value)) for sev in Severity}
        return urgency_of(severity, by_severity, self.support_hours, at)


class LayerConfig(StrictModel):
    """A rotation: `users` take turns from `start` (local time in the schedule's zone)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    users: Annotated[tuple[Identifier, ...], non_empty("user")]
    rotation: RotationValue
    start: LocalStart
    restrictions: tuple[RestrictionValue, ...] = ()


class ScheduleConfig(StrictModel):
    id: Identifier
    name: str = Field(min_length=1, max_length=200)
    time_zone: TimeZoneName
    layers: Annotated[tuple[LayerConfig, ...], non_empty("layer")]

    @model_validator(mode="after")
    def _builds(self) -> ScheduleConfig:
        try:
            self.schedule()
        except ValueError as error:
            raise ConfigProblems([((), str(error))]) from None
        return self

    def schedule(self) -> Schedule:
        return Schedule(
            id=self.id,
            name=self.name,
            time_zone=self.time_zone,
            layers=tuple(
                Layer(
                    name=layer.name or f"layer {n + 1}",
                    users=layer.users,
                    rotation=layer.rotation,
                    start=layer.start,
                    restrictions=layer.restrictions,
                )
                for n, layer in enumerate(self.layers)
            ),
        )


class EscalationUser(StrictModel):
    id: str
    name: str
    notification_rules: tuple[NotificationRuleConfig, ...] = ()
    contact_ids: tuple[str, ...] = Field(default=(), description="All contacts, in order.")


class EscalationService(StrictModel):
    """What escalation needs to know of a service."""

    policy: str
    name: str = ""
    tier: int = Field(default=2, ge=0, le=3)
    urgency: ServiceUrgencyConfig = ServiceUrgencyConfig()


class ReviewsConfig(StrictModel):
    """The file's `reviews:` key: post-incident reviews and their reminders."""

    required_for: tuple[Severity, ...] = Field(
        default=(Severity.SEV0, Severity.SEV1),
        description="A resolved incident this severe needs a review; its commander is reminded.",
    )
    allowed_for: tuple[Severity, ...] = Field(
        default=(Severity.SEV0, Severity.SEV1, Severity.SEV2),
        description="Severities a review may be written for (the required ones always may).",
    )
    remind_after: Duration = Field(
        default=timedelta(days=2),
        description="After resolve, a required review not yet started reminds the incident "
        "commander (or the acknowledging responder), then once a day until it is started.",
    )

    def allows(self, severity: Severity) -> bool:
        return severity in self.allowed_for or severity in self.required_for


class EscalationConfig(StrictModel):
    reviews: ReviewsConfig = ReviewsConfig()
    policies: tuple[EscalationPolicyConfig, ...] = ()
    services: Mapping[str, EscalationService] = Field(
        default_factory=dict, description="Service id -> what escalation needs of it."
    )
    users: tuple[EscalationUser, ...] = ()
    schedules: tuple[ScheduleConfig, ...] = ()
    _schedules: dict[str, Schedule] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: object, /) -> None:
        # Built once per configuration (a reload builds a new one): zones are loaded here.
        self._schedules = {s.id: s.schedule() for s in self.schedules}

    def policy_for(self, service_id: str) -> EscalationPolicyConfig | None:
        service = self.services.get(service_id)
        return self.policy(service.policy) if service is not None else None

    def policy(self, policy_id: str) -> EscalationPolicyConfig | None:
        return next((p for p in self.policies if p.id == policy_id), None)

    def schedule(self, schedule_id: str) -> Schedule | None:
        return self._schedules.get(schedule_id)

    def user(self, user_id: str) -> EscalationUser | None:
        return next((u for u in self.users if u.id == user_id), None)
