"""E.164 phone numbers for `sms` and `voice` contacts, checked when the config loads.

E.164 is `+`, a country code that does not start with 0, and at most 15 digits in all. Nothing
else is accepted: no spaces, dashes or brackets, no national `0` prefix, no `00` international
prefix. Providers want exactly this form, and one spelling per number lets the notifier match an
inbound SMS reply to the pages it sent there.

The errors say what is wrong and how to write the number, never the number itself: they end up
in logs, and phone numbers never do.
"""

from __future__ import annotations

import re

MAX_DIGITS = 15
"""E.164 allows at most 15 digits, country code included."""

MIN_DIGITS = 7
"""The shortest numbers in use (Niue, Tokelau: a 3-digit country code and 4 digits) have 7; a
shorter one is a typo or a carrier short code, neither of which can take a page."""

_E164 = re.compile(rf"\+[1-9][0-9]{{{MIN_DIGITS - 1},{MAX_DIGITS - 1}}}")
_SEPARATORS = frozenset(" -.()/\t")
_EXAMPLE = "write it as + then the country code and number, digits only, e.g. +15551234567"


class InvalidPhoneNumber(ValueError):
    """Why a phone number is not E.164; the message never holds the number."""


def parse_e164(value: str) -> str:
    """Return `value` if it is an E.164 number, else raise `InvalidPhoneNumber`."""
    if _E164.fullmatch(value):
        return value
    raise InvalidPhoneNumber(f"not an E.164 phone number: {_problem(value)}; {_EXAMPLE}")


def is_e164(value: str) -> bool:
    return _E164.fullmatch(value) is not None


def _problem(value: str) -> str:
    if not value.strip():
        return "it is empty"
    if value != value.strip():
        return "it has spaces around it"
    if value.startswith("00"):
        return "it starts with 00 instead of +"
    if not value.startswith("+"):
        return "it does not start with +"
    rest = value[1:]
    if any(char in _SEPARATORS for char in rest):
        return "it contains spaces or punctuation"
    if not rest.isascii() or not rest.isdigit():
        return "it contains characters other than digits after the +"
    if rest.startswith("0"):
        return "a country code never starts with 0"
    if len(rest) > MAX_DIGITS:
        return f"it has {len(rest)} digits, E.164 allows at most {MAX_DIGITS}"
    return f"it has {len(rest)} digits, a phone number has at least {MIN_DIGITS}"
