"""The console's silences page: silences in force (and those expired in the last day), a form
to create one (pre-filled from an alert's labels when reached from an incident's alert), and
expiry. Silences are triage's: every read and change is a call to triage's API as the person
logged in (see triage_client), so triage checks the role and records the change in the audit
log under that person; the console only hides the forms a role may not use."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.escalation.console.silence_form import (
    FormProblem,
    ends_at,
    lines_of,
    parse_matchers,
    silence_body,
)
from services.escalation.console.triage_client import (
    SilencesClient,
    SilenceView,
    TriageRefused,
    TriageUnavailable,
)
from services.escalation.console.web import Posted, Web
from services.escalation.store import EscalationStore
from tocsin.runtime.access import Principal, permits, required

RECENTLY_EXPIRED = timedelta(days=1)
DEFAULT_DURATION = "2h"
ORDER = {"active": 0, "pending": 1, "expired": 2}


def shown(silences: list[SilenceView], now: datetime) -> list[SilenceView]:
    """In force first (soonest to end first), then pending, then the recently expired (newest
    first); older expired silences are left out."""
    kept = [s for s in silences if s.status.state != "expired" or s.endsAt > now - RECENTLY_EXPIRED]

    def order(s: SilenceView) -> tuple[int, float]:
        rank = ORDER.get(s.status.state, 3)
        at = s.endsAt.timestamp()
        return rank, -at if s.status.state == "expired" else at

    return sorted(kept, key=order)


def router(web: Web, client: SilencesClient, store: EscalationStore) -> APIRouter:
    ui = APIRouter(prefix="/silences", include_in_schema=False)

    @ui.get("")
    async def silences_page(
        request: Request,
        incident: str | None = None,
        alert: str | None = None,
        done: str | None = None,
    ) -> Response:
        found = await web.who(request)
        if found is None:
            return web.to_login()
        token, csrf, principal = found
        form = {"matchers": "", "duration": DEFAULT_DURATION, "ends_at": "", "comment": ""}
        if incident is not None and alert is not None:
            labels = await _alert_labels(incident, alert)
            if labels is not None:
                form["matchers"] = lines_of(labels)
                form["comment"] = f"Silenced from incident {incident}"
        return await _page(request, token, csrf, principal, form, None, 200, done)

    async def _alert_labels(incident_id: str, fingerprint: str) -> list[tuple[str, str]] | None:
        found = await store.get(incident_id)
        if found is None:
            return None
        for details in found.alerts:
            if details.fingerprint == fingerprint:
                return [(label.name, label.value) for label in details.labels]
        return None

    async def _page(
        request: Request,
        token: str,
        csrf: str,
        principal: Principal,
        form: dict[str, str],
        problem: str | None,
        status: int,
        done: str | None = None,
    ) -> Response:
        listed: list[SilenceView] = []
        unavailable = None
        try:
            listed = shown(await client.list(token), web.now())
        except TriageUnavailable as error:
            unavailable, status = str(error), 503
        except TriageRefused as error:
            unavailable, status = _refusal(error), error.status
        return web.page(
            request,
            "silences.html",
            status,
            silences=listed,
            unavailable=unavailable,
            where=client.where,
            problem=problem,
            form=form,
            done=done,
            may_change=permits(principal, required("POST", "/api/v1/silences"), {}),
            user=principal,
            csrf=csrf,
        )

    @ui.post("")
    async def create_silence(request: Request) -> Response:
        posted = await web.posted(request)
        if not isinstance(posted, Posted):
            return posted
        token, csrf, principal, form = posted.token, posted.csrf, posted.principal, posted.form
        kept = {name: form.get(name, "") for name in ("matchers", "duration", "ends_at", "comment")}
        now = web.now()
        try:
            body = silence_body(
                parse_matchers(kept["matchers"]),
                now,
                ends_at(kept["duration"], kept["ends_at"], now),
                principal.name,
                kept["comment"],
            )
            silence_id = await client.create(token, body)
        except FormProblem as problem:
            return await _page(request, token, csrf, principal, kept, str(problem), 422)
        except TriageRefused as error:
            return await _page(request, token, csrf, principal, kept, _refusal(error), error.status)
        except TriageUnavailable as error:
            return _unavailable(request, principal, str(error))
        return RedirectResponse(f"/ui/silences?done=created+{silence_id}", status_code=303)

    @ui.post("/{silence_id}/expire")
    async def expire_silence(request: Request, silence_id: str) -> Response:
        posted = await web.posted(request)
        if not isinstance(posted, Posted):
            return posted
        token, principal = posted.token, posted.principal
        try:
            await client.expire(token, silence_id)
        except TriageRefused as error:
            return web.refused(request, error.status, _refusal(error), principal)
        except TriageUnavailable as error:
            return _unavailable(request, principal, str(error))
        return RedirectResponse(f"/ui/silences?done=expired+{silence_id}", status_code=303)

    def _unavailable(request: Request, principal: Principal, why: str) -> Response:
        reason = f"Triage cannot be reached ({why}); nothing was changed. Try again shortly."
        response = web.refused(request, 503, reason, principal)
        response.headers["Retry-After"] = "10"
        return response

    return ui


def _refusal(error: TriageRefused) -> str:
    if error.status == 401:
        return "triage does not accept this session; log out and log in again"
    return f"triage refused: {error.detail}"
