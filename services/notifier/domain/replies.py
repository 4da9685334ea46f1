"""What a responder's SMS reply or key press asks for (GoAlert-style codes), and what to answer.

Each page (or bundle of pages) sent to a number gets a short code unique among that number's open
pages; the message says e.g. `Reply 4a ack, 4c resolve, 4e escalate`. A reply is `<code><letter>`:
`a` acknowledges, `c` resolves (GoAlert's "close"), `e` escalates now. People type replies on a
phone at night, so the parser forgives case, spaces, quotes copied from the message, a doubled
letter (`4aa`, GoAlert's "all" for bundles) and the words themselves (`4 ack`, `4 resolve`). A
plain `ack` or `resolve` acts on the latest page sent to that number. Anything else gets an
answer that says how to reply, and changes nothing.

On a call, after the page is read out: 4 acknowledges, 6 resolves, 8 escalates now.

Which incident a code names, whether the sender may act on it and doing it idempotently is the
caller's business; this module only reads the text and writes the answers (all GSM-7, one SMS).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum


class ReplyAction(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class CodedReply:
    """`<code><letter>`: act on the page (or bundle) sent to this number with that code."""

    code: int
    action: ReplyAction


@dataclass(frozen=True)
class LatestReply:
    """Plain `ack` / `resolve`: act on the latest page sent to this number."""

    action: ReplyAction


@dataclass(frozen=True)
class UnknownReply:
    """Not a command; `answer` is the SMS to send back."""

    answer: str


SmsReply = CodedReply | LatestReply | UnknownReply

MAX_REPLY_CODE = 999
"""Codes stay short enough to type; a number never has this many open pages."""

_LETTERS = {"a": ReplyAction.ACKNOWLEDGE, "c": ReplyAction.RESOLVE, "e": ReplyAction.ESCALATE}
_WORDS = {
    "ack": ReplyAction.ACKNOWLEDGE,
    "acknowledge": ReplyAction.ACKNOWLEDGE,
    "acknowledged": ReplyAction.ACKNOWLEDGE,
    "close": ReplyAction.RESOLVE,
    "resolve": ReplyAction.RESOLVE,
    "resolved": ReplyAction.RESOLVE,
    "esc": ReplyAction.ESCALATE,
    "escalate": ReplyAction.ESCALATE,
}
_LATEST_WORDS = {
    "ack": ReplyAction.ACKNOWLEDGE,
    "acknowledge": ReplyAction.ACKNOWLEDGE,
    "resolve": ReplyAction.RESOLVE,
}
_CODED = re.compile(r"(?P<code>[0-9]{1,4})\s*(?P<word>[a-z]+)")
_NOISE = re.compile(r"[\"'`.!,;:\u2018\u2019\u201c\u201d]")

HELP_TEXT = (
    "Tocsin: reply with the code from a page, e.g. 4a to acknowledge, 4c to resolve, "
    "4e to escalate. Or reply ack or resolve for the latest page."
)

VOICE_DIGITS = {"4": ReplyAction.ACKNOWLEDGE, "6": ReplyAction.RESOLVE, "8": ReplyAction.ESCALATE}
VOICE_MENU = "Press 4 to acknowledge, 6 to resolve, 8 to escalate now."
VOICE_UNKNOWN = "Sorry, that key does nothing. " + VOICE_MENU


def parse_sms_reply(text: str) -> SmsReply:
    """Read an SMS reply. Never raises: what is not a command gets the help answer."""
    words = _NOISE.sub(" ", text.lower()).split()
    compact = " ".join(words)
    if compact in _LATEST_WORDS:
        return LatestReply(_LATEST_WORDS[compact])
    coded = _CODED.fullmatch(compact)
    if coded is None:
        return UnknownReply(HELP_TEXT)
    code, word = int(coded["code"]), coded["word"]
    action = _action(word)
    if action is None or not 1 <= code <= MAX_REPLY_CODE:
        return UnknownReply(HELP_TEXT)
    return CodedReply(code, action)


def _action(word: str) -> ReplyAction | None:
    if word in _WORDS:
        return _WORDS[word]
    # `a`, and `aa` (GoAlert's "all", sent for bundles): the code already names the bundle.
    if len(set(word)) == 1 and len(word) <= 2 and word[0] in _LETTERS:
        return _LETTERS[word[0]]
    return None


def parse_voice_digits(digits: str) -> ReplyAction | None:
    """The action of the key pressed on a page call; None for any other input (the call then
    says `VOICE_UNKNOWN` and repeats the menu)."""
    return VOICE_DIGITS.get(digits.strip().rstrip("#*"))


def allocate_reply_code(open_codes: Collection[int]) -> int:
    """The smallest code not used by the number's open pages, so codes stay short ("1a")."""
    for code in range(1, MAX_REPLY_CODE + 1):
        if code not in open_codes:
            return code
    raise ValueError(f"all {MAX_REPLY_CODE} reply codes of this number are in use")


# --- answers (one GSM-7 SMS each) -------------------------------------------------------------

_DONE = {
    ReplyAction.ACKNOWLEDGE: "Acknowledged",
    ReplyAction.RESOLVE: "Resolved",
    ReplyAction.ESCALATE: "Escalated",
}


def done_answer(action: ReplyAction, short_ids: Sequence[str]) -> str:
    """The answer once the command is accepted, naming the incidents by short id."""
    if not short_ids:
        raise ValueError("an answer names at least one incident")
    listed = " ".join(f"#{short}" for short in short_ids[:8])
    more = f" and {len(short_ids) - 8} more" if len(short_ids) > 8 else ""
    return f"{_DONE[action]}: {listed}{more}."


def unknown_code_answer(code: int) -> str:
    """The answer to a well-formed code that names no open page of this number."""
    return (
        f"Tocsin: no open page has code {code} on this number (it may be resolved already). "
        "Reply with the code from the latest page, or ack for the latest."
    )


NO_PAGE_ANSWER = "Tocsin: there is no open page to this number to act on."
