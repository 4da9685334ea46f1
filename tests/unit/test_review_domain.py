"""Post-incident reviews and action items as pure domain (domain/review.py,
domain/action_items.py): the status table row by row, validation naming the field, the
pre-filled draft, the Markdown export, due dates and when an item is overdue."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.escalation.domain.action_items import (
    ActionItem,
    ActionItemProblem,
    ActionItemStatus,
    check_due,
    check_owner,
    check_url,
    is_overdue,
    overdue_from,
)
from services.escalation.domain.review import (
    TRANSITIONS,
    IncidentFacts,
    ReviewContent,
    ReviewProblem,
    ReviewStatus,
    ReviewTimelineItem,
    markdown,
    patched,
    prefilled,
    transition,
    validated,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PUBLISHABLE = ReviewContent(root_causes=("pool too small",), root_cause_fix="size from config")

S = ReviewStatus


@pytest.mark.parametrize(
    ("current", "wanted", "words"),
    [
        (S.DRAFT, S.IN_REVIEW, "submitted for review"),
        (S.IN_REVIEW, S.DRAFT, "sent back to draft"),
        (S.IN_REVIEW, S.PUBLISHED, "published"),
        (S.PUBLISHED, S.IN_REVIEW, "reopened for review"),
    ],
)
def test_each_allowed_status_change(current: S, wanted: S, words: str) -> None:
    assert transition(current, wanted, PUBLISHABLE) == words


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        (current, wanted)
        for current in S
        for wanted in S
        if current is not wanted and (current, wanted) not in TRANSITIONS
    ],
)
def test_every_other_status_change_is_refused(current: S, wanted: S) -> None:
    with pytest.raises(ReviewProblem) as refused:
        transition(current, wanted, PUBLISHABLE)
    assert refused.value.field == "status"


def test_staying_in_a_status_is_no_change() -> None:
    assert all(transition(s, s, ReviewContent()) is None for s in S)


def test_publishing_needs_root_causes_and_their_fix() -> None:
    with pytest.raises(ReviewProblem) as no_cause:
        transition(S.IN_REVIEW, S.PUBLISHED, ReviewContent(root_cause_fix="x"))
    assert no_cause.value.field == "root_causes"
    with pytest.raises(ReviewProblem) as no_fix:
        transition(S.IN_REVIEW, S.PUBLISHED, ReviewContent(root_causes=("x",)))
    assert no_fix.value.field == "root_cause_fix"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"five_whys": [{"question": "", "answer": "a"}]}, "five_whys[0].question"),
        ({"five_whys": [{"question": "q", "answer": 3}]}, "five_whys[0].answer"),
        ({"root_causes": ["ok", "  "]}, "root_causes[1]"),
        ({"impact": {"start": T0, "end": T0 - timedelta(1)}}, "impact.end"),
        ({"impact": {"customers": "x", "blast": 1}}, "impact.blast"),
        ({"summary": "x"}, "summary"),
    ],
)
def test_validation_names_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ReviewProblem) as bad:
        validated(fields)
    assert bad.value.field == field


def facts() -> IncidentFacts:
    return IncidentFacts(
        id="inc-1",
        title="CheckoutErrors",
        severity="SEV1",
        service_id="checkout",
        opened_at=T0,
        resolved_at=T0 + timedelta(hours=1),
        first_alert="Checkout 5xx above 5%",
        timeline=(ReviewTimelineItem(at=T0, text="triggered", actor="triage"),),
    )


def test_a_new_review_is_prefilled_from_the_incident_unless_given() -> None:
    content = prefilled(facts(), {"symptoms": "5xx"})
    assert content.original_report == "CheckoutErrors (SEV1 on checkout): Checkout 5xx above 5%"
    assert (content.impact.start, content.impact.end) == (T0, T0 + timedelta(hours=1))
    assert content.impact.components == ("checkout",)
    assert [item.text for item in content.timeline] == ["triggered"]
    assert content.symptoms == "5xx"
    edited = prefilled(facts(), {"timeline": [], "original_report": "a customer called"})
    assert edited.timeline == ()
    assert edited.original_report == "a customer called"


def test_a_patch_replaces_the_given_fields_only() -> None:
    content = prefilled(facts(), {})
    changed = patched(content, {"lessons": "l", "root_causes": ["a", "b"]})
    assert changed.lessons == "l"
    assert changed.root_causes == ("a", "b")
    assert changed.timeline == content.timeline
    with pytest.raises(ReviewProblem) as bad:
        patched(content, {"status": "published"})
    assert bad.value.field == "status"


def test_markdown_has_every_section_and_escapes_table_cells() -> None:
    content = prefilled(
        facts(),
        {
            "five_whys": [{"question": "Why?", "answer": "Because | pipes"}],
            "timeline": [{"at": T0, "text": "a | b", "actor": "alice"}],
            "prevention": "canaries",
        },
    )
    text = markdown("inc-1", "CheckoutErrors", "SEV1", S.DRAFT, content)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Original report",
        "## Symptoms",
        "## Impact",
        "## Timeline",
        "## Root causes",
        "## Five whys",
        "## Symptom fix",
        "## Root cause fix",
        "## Prevention",
        "## Lessons learned",
    ]
    assert "| 2026-11-25 10:00:00 | alice | a \\| b |" in text
    assert "1. **Why?**" in text
    assert "_(not written yet)_" in text  # symptoms, root causes, ...
    assert "canaries" in text


# -- action items --------------------------------------------------------------------------


def test_an_owner_must_be_a_configured_user() -> None:
    check_owner("alice", {"alice", "bob"})
    with pytest.raises(ActionItemProblem) as bad:
        check_owner("mallory", {"alice", "bob"})
    assert bad.value.field == "owner"
    assert "alice, bob" in str(bad.value)


def test_a_due_date_may_be_today_but_not_before() -> None:
    check_due(T0.date(), T0)
    with pytest.raises(ActionItemProblem) as bad:
        check_due(T0.date() - timedelta(days=1), T0)
    assert bad.value.field == "due"


def test_a_url_is_a_web_link() -> None:
    check_url(None)
    check_url("https://tracker.example/X-1")
    with pytest.raises(ActionItemProblem):
        check_url("javascript:alert(1)")


def test_an_item_is_overdue_once_its_due_day_ended_and_while_open() -> None:
    due = date(2026, 11, 25)
    assert overdue_from(due) == datetime(2026, 11, 26, tzinfo=UTC)
    item = ActionItem(
        id="ai-1",
        incident_id="inc-1",
        title="t",
        owner="alice",
        due=due,
        created_at=T0,
        created_by="api:ops",
        updated_at=T0,
    )
    assert not is_overdue(item, datetime(2026, 11, 25, 23, 59, tzinfo=UTC))
    assert is_overdue(item, datetime(2026, 11, 26, tzinfo=UTC))
    done = item.model_copy(update={"status": ActionItemStatus.DONE})
    assert not is_overdue(done, datetime(2026, 12, 1, tzinfo=UTC))
