"""The text of a page sent by SMS: one segment, never a surprise second message.

An SMS segment holds 160 characters of the GSM-7 alphabet, or 70 UTF-16 units (UCS-2) as soon as
one character is outside it; a longer text is split into several messages that can arrive out of
order and cost one each. So a page is cut to one segment, and what it keeps is chosen in order of
use to a responder woken at 3 a.m.: the reply codes, the severity and the incident's short id,
then the service, then as much of the title as fits.

Encoding, decided here:
- Text is first made GSM-7 where that loses nothing a reader needs: typographic quotes, dashes
  and spaces become their ASCII forms, accented letters without a GSM-7 form lose the accent
  (`ã` → `a`), emoji and other pictographs are dropped. Twilio's "smart encoding" does the same.
- If the text is then GSM-7, the limit is 160 septets (the characters `^{}\\[~]|€` take two) and a
  cut title ends with `...`: three septets, where `…` (not in GSM-7) would turn the whole message
  into UCS-2 and cut the limit to 70.
- If letters of another script remain (a Cyrillic or Japanese title), the message is UCS-2: the
  original text is kept, the limit is 70 units and a cut ends with `…`, which costs one unit there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from schemas import NotificationEvent, Severity

GSM7_SINGLE_SEGMENT = 160
UCS2_SINGLE_SEGMENT = 70

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet, in code order (0x1B is the escape to the extension table)."""

GSM7_EXTENSION = "\f^{}\\[~]|€"
"""Characters of the GSM 03.38 extension table: each is sent as escape + code, two septets."""

_BASIC = frozenset(GSM7_BASIC) - {"\x1b"}
_EXTENSION = frozenset(GSM7_EXTENSION)

_LOOKALIKES = {
    "\u2018": "'",  # left single quote
    "\u2019": "'",  # right single quote
    "\u201a": "'",  # low single quote
    "\u2032": "'",  # prime
    "\u201c": '"',  # left double quote
    "\u201d": '"',  # right double quote
    "\u201e": '"',  # low double quote
    "\u2033": '"',  # double prime
    "\u00ab": '"',  # left guillemet
    "\u00bb": '"',  # right guillemet
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus
    "\u2026": "...",  # ellipsis
    "\u2022": "*",  # bullet
    "\u00d7": "x",  # multiplication sign
    "\u2192": "->",  # right arrow
    "\u2264": "<=",  # less or equal
    "\u2265": ">=",  # greater or equal
    "\u00b0": " deg",  # degree
    "\u00b5": "u",  # micro
}
_WHITESPACE = re.compile(r"\s+")
_CUT_GSM7 = "..."
_CUT_UCS2 = "\u2026"
MIN_TITLE = 20
"""A title is kept to at least this many characters before the layout gets terser."""
MAX_BUNDLED_SERVICE = 24
"""A service name in a bundle is cut to this, so that a long one leaves room for the others."""


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class SmsText:
    text: str
    encoding: Encoding
    length: int
    """In septets for GSM-7, in UTF-16 units for UCS-2: what the segment limit counts."""
    cut: bool
    """Something was shortened with an ellipsis to keep one segment."""


@dataclass(frozen=True)
class PageFacts:
    """What an SMS says about one incident."""

    event: NotificationEvent
    severity: Severity
    service: str
    title: str
    alert_count: int
    incident_id: str
    change: str | None = None  # "deployed checkout v2.3.1 4 min before" (change_lines.py)


def is_gsm7(text: str) -> bool:
    """True if every character of `text` is in the GSM-7 alphabet or its extension table."""
    return all(char in _BASIC or char in _EXTENSION for char in text)


def gsm7_length(text: str) -> int:
    """Septets `text` takes in GSM-7 (extension characters take two). Only for GSM-7 text."""
    return sum(2 if char in _EXTENSION else 1 for char in text)


def ucs2_length(text: str) -> int:
    """UTF-16 units `text` takes in UCS-2 (a character beyond the BMP, e.g. an emoji, takes two)."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def sms_length(text: str) -> tuple[Encoding, int]:
    """The encoding a text is sent in and its length in that encoding's units."""
    if is_gsm7(text):
        return Encoding.GSM7, gsm7_length(text)
    return Encoding.UCS2, ucs2_length(text)


def to_gsm7(text: str) -> str:
    """`text` with look-alikes made GSM-7, accents without a GSM-7 form dropped and pictographs
    removed; letters of other scripts stay (the text is then not GSM-7)."""
    out: list[str] = []
    for char in text:
        if char in _BASIC or char in _EXTENSION:
            out.append(char)
        elif char in _LOOKALIKES:
            out.append(_LOOKALIKES[char])
        elif char.isspace():
            out.append(" ")
        elif _is_pictograph(char):
            continue
        else:
            base = "".join(
                part
                for part in unicodedata.normalize("NFKD", char)
                if not unicodedata.combining(part)
            )
            out.append(base if base and is_gsm7(base) else char)
    return "".join(out)


