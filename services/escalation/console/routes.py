"""The console's pages and forms (see the package docstring). Every POST carries the session's
CSRF token (the login form a double-submit cookie's); actions are refused (403) unless the
policy table lets the person's role do the API route they mirror."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from schemas import CommandKind, IncidentCommand, Severity, UpdateStatus
from services.escalation.after_incident import RecurrenceView
from services.escalation.console.catalogue import Catalogue
from services.escalation.console.forms import read_form
from services.escalation.console.keys import router as keys_router
from services.escalation.console.login_limit import LoginLimiter, address_key, user_key
from services.escalation.console.services_page import router as services_router
from services.escalation.console.sessions import SESSION_LIFETIME, SessionStore
from services.escalation.console.silences import router as silences_router
from services.escalation.console.triage_client import SilencesClient, TriageLink
from services.escalation.console.web import COOKIE, Web
from services.escalation.consumers import action_of
from services.escalation.domain.lifecycle import Refused, Status
from services.escalation.domain.timeline import Entry, TimelineEntry
from services.escalation.engine import Escalation
from services.escalation.planning import UnknownName
from services.escalation.status_updates import PostUpdate, StatusUpdates
from services.escalation.store import EscalationStore, IncidentFilter
from tocsin.runtime.access import (
    BOOTSTRAP_USER,
    SESSION,
    Access,
    PasswordCheckBusy,
    Person,
    Principal,
    permits,
    required,
)
from tocsin.runtime.audit import AuditLog
from tocsin.runtime.bus import PublishError
from tocsin.runtime.live_config import Current

LOGIN_COOKIE = "tocsin_login"
COMMAND_WAIT_SECONDS = 5.0
# Console action -> the command it sends (a note is written to the timeline directly).
COMMANDS: Mapping[str, CommandKind] = {
    "acknowledge": CommandKind.ACKNOWLEDGE,
    "resolve": CommandKind.RESOLVE,
    "escalate": CommandKind.ESCALATE,
    "responders": CommandKind.ADD_RESPONDER,
    "commander": CommandKind.SET_COMMANDER,
}
NAMES_A_USER = frozenset({"responders", "commander"})
ACTIONS = (*COMMANDS, "snooze", "notes", "updates")
SNOOZES: Mapping[str, int] = {"15m": 900, "1h": 3600, "4h": 14400}
STATUS_ORDER = {Status.TRIGGERED: 0, Status.ACKNOWLEDGED: 1, Status.RESOLVED: 2}


def actor_name(actor: str | None, people: Mapping[str, Person]) -> str:
    """`api:alice` / `console:alice` -> Alice's name; Tocsin's own steps -> `Tocsin`."""
    if actor is None:
        return "Tocsin"
    _, _, user_id = actor.partition(":")
    person = people.get(user_id)
    if person is not None:
        return person.name
    if user_id == BOOTSTRAP_USER:
        return "Administrator"
    return actor


def router(
    engine: Escalation,
    store: EscalationStore,
    access: Access,
    audit: AuditLog,
    sessions: SessionStore,
    updates: StatusUpdates | None = None,
    recurrence: Callable[[str], Awaitable[RecurrenceView | None]] | None = None,
    *,
    triage: TriageLink | None = None,
    catalogue: Current[Catalogue] | None = None,
    public_url: str | None = None,
    limiter: LoginLimiter | None = None,
) -> APIRouter:
    """`triage`: where triage's silences API is (None: the silences page says it is not set);
    `catalogue`: the declared services and integrations (None: no services page);
    `public_url`: the start of the webhook URLs shown (None: the address the page was asked at);
    `limiter`: failed logins (one per process unless given)."""
    ui = APIRouter(prefix="/ui", include_in_schema=False)
    limiter = limiter if limiter is not None else LoginLimiter()

    web = Web(access, sessions)
    secure, who, page, refused, to_login = (
        web.secure,
        web.who,
        web.page,
        web.refused,
        web.to_login,
    )

    @ui.get("")
    async def home() -> RedirectResponse:
        return RedirectResponse("/ui/incidents", status_code=303)

    @ui.get("/login")
    async def login_page(request: Request) -> HTMLResponse:
        return login_form(request, 200, None)

    def login_form(request: Request, status: int, error: str | None) -> HTMLResponse:
        # Before a session there is no CSRF token to hold: a double-submit cookie instead.
        nonce = secrets.token_urlsafe(24)
        response = page(request, "login.html", status, csrf=nonce, error=error, user=None)
        response.set_cookie(
            LOGIN_COOKIE, nonce, httponly=True, samesite="lax", secure=secure(request), path="/ui"
        )
        return response

    @ui.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        cookie = request.cookies.get(LOGIN_COOKIE)
        if not cookie or not secrets.compare_digest(form.get("csrf", ""), cookie):
            return page(request, "refused.html", 403, reason="the form is stale; log in again")
        api_key = form.get("api_key", "").strip()
        user, password = form.get("user", "").strip(), form.get("password", "")
        # Password logins are counted per address and per user. Key logins are not limited:
        # a key is 256 random bits (nothing to guess), and a responder's key must still log
        # in while someone fails passwords from the same proxy.
        counted = []
        if not api_key:
            counted.append(address_key(request.client.host if request.client else "unknown"))
            if user:
                counted.append(user_key(user))
        now = access.now()
        wait = limiter.retry_after(counted, now)
        if wait is not None:
            minutes = max(1, round(wait / 60))
            refusal = login_form(
                request,
                429,
                f"Too many failed logins. Try again in about {minutes} minute"
                + ("s." if minutes > 1 else "."),
            )
            refusal.headers["Retry-After"] = str(wait)
            return refusal
        # Counted as failed before the check and withdrawn once it succeeds: the check awaits,
        # and concurrent tries must see each other (at most LIMIT in flight per key).
        limiter.failed(counted, now)
        principal = None
        if api_key:
            principal = await access.authenticate(api_key)
            if principal is not None and not await _personal(principal):
                principal = None  # a session's own key opens no other session
        elif user and password:
            try:
                principal = await access.check_password(user, password)
            except PasswordCheckBusy:
                limiter.withdraw(counted, now)
                busy = login_form(request, 503, "Too many logins at once. Try again shortly.")
                busy.headers["Retry-After"] = "5"
                return busy
        if principal is None or principal.user_id == BOOTSTRAP_USER:
            # The bootstrap token is for the API's first keys, not for people.
            return login_form(request, 401, "Unknown key or password.")
        limiter.withdraw(counted, now)
        limiter.succeeded(user_key(principal.user_id))
        expires = now + SESSION_LIFETIME
        session_key, secret = await access.keys.create(
            principal.user_id,
            "console session",
            f"console:{principal.user_id}",
            now,
            expires,
            kind=SESSION,
            opened_with=None if principal.key_id == "password" else principal.key_id,
        )
        token, _ = await sessions.open(
            principal.user_id, principal.key_id, now, secret, session_key.id
        )
        response = RedirectResponse("/ui/incidents", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="lax",
            secure=secure(request),
            path="/ui",
            max_age=int(SESSION_LIFETIME.total_seconds()),
        )
        response.delete_cookie(LOGIN_COOKIE, path="/ui")
        return response

    async def _personal(principal: Principal) -> bool:
        key = await access.keys.get(principal.key_id)
        return key is None or key.kind != SESSION  # None: the bootstrap token (refused after)

    @ui.post("/logout")
    async def logout(request: Request) -> Response:
        found = await who(request)
        form = await read_form(request)
        if found is None:
            return to_login()
        token, csrf, _ = found
        if not secrets.compare_digest(form.get("csrf", ""), csrf):
            return page(request, "refused.html", 403, reason="missing or wrong CSRF token")
        session = await sessions.find(token, access.now())
        await sessions.close(token)
        if session is not None and session.session_key_id is not None:
            await access.keys.revoke(session.session_key_id, access.now())
            access.forget(session.session_key_id)
        response = to_login()
        response.delete_cookie(COOKIE, path="/ui")
        return response

    @ui.get("/incidents")
    async def incidents(
        request: Request,
        status: Status | None = None,
        service: str | None = None,
        severity: Severity | None = None,
        fragment: str | None = None,
    ) -> Response:
        found = await who(request)
        if found is None:
            return to_login() if fragment is None else Response(status_code=401)
        _, csrf, principal = found
        where = IncidentFilter(status=status, service_id=service or None, severity=severity)
        listed = await store.list_incidents(where, None, 200)
        # Open first (triggered, then acknowledged); the store's newest-first order within each.
        listed.sort(key=lambda i: STATUS_ORDER[i.lifecycle.status])
        name = "_rows.html" if fragment == "rows" else "incidents.html"
        chosen = (("status", status), ("service", service), ("severity", severity))
        query = urlencode({name: value for name, value in chosen if value})
        return page(
            request,
            name,
            incidents=listed,
            user=principal,
            csrf=csrf,
            filters={"status": status or "", "service": service or "", "severity": severity or ""},
            statuses=list(Status),
            severities=list(Severity),
            query=query,
        )

    ui.include_router(keys_router(web, access, audit))
    ui.include_router(silences_router(web, SilencesClient(triage), store))
    if catalogue is not None:
        ui.include_router(services_router(web, catalogue, audit, public_url))

    @ui.get("/oncall")
    async def oncall(request: Request) -> Response:
        """Who each service's escalation policy pages now, level by level."""
        found = await who(request)
        if found is None:
            return to_login()
        _, csrf, principal = found
        config, now = engine.config, engine.now()
        people = access.people()
        services = []
        for service_id in sorted(config.services):
            service = config.services[service_id]
            policy = config.policy(service.policy)
            levels: list[list[tuple[str, str | None]]] = []
            if policy is not None:
                targets = [tuple(t.target() for t in level.targets) for level in policy.levels]
                for on_call in await engine.planner.on_call(targets, now):
                    levels.append(
                        [
                            (
                                _name(r.user, people),
                                getattr(r.target, "schedule", None),
                            )
                            for r in on_call.reached
                        ]
                    )
            services.append((service.name or service_id, policy.id if policy else None, levels))
        return page(request, "oncall.html", services=services, at=now, user=principal, csrf=csrf)

    @ui.get("/incidents/{incident_id}")
    async def incident_page(
        request: Request, incident_id: str, done: str | None = None
    ) -> Response:
        found = await who(request)
        if found is None:
            return to_login()
        _, csrf, principal = found
        incident = await store.get(incident_id)
        if incident is None:
            return refused(request, 404, f"no incident {incident_id}", principal)
        timeline = await store.timeline(incident_id, 1000)
        people = access.people()
        reasons = [e.detail for e in timeline if e.action == "severity_changed" and e.detail]
        may_act = {
            action: permits(principal, required("POST", _api_route(action)), {})
            for action in ACTIONS
        }
        return page(
            request,
            "incident.html",
            incident=incident,
            timeline=timeline,
            reasons=reasons,
            name_of=lambda actor: actor_name(actor, people),
            person=lambda user_id: people[user_id].name if user_id in people else user_id,
            user=principal,
            csrf=csrf,
            may_act=may_act,
            may_silence=permits(principal, required("POST", "/api/v1/silences"), {}),
            done=done,
            snoozes=list(SNOOZES),
            update_statuses=list(UpdateStatus) if updates is not None else [],
            people=sorted(people.values(), key=lambda p: p.name),
            recurrence=await recurrence(incident_id) if recurrence is not None else None,
        )

    @ui.post("/incidents/{incident_id}/{action}")
    async def act(request: Request, incident_id: str, action: str) -> Response:
        found = await who(request)
        if found is None:
            return to_login()
        _, csrf, principal = found
        form = await read_form(request)
        if action not in ACTIONS:
            return refused(request, 404, f"no action {action}", principal)
        template = _api_route(action)
        if not secrets.compare_digest(form.get("csrf", ""), csrf):
            return refused(request, 403, "missing or wrong CSRF token", principal)
        params = {"incident_id": incident_id}
        if not permits(principal, required("POST", template), params):
            await audit.record(principal, "POST", template, params, 403, via="console")
            return page(
                request,
                "refused.html",
                403,
                reason=f"a {principal.role.value} may not {action} incidents",
                user=principal,
            )
        if action == "updates":
            status, problem = await _post_update(incident_id, principal, form)
        else:
            field = "for" if action == "snooze" else "user" if action in NAMES_A_USER else "text"
            text = form.get(field, "")
            status, problem = await _carry_out(incident_id, action, principal, text)
        await audit.record(principal, "POST", template, params, status, via="console")
        if problem is not None:
            return page(request, "refused.html", status, reason=problem, user=principal)
        return RedirectResponse(
            f"/ui/incidents/{incident_id}?{urlencode({'done': action})}", status_code=303
        )

    async def _post_update(
        incident_id: str, principal: Principal, form: Mapping[str, str]
    ) -> tuple[int, str | None]:
        """A status update, as POST /api/v1/incidents/{id}/updates posts it."""
        incident = await store.get(incident_id)
        if incident is None or updates is None:
            return 404, f"no incident {incident_id}"
        message = form.get("message", "").strip()
        if form.get("status") not in set(UpdateStatus) or not 0 < len(message) <= 10_000:
            return 422, "a status update needs a status and a message (at most 10000 characters)"
        await updates.post(
            incident,
            PostUpdate(
                status=UpdateStatus(form["status"]),
                message=message,
                public=form.get("public") == "on",
                components=(),
                author=f"console:{principal.user_id}",
            ),
        )
        return 201, None

    async def _carry_out(
        incident_id: str, action: str, principal: Principal, text: str
    ) -> tuple[int, str | None]:
        """The same steps as the API's: check, submit, wait a little for the outcome."""
        incident = await store.get(incident_id)
        if incident is None:
            return 404, f"no incident {incident_id}"
        actor = f"console:{principal.user_id}"
        if action == "notes":
            if not text.strip() or len(text) > 10_000:
                return 422, "a note needs text (at most 10000 characters)"
            entry = TimelineEntry(
                id=f"note:{incident_id}/{uuid.uuid4().hex}",
                at=engine.now(),
                action=Entry.NOTE,
                actor=actor,
                detail=text.strip(),
            )
            await store.record(incident_id, [entry])
            return 201, None
        user = text if action in NAMES_A_USER else None
        if action in NAMES_A_USER and not text:
            return 422, "choose a person"
        snooze_seconds = None
        if action == "snooze":
            snooze_seconds = SNOOZES.get(text)
            if snooze_seconds is None:
                return 422, f"snooze for one of {', '.join(SNOOZES)}"
        command = IncidentCommand(
            occurred_at=engine.now(),
            correlation_id=incident_id,
            command=CommandKind.SNOOZE if snooze_seconds else COMMANDS[action],
            incident_id=incident_id,
            actor=actor,
            via="console",
            snooze_seconds=snooze_seconds,
            user=user,
        )
        try:
            lifecycle_action, until = action_of(command)
            await engine.check(incident, lifecycle_action, until, user=user)
        except (Refused, UnknownName) as error:
            return 409, str(error)
        try:
            await engine.submit(command)
        except PublishError:
            return 503, "cannot take commands right now; retry"
        deadline = time.monotonic() + COMMAND_WAIT_SECONDS
        while time.monotonic() < deadline:
            outcome = await store.command_outcome(str(command.event_id))
            if outcome is not None:
                return (200, None) if outcome.applied else (409, outcome.reason or "refused")
            await asyncio.sleep(0.05)
        return 202, None

    return ui


def _name(user_id: str | None, people: Mapping[str, Person]) -> str:
    if user_id is None:
        return "nobody"
    person = people.get(user_id)
    return person.name if person is not None else user_id


def _api_route(action: str) -> str:
    """The API route a console action mirrors (its row of the policy table); a snooze is the
    API's acknowledge with `snooze`."""
    return f"/api/v1/incidents/{{incident_id}}/{'acknowledge' if action == 'snooze' else action}"
