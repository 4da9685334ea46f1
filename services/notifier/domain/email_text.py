"""The e-mail a page sends: a subject, a plain-text part and an HTML part that say the same
thing (severity, service, title, status, alert count, the incident's short id, the incident link
and, on a page that asks for an answer, the acknowledge link with its expiry).

Everything that came from an alert is escaped in the HTML part and stripped of line breaks in
the subject (a header). The recipient's address is not in the text: it is the envelope's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from schemas import AlertDetails, NotificationEvent, NotificationRequested
from services.notifier.domain.change_lines import changes_text
from services.notifier.domain.sms_text import short_incident_id

MAX_SUBJECT = 200
"""Characters of a subject; mail clients show far fewer, and a long one is cut with `…`."""

_EVENT_WORD = {
    NotificationEvent.TRIGGERED: "triggered",
    NotificationEvent.ESCALATED: "escalated",
    NotificationEvent.ACKNOWLEDGED: "acknowledged",
    NotificationEvent.RESOLVED: "resolved",
    NotificationEvent.REMINDER: "reminder",
}
ANSWERABLE = frozenset({NotificationEvent.TRIGGERED, NotificationEvent.ESCALATED})
"""Events that page someone: their e-mail carries an acknowledge link. Notices do not."""


@dataclass(frozen=True)
class AckLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class EmailText:
    subject: str
    plain: str
    html: str


def one_line(text: str) -> str:
    """`text` with every run of whitespace (line breaks included) made one space."""
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _alerts(count: int) -> str:
    return f"{count} alert" if count == 1 else f"{count} alerts"


def email_subject(request: NotificationRequested) -> str:
    incident = request.incident
    word = _EVENT_WORD[request.event].capitalize()
    title = one_line(incident.title) or "(no title)"
    subject = f"[{incident.severity.value}] {word}: {one_line(incident.service)}: {title}"
    return _cut(subject, MAX_SUBJECT)


def page_email(request: NotificationRequested, *, ack: AckLink | None) -> EmailText:
    """The e-mail for one page or notice; `ack` is the page's acknowledge link, if it has one."""
    incident = request.incident
    short = short_incident_id(incident.id)
    word = _EVENT_WORD[request.event]
    headline = f"{incident.severity.value} incident {word} on {one_line(incident.service)}"
    title = one_line(incident.title) or "(no title)"
    facts = [
        ("Status", incident.status),
        ("Alerts", str(incident.alert_count)),
        ("Incident", f"#{short} ({incident.id})"),
    ]
    changed = changes_text(incident.changes, incident.opened_at or request.occurred_at, shown=3)
    if changed is not None:
        facts.append(("Changes", changed))  # "deployed checkout v2.3.1 4 min before"
    expires = f"{ack.expires_at:%Y-%m-%d %H:%M} UTC" if ack else ""

    plain = [headline, title, ""]
    plain += [f"{name}: {value}" for name, value in facts]
    plain.append("")
    if ack is not None:
        plain += [
            f"Acknowledge: {ack.url}",
            f"  (opens a page with an Acknowledge button; the link works until {expires})",
        ]
    if incident.url:
        plain.append(f"Incident: {incident.url}")
    if incident.alerts:
        plain += ["", f"Alerts ({_alerts(incident.alert_count)} in all):"]
        for alert in incident.alerts:
            plain += _plain_alert(alert)
    plain += [
        "",
        f"Sent by Tocsin to {request.recipient.user_id}, level {request.escalation_level}.",
    ]

    e = html.escape
    rows = "".join(
        f"<tr><th align='left' style='padding-right:12px'>{e(name)}</th><td>{e(value)}</td></tr>"
        for name, value in facts
    )
    parts = [
        "<!DOCTYPE html><html><body style='font-family:sans-serif'>",
        f"<p style='margin:0;color:#555'>{e(headline)}</p>",
        f"<h2 style='margin:4px 0 12px'>{e(title)}</h2>",
        f"<table>{rows}</table>",
    ]
    if ack is not None:
        parts.append(
            f"<p><a href='{e(ack.url)}' style='display:inline-block;padding:10px 18px;"
            "background:#b00020;color:#fff;text-decoration:none;border-radius:4px'>"
            "Acknowledge</a></p>"
            f"<p style='color:#555;font-size:small'>Opens a page with an Acknowledge button. "
            f"The link works until {e(expires)}.</p>"
        )
    if incident.url:
        parts.append(f"<p><a href='{e(incident.url)}'>Open the incident</a></p>")
    if incident.alerts:
        items = "".join(_html_alert(alert) for alert in incident.alerts)
        parts.append(f"<h3>Alerts ({e(_alerts(incident.alert_count))} in all)</h3><ul>{items}</ul>")
    parts.append(
        f"<p style='color:#888;font-size:small'>Sent by Tocsin to "
        f"{e(request.recipient.user_id)}, level {request.escalation_level}.</p></body></html>"
    )
    return EmailText(email_subject(request), "\n".join(plain) + "\n", "".join(parts))


def _plain_alert(alert: AlertDetails) -> list[str]:
    lines = [f"- {one_line(alert.summary) or alert.fingerprint}"]
    if alert.runbook_url:
        lines.append(f"  runbook: {alert.runbook_url}")
    if alert.generator_url:
        lines.append(f"  source: {alert.generator_url}")
    return lines


def _html_alert(alert: AlertDetails) -> str:
    e = html.escape
    links = [
        f"<a href='{e(url)}'>{name}</a>"
        for name, url in (("runbook", alert.runbook_url), ("source", alert.generator_url))
        if url and url.startswith(("http://", "https://"))
    ]
    suffix = f" ({', '.join(links)})" if links else ""
    return f"<li>{e(one_line(alert.summary) or alert.fingerprint)}{suffix}</li>"