def short_incident_id(incident_id: str) -> str:
    """The first 8 letters or digits of the incident id: enough to tell a responder's incidents
    apart in a message, and to find the incident in the API by its id prefix."""
    return "".join(char for char in incident_id if char.isascii() and char.isalnum())[:8].lower()


def page_sms_text(page: PageFacts, *, reply_code: int | None, limit: int | None = None) -> SmsText:
    """One page as one SMS segment. `reply_code` is the page's per-number short code, None when
    the message takes no reply. `limit` overrides the segment size (for tests of the layout)."""
    codes = _reply_codes(page.event, reply_code)
    short = short_incident_id(page.incident_id)
    prefix = _EVENT_PREFIX[page.event]
    count = page.alert_count

    def layouts(service: str, title: str) -> list[str]:
        head = f"{prefix}{page.severity.value} {service}: {title}"
        return [
            _join(f"{head} ({_alerts(count)}) #{short}.", codes.full),
            _join(f"{head} ({_alerts(count)}) #{short}", codes.compact),
            _join(f"{head} ({count}) #{short}", codes.terse),
        ]

    change = _clean(to_gsm7(page.change or ""))
    if change and is_gsm7(change):
        # The last change before the incident, only where it fits whole without cutting.
        def with_change(service: str, title: str) -> list[str]:
            head = f"{prefix}{page.severity.value} {service}: {title}"
            return [_join(f"{head} ({_alerts(count)}) #{short}. {change}.", codes.full)]

        try:
            fitted = _fit(with_change, _clean(page.service), _clean(page.title), limit)
        except ValueError:
            fitted = None
        if fitted is not None and not fitted.cut:
            return fitted
    return _fit(layouts, _clean(page.service), _clean(page.title), limit)


def bundle_sms_text(
    pages: Sequence[PageFacts], *, reply_code: int | None, limit: int | None = None
) -> SmsText:
    """Several pages to one number as one SMS ("3 incidents triggered: ..."): each incident by
    severity, service and short id, as many as fit, then "+N more". The reply code stands for
    every incident in the bundle."""
    if not pages:
        raise ValueError("a bundle needs at least one page")
    if len(pages) == 1:
        return page_sms_text(pages[0], reply_code=reply_code, limit=limit)
    events = {page.event for page in pages}
    event = events.pop() if len(events) == 1 else None
    heading = (
        f"{len(pages)} incidents {_EVENT_WORD[event]}:"
        if event is not None
        else f"{len(pages)} incident updates:"
    )
    codes = _bundle_codes(pages, reply_code)
    services = [_clean(page.service) for page in pages]
    gsm_services = [to_gsm7(service) for service in services]
    if all(is_gsm7(service) for service in gsm_services):
        mode, services = _mode(True, limit), [_clean(service) for service in gsm_services]
    else:
        mode = _mode(False, limit)
    entries = [
        f"{page.severity.value} {_cut(service, MAX_BUNDLED_SERVICE, mode)}"
        f" #{short_incident_id(page.incident_id)}"
        for page, service in zip(pages, services, strict=True)
    ]
    ids = [f"#{short_incident_id(page.incident_id)}" for page in pages]
    best: tuple[int, str] | None = None
    tiers = ((entries, codes.full), (entries, codes.compact), (entries, codes.terse))
    for listed, codes_text in (*tiers, (ids, codes.terse)):
        fitted = _bundle_fit(heading, listed, codes_text, mode)
        if fitted is not None and (best is None or fitted[0] > best[0]):
            best = fitted
        if best is not None and best[0] == len(pages):
            break
    if best is None:
        raise ValueError("the segment limit is too small for any bundle text")
    text = best[1]
    return SmsText(text, mode.encoding, mode.measure(text), cut=best[0] < len(pages))


# --- layout -----------------------------------------------------------------------------------

_EVENT_PREFIX = {
    NotificationEvent.TRIGGERED: "",
    NotificationEvent.ESCALATED: "Escalated: ",
    NotificationEvent.ACKNOWLEDGED: "Acked: ",
    NotificationEvent.RESOLVED: "Resolved: ",
    NotificationEvent.REMINDER: "Reminder: ",
}
_EVENT_WORD = {
    NotificationEvent.TRIGGERED: "triggered",
    NotificationEvent.ESCALATED: "escalated",
    NotificationEvent.ACKNOWLEDGED: "acknowledged",
    NotificationEvent.RESOLVED: "resolved",
    NotificationEvent.REMINDER: "with reminders",
}


@dataclass(frozen=True)
class _Codes:
    full: str
    compact: str
    terse: str


_NO_CODES = _Codes("", "", "")


