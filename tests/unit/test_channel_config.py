"""The channels' keys in the configuration file: contact types and their addresses, the
providers they need, `public_url`, and secrets written as `${ENV}` or `file:PATH`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tocsin.composition.config import ConfigError, TocsinConfig, parse_config

TWILIO = {"account_sid": "AC123", "auth_token": "literal-token", "from_number": "+15550001111"}


def _document(*contacts: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "users": [{"id": "alice", "name": "Alice", "contacts": list(contacts)}],
        **top,
    }


def _problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document, "test.yaml")
    return caught.value.problems


def test_every_channel_contact_loads_with_its_provider_and_public_url() -> None:
    config = parse_config(
        _document(
            {"id": "sms", "type": "sms", "address": "+15551234567"},
            {"id": "call", "type": "voice", "address": "+4915112345678"},
            {"id": "mail", "type": "email", "address": "alice@example.com"},
            {"id": "chat", "type": "slack", "address": "U012ABCDEF"},
            {"id": "team", "type": "teams", "address": "https://example.webhook.office.com/x"},
            public_url="https://tocsin.example.com",
            providers={
                "twilio": TWILIO,
                "smtp": {"host": "smtp.example.com", "from_address": "tocsin@example.com"},
                "slack": {"bot_token": "xoxb-1", "signing_secret": "s3cr3t"},
            },
        )
    )
    notifier = config.notifier()
    assert notifier.public_url == "https://tocsin.example.com"
    assert notifier.providers.twilio is not None
    assert notifier.providers.twilio.base_url == "https://api.twilio.com"
    contact = notifier.contact("alice", "call")
    assert contact is not None
    assert contact.type == "voice"


def test_a_contact_names_the_provider_and_public_url_it_needs() -> None:
    problems = _problems(_document({"id": "sms", "type": "sms", "address": "+15551234567"}))
    assert problems == [
        "users[0].contacts[0].type: sms needs providers.twilio",
        "users[0].contacts[0].type: sms needs public_url (where people acknowledge)",
    ]


def test_teams_needs_no_provider_and_no_callbacks() -> None:
    teams = {"id": "t", "type": "teams", "address": "https://example.com/hook"}
    assert isinstance(parse_config(_document(teams)), TocsinConfig)


@pytest.mark.parametrize(
    ("contact", "problem"),
    [
        (
            {"id": "s", "type": "sms", "address": "555-1234"},
            "users[0].contacts[0].address: ",
        ),
        ({"id": "s", "type": "sms"}, "missing: a sms contact needs an E.164 phone number"),
        ({"id": "m", "type": "email", "address": "not-an-address"}, "must be an e-mail address"),
        ({"id": "t", "type": "teams", "address": "ftp://x"}, "must be an http:// or https:// URL"),
    ],
)
def test_addresses_are_checked_for_their_type_without_repeating_them(
    contact: dict[str, Any], problem: str
) -> None:
    problems = _problems(
        _document(contact, public_url="https://t.example", providers={"twilio": TWILIO})
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith("users[0].contacts[0].address: ")
    assert problem in problems[0]
    if "address" in contact:
        assert contact["address"] not in problems[0]


def test_a_twilio_from_number_must_be_e164() -> None:
    providers = {"twilio": {**TWILIO, "from_number": "0800 123"}}
    (problem,) = _problems(_document(providers=providers))
    assert problem.startswith("providers.twilio.from_number: ")
    assert "0800 123" not in problem


def test_secrets_come_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TWILIO_TOKEN", "from-env")
    secret_file = tmp_path / "slack-secret"
    secret_file.write_text("from-file\n", encoding="utf-8")
    config = parse_config(
        _document(
            providers={
                "twilio": {**TWILIO, "auth_token": "${TEST_TWILIO_TOKEN}"},
                "slack": {"bot_token": "xoxb-1", "signing_secret": f"file:{secret_file}"},
            }
        )
    )
    assert config.providers.twilio is not None
    assert config.providers.twilio.auth_token.get_secret_value() == "from-env"
    assert config.providers.slack is not None
    assert config.providers.slack.signing_secret.get_secret_value() == "from-file"
    assert "from-env" not in repr(config)


def test_a_missing_secret_names_the_variable_or_the_file(tmp_path: Path) -> None:
    problems = _problems(
        _document(
            providers={
                "twilio": {**TWILIO, "auth_token": "${NO_SUCH_TOCSIN_VARIABLE}"},
                "slack": {"bot_token": f"file:{tmp_path}/absent", "signing_secret": "x"},
            }
        )
    )
    assert problems == [
        "providers.twilio.auth_token: environment variable NO_SUCH_TOCSIN_VARIABLE is not set",
        f"providers.slack.bot_token: cannot read {tmp_path}/absent: No such file or directory",
    ]
