"""Post-incident reviews (pure): the fields of the production-support ticket the team uses, the
status transitions (draft → in_review → published), validation that names the bad field, the
draft pre-filled from the incident, and the Markdown export.

Validation errors are `ReviewProblem(field, reason)`; the API turns them into a 4xx that names
the field. Nothing here reads a clock or a store: `now` and the incident's facts are values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import Field, ValidationError

from schemas import Contract

MAX_TEXT = 20_000
MAX_ITEMS = 200


class ReviewStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"


TRANSITIONS: Mapping[tuple[ReviewStatus, ReviewStatus], str] = {
    (ReviewStatus.DRAFT, ReviewStatus.IN_REVIEW): "submitted for review",
    (ReviewStatus.IN_REVIEW, ReviewStatus.DRAFT): "sent back to draft",
    (ReviewStatus.IN_REVIEW, ReviewStatus.PUBLISHED): "published",
    (ReviewStatus.PUBLISHED, ReviewStatus.IN_REVIEW): "reopened for review",
}
"""The status changes a review allows, and how the timeline words each."""


class ReviewProblem(ValueError):
    """Bad input, naming the field (`five_whys[2].answer`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Impact(Contract):
    start: datetime | None = None
    end: datetime | None = None
    components: tuple[str, ...] = Field(default=(), max_length=MAX_ITEMS)
    customers: str = Field(default="", max_length=MAX_TEXT)


class Why(Contract):
    question: str = Field(max_length=MAX_TEXT)
    answer: str = Field(default="", max_length=MAX_TEXT)


class ReviewTimelineItem(Contract):
    at: datetime
    text: str = Field(max_length=MAX_TEXT)
    actor: str | None = Field(default=None, max_length=200)


class ReviewContent(Contract):
    """Everything a person writes in a review (all of it editable)."""

    original_report: str = Field(default="", max_length=MAX_TEXT)
    symptoms: str = Field(default="", max_length=MAX_TEXT)
    impact: Impact = Impact()
    timeline: tuple[ReviewTimelineItem, ...] = Field(default=(), max_length=1000)
    root_causes: tuple[str, ...] = Field(default=(), max_length=MAX_ITEMS)
    five_whys: tuple[Why, ...] = Field(default=(), max_length=MAX_ITEMS)
    symptom_fix: str = Field(default="", max_length=MAX_TEXT)
    root_cause_fix: str = Field(default="", max_length=MAX_TEXT)
    prevention: str = Field(default="", max_length=MAX_TEXT)
    lessons: str = Field(default="", max_length=MAX_TEXT)


EDITABLE = frozenset(ReviewContent.model_fields)


@dataclass(frozen=True)
class IncidentFacts:
    """What a review is pre-filled from."""

    id: str
    title: str
    severity: str
    service_id: str
    opened_at: datetime
    resolved_at: datetime | None
    first_alert: str | None
    timeline: Sequence[ReviewTimelineItem]


def prefilled(facts: IncidentFacts, given: Mapping[str, object]) -> ReviewContent:
    """A new review: what the author gave, and the rest filled from the incident (original
    report, impact window and component, the timeline)."""
    report = f"{facts.title} ({facts.severity} on {facts.service_id})"
    if facts.first_alert:
        report += f": {facts.first_alert}"
    defaults: dict[str, object] = {
        "original_report": report,
        "impact": {
            "start": facts.opened_at,
            "end": facts.resolved_at,
            "components": [facts.service_id],
        },
        "timeline": [item.model_dump() for item in facts.timeline],
    }
    return validated({**defaults, **given})


def validated(fields: Mapping[str, object]) -> ReviewContent:
    """The content, or ReviewProblem naming the first bad field."""
    try:
        content = ReviewContent.model_validate(dict(fields))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(
            f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]
        ).replace(".[", "[")
        raise ReviewProblem(where or "body", first["msg"]) from None
    impact = content.impact
    if impact.start is not None and impact.end is not None and impact.end < impact.start:
        raise ReviewProblem("impact.end", "is before impact.start")
    for n, why in enumerate(content.five_whys):
        if not why.question.strip():
            raise ReviewProblem(f"five_whys[{n}].question", "is empty")
    for n, cause in enumerate(content.root_causes):
        if not cause.strip():
            raise ReviewProblem(f"root_causes[{n}]", "is empty")
    return content


def patched(content: ReviewContent, changes: Mapping[str, object]) -> ReviewContent:
    """`content` with the given top-level fields replaced (a list or `impact` is replaced
    whole)."""
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise ReviewProblem(unknown[0], "is not a review field")
    return validated({**content.model_dump(), **changes})


def transition(current: ReviewStatus, wanted: ReviewStatus, content: ReviewContent) -> str | None:
    """The timeline's words for the change, None when the status stays; ReviewProblem when the
    change is not allowed or a published review lacks what publishing needs."""
    if wanted is current:
        return None
    words = TRANSITIONS.get((current, wanted))
    if words is None:
        allowed = sorted(to.value for (src, to) in TRANSITIONS if src is current)
        raise ReviewProblem(
            "status",
            f"cannot go from {current.value} to {wanted.value}; "
            f"from {current.value} it can go to {', '.join(allowed)}",
        )
    if wanted is ReviewStatus.PUBLISHED:
        if not content.root_causes:
            raise ReviewProblem("root_causes", "a published review names at least one")
        if not content.root_cause_fix.strip():
            raise ReviewProblem("root_cause_fix", "a published review says how it is fixed")
    return words


# -- Markdown ------------------------------------------------------------------------------


def _text(value: str) -> str:
    return value.strip() or "_(not written yet)_"


def _at(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "—"


def _cell(value: str) -> str:
    return " ".join(value.split()).replace("|", "\\|")


def markdown(
    incident_id: str,
    title: str,
    severity: str,
    status: ReviewStatus,
    content: ReviewContent,
) -> str:
    """The review as Markdown, every section present (empty ones say so)."""
    impact = content.impact
    lines = [
        f"# Post-incident review: {_cell(title)}",
        "",
        f"Incident `{incident_id}` · {severity} · review status: {status.value}",
        "",
        "## Original report",
        "",
        _text(content.original_report),
        "",
        "## Symptoms",
        "",
        _text(content.symptoms),
        "",
        "## Impact",
        "",
        f"- Start: {_at(impact.start)}",
        f"- End: {_at(impact.end)}",
        f"- Components: {', '.join(impact.components) or '—'}",
        f"- Customers: {_cell(impact.customers) or '—'}",
        "",
        "## Timeline",
        "",
    ]
    if content.timeline:
        lines += ["| Time (UTC) | Who | What |", "|---|---|---|"]
        lines += [
            f"| {item.at:%Y-%m-%d %H:%M:%S} | {_cell(item.actor or '')} | {_cell(item.text)} |"
            for item in content.timeline
        ]
    else:
        lines.append("_(no entries)_")
    lines += ["", "## Root causes", ""]
    lines += [f"- {_cell(cause)}" for cause in content.root_causes] or ["_(not written yet)_"]
    lines += ["", "## Five whys", ""]
    if content.five_whys:
        for n, why in enumerate(content.five_whys, 1):
            lines += [f"{n}. **{_cell(why.question)}**", f"   {_cell(why.answer) or '—'}"]
    else:
        lines.append("_(not written yet)_")
    for heading, value in (
        ("Symptom fix", content.symptom_fix),
        ("Root cause fix", content.root_cause_fix),
        ("Prevention", content.prevention),
        ("Lessons learned", content.lessons),
    ):
        lines += ["", f"## {heading}", "", _text(value)]
    return "\n".join(lines) + "\n"
