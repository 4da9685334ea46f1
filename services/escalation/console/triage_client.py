"""The console's client of triage's silences API (`/api/v1/silences`), called as the person who
is logged in.

Why a client and not a store: silences are triage's data and no service imports another, so
the console (escalation's) cannot read triage's collections; and going through triage's API
means triage's own role check and audit log see the right person. The credential is the
console session's own key: at login the console makes a short-lived key of kind `session`
(tocsin.runtime.access) that expires with the session and is revoked at logout; its secret is
the session cookie's value, held only by the browser (the server keeps digests), and the console
sends it as `Authorization: Bearer` for the person's requests to triage, server-side.

Where triage is: in the distributed mode `TOCSIN_TRIAGE_URL` (e.g. `http://triage:8082`);
with `tocsin up` the console calls the same process's app in-process (an ASGI transport: no
socket, no address to configure). Unset or unreachable, the console says so on the page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.escalation.console.silence_form import Matcher

SILENCES = "/api/v1/silences"


@dataclass(frozen=True)
class TriageLink:
    """How to reach triage's API: a client (pooled, closed by the composition root) and the
    base URL its requests go to."""

    client: httpx.AsyncClient
    base_url: str


class ConsoleSettings(BaseSettings):
    """The console's own setting, read once at start-up by the composition root of the
    distributed mode (`tocsin serve escalation`)."""

    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    # Where triage's API is, e.g. http://triage:8082; unset, the silences page says so.
    triage_url: str | None = Field(default=None, max_length=1024, pattern=r"^https?://")


class TriageUnavailable(Exception):
    """Triage could not be asked (not configured, unreachable, timed out, a 5xx)."""


class TriageRefused(Exception):
    """Triage answered with a 4xx: `status` and its `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MatcherView(_Lenient):
    name: str
    value: str
    isRegex: bool
    isEqual: bool = True

    def matcher(self) -> Matcher:
        return Matcher(self.name, self.value, self.isRegex, self.isEqual)


class StateView(_Lenient):
    state: str


class SilenceView(_Lenient):
    """Triage's GettableSilence, as far as the console shows it."""

    id: str
    status: StateView
    matchers: list[MatcherView]
    startsAt: datetime
    endsAt: datetime
    createdBy: str
    comment: str

    def lines(self) -> list[str]:
        return [m.matcher().line() for m in self.matchers]


class SilencesClient:
    def __init__(self, link: TriageLink | None) -> None:
        self._link = link

    @property
    def where(self) -> str:
        return self._link.base_url if self._link is not None else "(TOCSIN_TRIAGE_URL is not set)"

    async def list(self, credential: str) -> list[SilenceView]:
        answer = await self._call("GET", SILENCES, credential)
        try:
            return [SilenceView.model_validate(item) for item in answer.json()]
        except (ValueError, ValidationError) as error:
            raise TriageUnavailable(
                f"triage answered a list of silences we cannot read: {error}"
            ) from None

    async def create(self, credential: str, body: dict[str, Any]) -> str:
        answer = await self._call("POST", SILENCES, credential, body)
        try:
            return str(answer.json()["silenceID"])
        except (ValueError, KeyError, TypeError):
            raise TriageUnavailable("triage created a silence but did not say its id") from None

    async def expire(self, credential: str, silence_id: str) -> None:
        await self._call("DELETE", f"{SILENCES}/{quote(silence_id, safe='')}", credential)

    async def _call(
        self, method: str, path: str, credential: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        if self._link is None:
            raise TriageUnavailable(
                "the console does not know where triage is: set TOCSIN_TRIAGE_URL"
            )
        url = self._link.base_url.rstrip("/") + path
        try:
            answer = await self._link.client.request(
                method, url, json=body, headers={"Authorization": f"Bearer {credential}"}
            )
        except httpx.HTTPError as error:
            # The error names the URL (never the credential, which is a header).
            raise TriageUnavailable(f"{type(error).__name__} calling {url}") from None
        if answer.status_code >= 500:
            raise TriageUnavailable(f"triage answered {answer.status_code}")
        if answer.status_code >= 400:
            raise TriageRefused(answer.status_code, _detail(answer))
        return answer


def _detail(answer: httpx.Response) -> str:
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        return answer.text[:500] or f"status {answer.status_code}"
    if isinstance(detail, list):  # FastAPI's validation errors
        return "; ".join(str(item.get("msg", item)) for item in detail if isinstance(item, dict))
    return str(detail)[:500]