def _reply_codes(event: NotificationEvent, code: int | None) -> _Codes:
    if code is None or event in (NotificationEvent.RESOLVED, NotificationEvent.REMINDER):
        return _NO_CODES
    if event is NotificationEvent.ACKNOWLEDGED:
        return _Codes(f"Reply {code}c resolve", f"{code}c=resolve", f"{code}c=res")
    return _Codes(
        f"Reply {code}a ack, {code}c resolve, {code}e escalate",
        f"{code}a=ack {code}c=resolve {code}e=escalate",
        f"{code}a=ack {code}c=res {code}e=esc",
    )


def _bundle_codes(pages: Sequence[PageFacts], code: int | None) -> _Codes:
    events = {page.event for page in pages}
    if code is None or events <= {NotificationEvent.RESOLVED, NotificationEvent.REMINDER}:
        return _NO_CODES
    if events <= {
        NotificationEvent.ACKNOWLEDGED,
        NotificationEvent.RESOLVED,
        NotificationEvent.REMINDER,
    }:
        return _Codes(f"Reply {code}c resolve all", f"{code}c=resolve all", f"{code}c=res all")
    return _Codes(
        f"Reply {code}a ack all, {code}c resolve all, {code}e escalate all",
        f"All: {code}a=ack {code}c=resolve {code}e=escalate",
        f"All: {code}a=ack {code}c=res {code}e=esc",
    )


def _alerts(count: int) -> str:
    return "1 alert" if count == 1 else f"{count} alerts"


def _join(text: str, codes: str) -> str:
    return f"{text} {codes}" if codes else text


def _clean(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _is_pictograph(char: str) -> bool:
    # Emoji and symbols (So), their variation selectors and joiners: decoration, no meaning lost.
    return (
        unicodedata.category(char) == "So"
        or 0xFE00 <= ord(char) <= 0xFE0F
        or char in "\u200d\u20e3"
        or 0x1F3FB <= ord(char) <= 0x1F3FF
    )


@dataclass(frozen=True)
class _Mode:
    encoding: Encoding
    limit: int
    ellipsis: str
    measure: Callable[[str], int]


def _mode(gsm7: bool, limit: int | None) -> _Mode:
    if gsm7:
        return _Mode(Encoding.GSM7, limit or GSM7_SINGLE_SEGMENT, _CUT_GSM7, gsm7_length)
    return _Mode(Encoding.UCS2, limit or UCS2_SINGLE_SEGMENT, _CUT_UCS2, ucs2_length)


def _cut(text: str, room: int, mode: _Mode) -> str:
    """`text` cut to `room` units with the mode's ellipsis, never inside a character."""
    if mode.measure(text) <= room:
        return text
    budget = room - mode.measure(mode.ellipsis)
    kept: list[str] = []
    used = 0
    for char in text:
        size = mode.measure(char)
        if used + size > budget:
            break
        kept.append(char)
        used += size
    return "".join(kept).rstrip() + mode.ellipsis if budget > 0 else ""


def _fit(
    layouts: Callable[[str, str], list[str]], service: str, title: str, limit: int | None
) -> SmsText:
    gsm_service, gsm_title = to_gsm7(service), to_gsm7(title)
    if is_gsm7(gsm_service) and is_gsm7(gsm_title):
        mode = _mode(True, limit)
        service, title = _clean(gsm_service), _clean(gsm_title)
    else:
        mode = _mode(False, limit)
    candidates = layouts(service, title)
    for index, full in enumerate(candidates):
        if mode.measure(full) <= mode.limit:
            return SmsText(full, mode.encoding, mode.measure(full), cut=False)
        room = mode.limit - mode.measure(layouts(service, "")[index])
        if room >= MIN_TITLE:
            text = layouts(service, _cut(title, room, mode))[index]
            return SmsText(text, mode.encoding, mode.measure(text), cut=True)
    # The tersest layout with a long service: share the room between service and title.
    room = mode.limit - mode.measure(layouts("", "")[-1])
    service = _cut(service, max(room // 2, room - mode.measure(title)), mode)
    title = _cut(title, room - mode.measure(service), mode)
    text = layouts(service, title)[-1]
    if mode.measure(text) > mode.limit:
        raise ValueError("the segment limit is too small for the fixed parts of a page")
    return SmsText(text, mode.encoding, mode.measure(text), cut=True)


def _bundle_fit(
    heading: str, entries: Sequence[str], codes: str, mode: _Mode
) -> tuple[int, str] | None:
    """The heading, as many entries as fit, "+N more" and the codes, with how many entries it
    shows; None if not even one fits."""
    for shown in range(len(entries), 0, -1):
        more = len(entries) - shown
        listed = ", ".join(entries[:shown]) + (f", +{more} more" if more else "")
        text = _join(f"{heading} {listed}.", codes)
        if mode.measure(text) <= mode.limit:
            return shown, text
    return None
