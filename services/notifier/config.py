"""The notifier's part of the configuration file: every user's contacts (how a page reaches
them), the providers behind them (Twilio, SMTP, Slack) and the public URL providers call back.
The composition root reads the whole file and hands the notifier a `NotifierConfig`.

```yaml
public_url: https://tocsin.example.com        # what providers call back; signatures use it
providers:
  twilio: {account_sid: AC..., auth_token: ${TWILIO_AUTH_TOKEN}, from_number: "+15550001111"}
  smtp: {host: smtp.example.com, port: 587, tls: starttls, username: tocsin,
         password: file:/run/secrets/smtp, from_address: tocsin@example.com}
  slack: {bot_token: ${SLACK_BOT_TOKEN}, signing_secret: ${SLACK_SIGNING_SECRET}}
```
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from services.notifier.domain.e164 import InvalidPhoneNumber, parse_e164
from services.notifier.status_config import StatusPageConfig
from tocsin.runtime.config_problems import ConfigProblems
from tocsin.runtime.config_types import Duration, Identifier, Secret, StrictModel

ContactType = Literal["webhook", "log", "sms", "voice", "email", "slack", "teams"]

# The provider each contact type needs (None: none).
PROVIDER_OF: Mapping[str, str | None] = {
    "webhook": None,
    "log": None,
    "sms": "twilio",
    "voice": "twilio",
    "email": "smtp",
    "slack": "slack",
    "teams": None,
}
# Types whose acknowledgements come back through `public_url` (replies, links, buttons).
CALLS_BACK = ("sms", "voice", "email", "slack")

_HTTP = ("http://", "https://")
_ADDRESS_OF: Mapping[str, str] = {
    "webhook": "an http:// or https:// URL",
    "teams": "an http:// or https:// URL (the channel's incoming webhook)",
    "sms": "an E.164 phone number like +15551234567",
    "voice": "an E.164 phone number like +15551234567",
    "email": "an e-mail address",
    "slack": "a Slack user or channel id",
}


class ContactConfig(StrictModel):
    """`webhook` POSTs the page to `address`; `log` writes it to Tocsin's own log; `sms` and
    `voice` reach an E.164 number through Twilio; `email` an address through SMTP; `slack` a
    user or channel id through the Slack Web API; `teams` an incoming-webhook URL."""

    id: Identifier
    type: ContactType
    address: str | None = Field(default=None, min_length=1, max_length=2048)

    @model_validator(mode="after")
    def _address_fits_the_type(self) -> ContactConfig:
        # Addresses are never repeated in a message: URLs carry secrets, numbers are personal.
        if self.type == "log":
            return self
        if self.address is None:
            needs = _ADDRESS_OF[self.type]
            raise ConfigProblems([(("address",), f"missing: a {self.type} contact needs {needs}")])
        problem = _address_problem(self.type, self.address)
        if problem:
            raise ConfigProblems([(("address",), problem)])
        return self


def _address_problem(contact_type: str, address: str) -> str | None:
    if contact_type in ("webhook", "teams") and not address.startswith(_HTTP):
        return "must be an http:// or https:// URL"
    if contact_type in ("sms", "voice"):
        try:
            parse_e164(address)
        except InvalidPhoneNumber as error:
            return str(error)
    if contact_type == "email":
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in address):
            return "must be an e-mail address like oncall@example.com"
    return None


class TwilioConfig(StrictModel):
    account_sid: str = Field(min_length=2, max_length=64, pattern=r"^AC[0-9A-Za-z]+$")
    auth_token: Secret
    from_number: str
    base_url: str = Field(default="https://api.twilio.com", pattern=r"^https?://")
    # Per number: at most one SMS per `sms_interval` and one call per `voice_interval`; pages
    # arriving meanwhile are bundled into the next message (nothing is dropped).
    sms_interval: Duration = timedelta(seconds=30)
    voice_interval: Duration = timedelta(minutes=2)

    @model_validator(mode="after")
    def _from_is_e164(self) -> TwilioConfig:
        try:
            parse_e164(self.from_number)
        except InvalidPhoneNumber as error:
            raise ConfigProblems([(("from_number",), str(error))]) from None
        return self


class SmtpConfig(StrictModel):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    tls: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(default=None, min_length=1, max_length=255)
    password: Secret | None = None
    from_address: str = Field(min_length=3, max_length=255)


class SlackConfig(StrictModel):
    bot_token: Secret
    signing_secret: Secret
    base_url: str = Field(default="https://slack.com/api", pattern=r"^https?://")


class ProvidersConfig(StrictModel):
    twilio: TwilioConfig | None = None
    smtp: SmtpConfig | None = None
    slack: SlackConfig | None = None


class NotifierConfig(StrictModel):
    """Contacts by user id, the providers, and where providers call Tocsin back."""

    contacts: Mapping[str, tuple[ContactConfig, ...]] = {}
    providers: ProvidersConfig = ProvidersConfig()
    public_url: str | None = None
    status_pages: tuple[StatusPageConfig, ...] = ()

    def contact(self, user_id: str, contact_id: str) -> ContactConfig | None:
        return next((c for c in self.contacts.get(user_id, ()) if c.id == contact_id), None)

    def status_page(self, page_id: str) -> StatusPageConfig | None:
        return next((p for p in self.status_pages if p.id == page_id), None)
