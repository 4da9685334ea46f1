"""What the fake Twilio makes of the TwiML Tocsin answers with: the verbs it runs in order, as
Twilio runs them (`<Say>` is spoken, `<Gather>` waits for keys, `<Redirect>` fetches the next
document, `<Hangup>` ends the call, `<Message>` is an SMS answer)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from urllib.parse import urljoin


@dataclass(frozen=True)
class Gather:
    action: str
    """Absolute URL the digits go to (Twilio's default: the document's own URL)."""
    method: str
    num_digits: int | None


@dataclass(frozen=True)
class TwimlDocument:
    url: str
    said: tuple[str, ...]
    """`<Say>` texts up to where the document waits or ends, those inside `<Gather>` included."""
    messages: tuple[str, ...]
    gather: Gather | None
    redirect: str | None
    """The `<Redirect>` reached before any `<Gather>` or `<Hangup>`."""
    redirect_after_gather: str | None
    """The `<Redirect>` that runs when the `<Gather>` gets no input."""
    hangup: bool


def parse_twiml(text: str, *, url: str) -> TwimlDocument:
    root = ElementTree.fromstring(text)
    if root.tag != "Response":
        raise ValueError(f"TwiML must have <Response> at its root, not <{root.tag}>")
    said: list[str] = []
    messages: list[str] = []
    gather: Gather | None = None
    redirect: str | None = None
    after: str | None = None
    hangup = False
    for verb in root:
        if gather is not None:
            if verb.tag == "Hangup":
                break
            if verb.tag == "Redirect":
                after = urljoin(url, (verb.text or "").strip())
                break
            continue
        if verb.tag == "Say":
            said.append(_text(verb))
        elif verb.tag == "Message":
            body = verb.find("Body")
            messages.append(_text(body if body is not None else verb))
        elif verb.tag == "Gather":
            said.extend(_text(nested) for nested in verb.iter("Say"))
            num_digits = verb.get("numDigits")
            gather = Gather(
                action=urljoin(url, verb.get("action", url)),
                method=verb.get("method", "POST").upper(),
                num_digits=int(num_digits) if num_digits else None,
            )
        elif verb.tag == "Redirect":
            redirect = urljoin(url, (verb.text or "").strip())
            break
        elif verb.tag == "Hangup":
            hangup = True
            break
    return TwimlDocument(
        url=url,
        said=tuple(said),
        messages=tuple(messages),
        gather=gather,
        redirect=redirect,
        redirect_after_gather=after,
        hangup=hangup,
    )


def _text(element: ElementTree.Element) -> str:
    return " ".join("".join(element.itertext()).split())
