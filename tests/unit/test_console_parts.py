"""The console's pure parts: the failed-login limiter, the silence form's matchers and end time,
masked tokens and webhook URLs, and the triage client's answers when triage cannot be asked."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from services.escalation.console.catalogue import (
    Catalogue,
    DeclaredIntegration,
    DeclaredService,
    mask,
)
from services.escalation.console.login_limit import LoginLimiter, address_key, user_key
from services.escalation.console.silence_form import (
    FormProblem,
    Matcher,
    ends_at,
    lines_of,
    parse_duration,
    parse_matchers,
    silence_body,
)
from services.escalation.console.triage_client import (
    SilencesClient,
    TriageLink,
    TriageRefused,
    TriageUnavailable,
)

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
BOB, ADDRESS = user_key("bob"), address_key("10.0.0.7")


# ---- failed logins ---------------------------------------------------------------------------


def test_five_failures_block_the_user_until_the_oldest_leaves_the_window() -> None:
    limiter = LoginLimiter()
    for minute in range(5):
        assert limiter.retry_after([BOB], T0 + timedelta(minutes=minute)) is None
        limiter.failed([BOB], T0 + timedelta(minutes=minute))
    at = T0 + timedelta(minutes=4, seconds=30)
    assert limiter.retry_after([BOB], at) == 30  # the first failure leaves at 5:00
    assert limiter.retry_after([BOB], T0 + timedelta(minutes=5)) is None
    # Four in the window again: one more try, then blocked until the second leaves.
    limiter.failed([BOB], T0 + timedelta(minutes=5))
    assert limiter.retry_after([BOB], T0 + timedelta(minutes=5)) == 60


def test_users_and_addresses_are_counted_apart() -> None:
    limiter = LoginLimiter(limit=2, address_limit=2)
    limiter.failed([BOB, ADDRESS], T0)
    limiter.failed([user_key("alice"), ADDRESS], T0)
    assert limiter.retry_after([address_key("10.0.0.8"), BOB], T0) is None
    assert limiter.retry_after([user_key("carol"), ADDRESS], T0) == 300


def test_success_clears_the_user_not_the_address() -> None:
    limiter = LoginLimiter(limit=2, address_limit=2)
    limiter.failed([BOB, ADDRESS], T0)
    limiter.failed([BOB, ADDRESS], T0)
    limiter.succeeded(BOB)
    assert limiter.retry_after([BOB], T0) is None
    assert limiter.retry_after([ADDRESS], T0) == 300


def test_an_address_may_fail_more_often_than_a_user() -> None:
    # Behind a proxy every login may share one address: 5 failures must not refuse everyone.
    limiter = LoginLimiter()
    for n in range(29):
        limiter.failed([user_key(f"u{n}"), ADDRESS], T0)
    assert limiter.retry_after([ADDRESS], T0) is None
    limiter.failed([user_key("u29"), ADDRESS], T0)
    assert limiter.retry_after([ADDRESS], T0) == 300


def test_tries_counted_before_their_check_block_concurrent_ones_until_withdrawn() -> None:
    limiter = LoginLimiter()
    in_flight = []
    for n in range(5):  # five tries counted, none answered yet
        at = T0 + timedelta(seconds=n)
        assert limiter.retry_after([BOB, ADDRESS], at) is None
        limiter.failed([BOB, ADDRESS], at)
        in_flight.append(at)
    assert limiter.retry_after([BOB, ADDRESS], T0 + timedelta(seconds=5)) == 295
    limiter.withdraw([BOB, ADDRESS], in_flight[0])  # the first succeeded after all
    assert limiter.retry_after([BOB, ADDRESS], T0 + timedelta(seconds=5)) is None
    limiter.withdraw([BOB], T0 + timedelta(hours=1))  # nothing counted then: no change
    limiter.failed([BOB], T0 + timedelta(seconds=6))
    assert limiter.retry_after([BOB], T0 + timedelta(seconds=6)) == 295  # T0+1s is oldest


def test_user_ids_are_counted_case_blind() -> None:
    assert user_key(" Bob ") == user_key("bob")


def test_memory_is_bounded() -> None:
    limiter = LoginLimiter(max_tracked=3)
    for n in range(10):
        limiter.failed([address_key(f"10.0.0.{n}")], T0 + timedelta(seconds=n))
    assert len(limiter._failures) == 3
    assert limiter.retry_after([address_key("10.0.0.9")], T0) is None  # 1 failure, not blocked


# ---- the silence form ------------------------------------------------------------------------


def test_labels_become_equality_matchers_that_read_back_the_same() -> None:
    labels = [
        ("alertname", "CheckoutDown"),
        ("app.kubernetes.io/name", 'say "hi"\\now'),
        ("odd name", "x"),
    ]
    text = lines_of(labels)
    assert text.splitlines()[0] == 'alertname="CheckoutDown"'
    assert [(m.name, m.value) for m in parse_matchers(text)] == labels
    assert all(m.is_equal and not m.is_regex for m in parse_matchers(text))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('job="api"', Matcher("job", "api", False, True)),
        ('job != "api"', Matcher("job", "api", False, False)),
        ('instance=~"db-.*"', Matcher("instance", "db-.*", True, True)),
        ('env!~"dev|test"', Matcher("env", "dev|test", True, False)),
        ("severity=critical", Matcher("severity", "critical", False, True)),
        ('empty=""', Matcher("empty", "", False, True)),
    ],
)
def test_each_operator(line: str, expected: Matcher) -> None:
    assert parse_matchers(line) == [expected]
    assert parse_matchers(expected.line()) == [expected]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "at least one matcher"),
        ("\n  \n", "at least one matcher"),
        ("just words", "matcher line 1"),
        ('a="b"\nc=="d', "matcher line 2"),
        ('a="unterminated', "end with a quote"),
        ("\n".join(f'a{n}="b"' for n in range(65)), "at most 64"),
    ],
)
def test_bad_matchers_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(FormProblem, match=problem):
        parse_matchers(text)


def test_durations_and_end_times() -> None:
    assert parse_duration("90m") == timedelta(minutes=90)
    assert parse_duration("1d12h") == timedelta(days=1, hours=12)
    for bad in ("", "0m", "2 weeks", "400d"):
        with pytest.raises(FormProblem):
            parse_duration(bad)
    assert ends_at("2h", "", T0) == T0 + timedelta(hours=2)
    assert ends_at("2h", "2026-12-03T05:30", T0) == datetime(2026, 12, 3, 5, 30, tzinfo=UTC)
    with pytest.raises(FormProblem, match="in the future"):
        ends_at("2h", "2026-12-03T02:00", T0)
    with pytest.raises(FormProblem, match="date and time"):
        ends_at("", "tomorrow", T0)


def test_the_body_is_alertmanagers_postable_silence() -> None:
    body = silence_body([Matcher("job", "api")], T0, T0 + timedelta(hours=1), "Bob", " why ")
    assert body == {
        "matchers": [{"name": "job", "value": "api", "isRegex": False, "isEqual": True}],
        "startsAt": "2026-12-03T03:00:00+00:00",
        "endsAt": "2026-12-03T04:00:00+00:00",
        "createdBy": "Bob",
        "comment": "why",
    }
    with pytest.raises(FormProblem, match="comment"):
        silence_body([Matcher("job", "api")], T0, T0, "Bob", "  ")


# ---- services and integrations ----------------------------------------------------------------


def test_tokens_are_masked_to_their_last_four_characters() -> None:
    assert mask("0123456789abcdef3f9a") == "••••••3f9a"
    assert mask("short") == "••••••"  # too short to show any of it


def test_webhook_urls_by_kind() -> None:
    token = SecretStr("0123456789abcdef3f9a")
    prom = DeclaredIntegration("prom", "alertmanager", "checkout", token)
    pd = DeclaredIntegration("pd", "pagerduty", "checkout", token)
    beat = DeclaredIntegration("backup", "heartbeat", "checkout", token)
    base = "https://tocsin.example.com/"
    assert prom.url(base) == "https://tocsin.example.com/v1/ingest/••••••3f9a"
    assert prom.url(base, reveal=True) == "https://tocsin.example.com/v1/ingest/" + (
        "0123456789abcdef3f9a"
    )
    assert prom.routing_key() is None
    assert pd.url(base) == "https://tocsin.example.com/v2/enqueue"
    assert pd.routing_key() == "••••••3f9a"
    assert beat.url(base) == "https://tocsin.example.com/v1/heartbeats/••••••3f9a"
    catalogue = Catalogue.of([DeclaredService("checkout", "Checkout", 0, "p")], [prom, pd, beat])
    assert [i.id for i in catalogue.services[0].integrations] == ["prom", "pd", "backup"]
    assert catalogue.integration("heartbeat:backup") is beat
    assert catalogue.integration("integration:backup") is None


# ---- the triage client -----------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_triage_unset_or_unreachable_is_unavailable_not_an_error() -> None:
    with pytest.raises(TriageUnavailable, match="TOCSIN_TRIAGE_URL"):
        await SilencesClient(None).list("secret")
    async with httpx.AsyncClient(timeout=2) as client:
        url = f"http://127.0.0.1:{closed_port()}"
        with pytest.raises(TriageUnavailable, match="ConnectError") as raised:
            await SilencesClient(TriageLink(client, url)).list("tsk_secret")
        assert "tsk_secret" not in str(raised.value)


async def test_triage_answers_become_refusals_or_unavailability() -> None:
    def triage(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tsk_secret"
        if request.method == "POST":
            return httpx.Response(403, json={"detail": "viewer 'vic' may not POST"})
        if request.method == "DELETE":
            assert request.url.raw_path == b"/api/v1/silences/a%2Fb"
            return httpx.Response(404, json={"detail": "no silence 'a/b'"})
        return httpx.Response(503, text="down")

    transport = httpx.MockTransport(triage)
    async with httpx.AsyncClient(transport=transport) as client:
        silences = SilencesClient(TriageLink(client, "http://triage:8082/"))
        with pytest.raises(TriageRefused) as refused:
            await silences.create("tsk_secret", {})
        assert (refused.value.status, refused.value.detail) == (403, "viewer 'vic' may not POST")
        with pytest.raises(TriageRefused, match="no silence"):
            await silences.expire("tsk_secret", "a/b")
        with pytest.raises(TriageUnavailable, match="503"):
            await silences.list("tsk_secret")
