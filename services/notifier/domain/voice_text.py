"""What a page call says (pure): the incident's severity, service and title, the alert count,
and the keys to press. Several pages bundled into one call are read one after the other, the
most recent few in full.

Written for a text-to-speech voice: severities are said as words ("severity 1"), titles are
cleaned of characters a voice reads out literally (markup, underscores, runs of punctuation)
and cut to a length a person can follow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from schemas import NotificationEvent
from services.notifier.domain.replies import VOICE_MENU
from services.notifier.domain.sms_text import PageFacts

MAX_TITLE = 160
MAX_READ = 5
"""Pages read out in full in one bundled call; the rest are counted."""

_NOISE = re.compile(r"[<>{}\[\]|_*#~^`\\]+")
_SPACES = re.compile(r"\s+")

_EVENT = {
    NotificationEvent.TRIGGERED: "triggered",
    NotificationEvent.ESCALATED: "escalated to you",
    NotificationEvent.ACKNOWLEDGED: "acknowledged",
    NotificationEvent.RESOLVED: "resolved",
    NotificationEvent.REMINDER: "reminder",
}


def speakable(text: str, limit: int = MAX_TITLE) -> str:
    cleaned = _SPACES.sub(" ", _NOISE.sub(" ", text)).strip()
    if len(cleaned) <= limit:
        return cleaned
    return cleaned[:limit].rsplit(" ", 1)[0] + ", and so on"


def _severity(page: PageFacts) -> str:
    return "severity " + page.severity.value.removeprefix("SEV")


def _alerts(count: int) -> str:
    return "1 alert" if count == 1 else f"{count} alerts"


def _change(page: PageFacts) -> str:
    """The last change before the incident, said in full words (one page calls only)."""
    if not page.change:
        return ""
    said = page.change.replace(" min before", " minutes before").replace(
        " h before", " hours before"
    )
    return f" Last change: {speakable(said)}."


def _one(page: PageFacts) -> str:
    return (
        f"{_severity(page)} incident {_EVENT[page.event]} on {speakable(page.service, 60)}: "
        f"{speakable(page.title)}. {_alerts(page.alert_count)}."
    )


def page_speech(pages: Sequence[PageFacts]) -> list[str]:
    """The sentences of a page call, menu last."""
    if not pages:
        raise ValueError("a call reads at least one page")
    if len(pages) == 1:
        return [f"This is Tocsin. {_one(pages[0])}{_change(pages[0])}", VOICE_MENU]
    said = [f"This is Tocsin with {len(pages)} incidents."]
    said.extend(f"Incident {n}: {_one(page)}" for n, page in enumerate(pages[:MAX_READ], 1))
    if len(pages) > MAX_READ:
        said.append(f"And {len(pages) - MAX_READ} more.")
    said.append(VOICE_MENU.replace("Press", "For all of them, press", 1))
    return said
