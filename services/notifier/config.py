"""The notifier's part of the configuration file: every user's contacts (how a page reaches
them). The composition root reads the whole file and hands the notifier a `NotifierConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, model_validator

from tocsin.runtime.config_problems import ConfigProblems
from tocsin.runtime.config_types import Identifier, StrictModel


class ContactConfig(StrictModel):
    """`webhook` POSTs the page to `address`; `log` writes it to Tocsin's own log."""

    id: Identifier
    type: Literal["webhook", "log"]
    address: str | None = Field(default=None, min_length=1, max_length=2048)

    @model_validator(mode="after")
    def _webhook_is_http(self) -> ContactConfig:
        # The address is not repeated in the message: webhook URLs can carry secrets.
        if self.type == "webhook" and self.address is None:
            problem = "missing: a webhook contact needs an http:// or https:// URL"
            raise ConfigProblems([(("address",), problem)])
        if self.type == "webhook" and not (self.address or "").startswith(("http://", "https://")):
            raise ConfigProblems([(("address",), "must be an http:// or https:// URL")])
        return self


class NotifierConfig(StrictModel):
    """Contacts by user id."""

    contacts: Mapping[str, tuple[ContactConfig, ...]] = {}

    def contact(self, user_id: str, contact_id: str) -> ContactConfig | None:
        return next((c for c in self.contacts.get(user_id, ()) if c.id == contact_id), None)
