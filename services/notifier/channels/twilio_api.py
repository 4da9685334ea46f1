"""Twilio's REST API as the `sms` and `voice` channels use it: create a Message, create a Call
(`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` and `.../Calls.json`, form-encoded, HTTP
basic auth with the account SID and auth token).

Twilio's answer decides what happens next, in three kinds:
- accepted (201 with the resource's `sid`): it is Twilio's now, never asked again;
- refused for good (4xx but 408/429: an invalid or unsubscribed number, bad credentials): the
  page fails at once so escalation pages the person's next contact method;
- worth another attempt: 5xx, 408, 429, or no connection at all. A request that may have reached
  Twilio without an answer coming back (a read timeout, a dropped connection) is `ambiguous`:
  Twilio may have taken it, so the caller waits for a status callback before trying again.

Errors carry Twilio's status and error code, never Twilio's message text (it can quote the
number) nor the credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.notifier.config import TwilioConfig

API_VERSION = "2010-04-01"
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
RING_SECONDS = 30

_Form = dict[str, str | list[str]]


class TwilioFailed(Exception):
    def __init__(self, reason: str, *, retryable: bool, ambiguous: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.ambiguous = ambiguous


@dataclass(frozen=True)
class TwilioApi:
    client: httpx.AsyncClient
    config: TwilioConfig

    def _url(self, resource: str) -> str:
        base = self.config.base_url.rstrip("/")
        return f"{base}/{API_VERSION}/Accounts/{self.config.account_sid}/{resource}.json"

    async def create_message(self, *, to: str, body: str, status_callback: str | None) -> str:
        form: _Form = {"To": to, "From": self.config.from_number, "Body": body}
        if status_callback is not None:
            form["StatusCallback"] = status_callback
        return await self._create("Messages", form)

    async def create_call(self, *, to: str, url: str, status_callback: str) -> str:
        form: _Form = {
            "To": to,
            "From": self.config.from_number,
            "Url": url,
            "Method": "POST",
            "StatusCallback": status_callback,
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": list(CALL_EVENTS),  # a repeated field
            "Timeout": str(RING_SECONDS),
        }
        return await self._create("Calls", form)

    async def _create(self, resource: str, form: _Form) -> str:
        what = "message" if resource == "Messages" else "call"
        try:
            response = await self.client.post(
                self._url(resource),
                data=form,
                auth=(self.config.account_sid, self.config.auth_token.get_secret_value()),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            # The request never left: nothing reached Twilio.
            raise TwilioFailed(
                f"Twilio unreachable: {type(error).__name__}", retryable=True
            ) from None
        except httpx.HTTPError as error:
            raise TwilioFailed(
                f"no answer from Twilio: {type(error).__name__}", retryable=True, ambiguous=True
            ) from None
        if response.status_code == 201:
            sid = _field(response, "sid")
            if sid:
                return sid
            raise TwilioFailed(
                f"Twilio accepted the {what} without a sid", retryable=True, ambiguous=True
            )
        status = response.status_code
        code = _field(response, "code")
        reason = f"Twilio refused the {what}: HTTP {status}" + (f", error {code}" if code else "")
        retryable = status in (408, 429) or status >= 500
        raise TwilioFailed(reason, retryable=retryable)


def _field(response: httpx.Response, name: str) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    value = body.get(name) if isinstance(body, dict) else None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    return None
