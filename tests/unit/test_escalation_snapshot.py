"""What a page carries about its incident: the latest alerts (bounded) and its API URL."""

from __future__ import annotations

from schemas import AlertDetails
from schemas.notifications import MAX_SNAPSHOT_ALERTS
from services.escalation.domain.snapshot import incident_url, latest_alerts


def alert(fingerprint: str, summary: str = "s") -> AlertDetails:
    return AlertDetails(fingerprint=fingerprint, summary=summary)


def test_newest_alert_first_and_one_per_fingerprint() -> None:
    alerts = latest_alerts((), alert("a"))
    alerts = latest_alerts(alerts, alert("b"))
    alerts = latest_alerts(alerts, alert("a", "fires again"))
    assert [(a.fingerprint, a.summary) for a in alerts] == [("a", "fires again"), ("b", "s")]


def test_at_most_the_snapshot_bound_and_the_oldest_goes() -> None:
    alerts: tuple[AlertDetails, ...] = ()
    for n in range(MAX_SNAPSHOT_ALERTS + 3):
        alerts = latest_alerts(alerts, alert(f"fp{n}"))
    assert len(alerts) == MAX_SNAPSHOT_ALERTS
    assert alerts[0].fingerprint == f"fp{MAX_SNAPSHOT_ALERTS + 2}"
    assert alerts[-1].fingerprint == "fp3"


def test_an_event_without_an_alert_keeps_the_list() -> None:
    alerts = (alert("a"), alert("b"))
    assert latest_alerts(alerts, None) == alerts


def test_incident_url_under_the_public_url_or_none() -> None:
    assert incident_url(None, "inc-1") is None
    assert (
        incident_url("https://tocsin.example.com/", "inc/1 x")
        == "https://tocsin.example.com/api/v1/incidents/inc%2F1%20x"
    )
