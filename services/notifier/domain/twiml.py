"""The TwiML documents Tocsin answers Twilio with (pure: text in, XML text out).

- An SMS reply's answer: `<Message>` with the text Twilio sends back to the responder (or an
  empty `<Response/>` for no answer).
- A page call: the page read out inside a `<Gather>` that takes one key; if no key is pressed
  the call goes on to a `<Redirect>` to the same page (it is read again), and after the last
  repeat it says goodbye and hangs up.
- The end of a call: what was done, then `<Hangup/>`.

Every text and URL is escaped: an incident title may hold `<`, `&` or quotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

CONTENT_TYPE = "application/xml"
_PROLOG = '<?xml version="1.0" encoding="UTF-8"?>'
GATHER_TIMEOUT_SECONDS = 8
"""How long a call waits for a key after the page was read, before reading it again."""


def _say(text: str) -> str:
    return f"<Say>{escape(text)}</Say>"


def _document(inner: str) -> str:
    return f"{_PROLOG}<Response>{inner}</Response>"


def message_response(text: str | None) -> str:
    """The answer to an inbound SMS: `text` sent back to the sender, or nothing."""
    if text is None:
        return _document("")
    return _document(f"<Message>{escape(text)}</Message>")


def gather_response(
    said: Sequence[str],
    *,
    action: str,
    then: str | None,
    timeout_seconds: int = GATHER_TIMEOUT_SECONDS,
    goodbye: str = "Goodbye.",
) -> str:
    """Read `said` and wait for one key, posted to `action`. Without a key the call goes to
    `then` (a `<Redirect>`, e.g. the same page once more), or says `goodbye` and hangs up when
    `then` is None."""
    gather = (
        f"<Gather numDigits={quoteattr('1')} action={quoteattr(action)} "
        f"method={quoteattr('POST')} timeout={quoteattr(str(timeout_seconds))}>"
        + "".join(_say(text) for text in said)
        + "</Gather>"
    )
    after = (
        f"<Redirect method={quoteattr('POST')}>{escape(then)}</Redirect>"
        if then is not None
        else _say(goodbye) + "<Hangup/>"
    )
    return _document(gather + after)


def hangup_response(said: Sequence[str]) -> str:
    """Say `said`, then hang up."""
    return _document("".join(_say(text) for text in said) + "<Hangup/>")
