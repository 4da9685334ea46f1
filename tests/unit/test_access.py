"""Access control: the policy table, personal keys (expiry, revocation, last use), passwords."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tocsin.composition.config import ConfigError, parse_config
from tocsin.runtime.access import (
    POLICY,
    SELF_SERVICE,
    Access,
    KeyStore,
    Person,
    Principal,
    Role,
    hash_password,
    permits,
    required,
)
from tocsin.runtime.embedded.docstore import EmbeddedDatabase
from tocsin.runtime.embedded.sqlite import SqliteFile

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


class StepClock:
    def __init__(self, now: datetime) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value


def principal(role: Role, user_id: str = "vic") -> Principal:
    return Principal(user_id, user_id.title(), role, "key_1")


# ---- policy --------------------------------------------------------------------------------


def test_reads_need_a_viewer_and_unknown_changes_need_an_admin() -> None:
    assert required("GET", "/api/v1/incidents").role == Role.VIEWER
    assert required("GET", "/api/v1/audit").role == Role.ADMIN
    # Not in the table: fails closed.
    assert required("POST", "/api/v1/something-new").role == Role.ADMIN
    assert required("PUT", "/api/v1/incidents/{incident_id}/acknowledge").role == Role.ADMIN


@pytest.mark.parametrize(("method", "template"), sorted(POLICY))
def test_each_row_of_the_table_is_what_required_answers(method: str, template: str) -> None:
    assert required(method, template) == POLICY[(method, template)]


def test_roles_are_ordered() -> None:
    acknowledge = required("POST", "/api/v1/incidents/{incident_id}/acknowledge")
    assert not permits(principal(Role.VIEWER), acknowledge, {})
    assert permits(principal(Role.RESPONDER), acknowledge, {})
    assert permits(principal(Role.ADMIN), acknowledge, {})
    reload = required("POST", "/api/v1/config/reload")
    assert not permits(principal(Role.RESPONDER), reload, {})
    assert permits(principal(Role.ADMIN), reload, {})


def test_own_things_only_below_admin() -> None:
    token = required("POST", "/api/v1/users/{user_id}/calendar-token")
    assert permits(principal(Role.VIEWER, "vic"), token, {"user_id": "vic"})
    assert not permits(principal(Role.RESPONDER, "bob"), token, {"user_id": "vic"})
    assert permits(principal(Role.ADMIN, "alice"), token, {"user_id": "vic"})


def test_self_service_routes_are_exactly_the_viewer_changes() -> None:
    assert ("POST", "/api/v1/keys") in SELF_SERVICE
    assert ("POST", "/api/v1/incidents/{incident_id}/acknowledge") not in SELF_SERVICE


# ---- keys ----------------------------------------------------------------------------------

PEOPLE = {
    "alice": Person("alice", "Alice Admin", Role.ADMIN),
    "vic": Person("vic", "Vic Viewer", Role.VIEWER),
}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    file = SqliteFile(tmp_path / "tocsin.sqlite")
    yield EmbeddedDatabase(file)
    file.close()


def access_over(
    database: EmbeddedDatabase, clock: StepClock, people: dict[str, Person] | None = None
) -> Access:
    known = PEOPLE if people is None else people
    return Access(KeyStore(database), lambda: known, clock, "bootstrap-secret", cache_seconds=0)


async def test_a_key_names_its_user_with_their_current_role(database: EmbeddedDatabase) -> None:
    clock = StepClock(T0)
    access = access_over(database, clock)
    key, secret = await access.keys.create("vic", "laptop", "alice", T0)
    assert secret.startswith("tsk_")
    assert len(secret) > 40
    found = await access.authenticate(secret)
    assert found == Principal("vic", "Vic Viewer", Role.VIEWER, key.id)
    assert await access.authenticate(secret + "x") is None
    assert await access.authenticate("\udcff") is None


async def test_only_the_digest_is_stored(database: EmbeddedDatabase) -> None:
    access = access_over(database, StepClock(T0))
    key, secret = await access.keys.create("vic", "", "alice", T0)
    stored = await database["access_keys"].find_one({"_id": key.id})
    assert stored is not None
    assert secret not in str(stored)


async def test_bootstrap_token_is_the_admin(database: EmbeddedDatabase) -> None:
    access = access_over(database, StepClock(T0))
    found = await access.authenticate("bootstrap-secret")
    assert found is not None
    assert found.role == Role.ADMIN
    assert found.key_id == "bootstrap"


async def test_expired_and_revoked_keys_are_refused(database: EmbeddedDatabase) -> None:
    clock = StepClock(T0)
    access = access_over(database, clock)
    _, expiring = await access.keys.create("vic", "", "alice", T0, T0 + timedelta(hours=1))
    revoked, revoked_secret = await access.keys.create("vic", "", "alice", T0)
    assert await access.authenticate(expiring) is not None
    await access.keys.revoke(revoked.id, T0)
    assert await access.authenticate(revoked_secret) is None
    clock.value = T0 + timedelta(hours=1)
    assert await access.authenticate(expiring) is None


async def test_a_revoked_key_is_forgotten_at_once_despite_the_cache(
    database: EmbeddedDatabase,
) -> None:
    clock = StepClock(T0)
    access = Access(KeyStore(database), lambda: PEOPLE, clock, None, cache_seconds=3600)
    key, secret = await access.keys.create("vic", "", "alice", T0)
    assert await access.authenticate(secret) is not None
    await access.keys.revoke(key.id, T0)
    access.forget(key.id)
    assert await access.authenticate(secret) is None


async def test_a_key_of_a_user_removed_from_the_file_is_refused(
    database: EmbeddedDatabase,
) -> None:
    people = dict(PEOPLE)
    access = access_over(database, StepClock(T0), people)
    _, secret = await access.keys.create("vic", "", "alice", T0)
    del people["vic"]
    assert await access.authenticate(secret) is None


async def test_last_use_is_written_at_most_once_a_minute(database: EmbeddedDatabase) -> None:
    clock = StepClock(T0)
    access = Access(KeyStore(database), lambda: PEOPLE, clock, None, cache_seconds=3600)
    key, secret = await access.keys.create("vic", "", "alice", T0)
    await access.authenticate(secret)
    stored = await access.keys.get(key.id)
    assert stored is not None
    assert stored.last_used_at == T0
    clock.value = T0 + timedelta(seconds=59)
    await access.authenticate(secret)
    stored = await access.keys.get(key.id)
    assert stored is not None
    assert stored.last_used_at == T0
    clock.value = T0 + timedelta(seconds=61)
    await access.authenticate(secret)
    stored = await access.keys.get(key.id)
    assert stored is not None
    assert stored.last_used_at == T0 + timedelta(seconds=61)


# ---- passwords and config -----------------------------------------------------------------


def test_password_login_checks_the_argon2_hash(database: EmbeddedDatabase) -> None:
    people = {"vic": Person("vic", "Vic", Role.VIEWER, hash_password("correct horse"))}
    access = access_over(database, StepClock(T0), people)
    found = access.verify_password("vic", "correct horse")
    assert found is not None
    assert found.user_id == "vic"
    assert access.verify_password("vic", "wrong") is None
    assert access.verify_password("nobody", "correct horse") is None


def test_new_password_hashes_cost_19_mib_and_old_default_hashes_still_verify(
    database: EmbeddedDatabase,
) -> None:
    from argon2 import PasswordHasher

    made = hash_password("correct horse")
    assert made.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    old = PasswordHasher().hash("battery staple")  # argon2-cffi's defaults: 64 MiB
    assert "m=65536" in old
    people = {
        "vic": Person("vic", "Vic", Role.VIEWER, made),
        "old": Person("old", "Old", Role.VIEWER, old),
    }
    access = access_over(database, StepClock(T0), people)
    assert access.verify_password("old", "battery staple") is not None
    assert access.verify_password("old", "correct horse") is None


async def test_check_password_verifies_off_the_event_loop(database: EmbeddedDatabase) -> None:
    people = {"vic": Person("vic", "Vic", Role.VIEWER, hash_password("correct horse"))}
    access = access_over(database, StepClock(T0), people)
    found = await access.check_password("vic", "correct horse")
    assert found is not None
    assert found.key_id == "password"
    assert await access.check_password("vic", "wrong") is None


def test_users_are_responders_unless_the_file_says_otherwise() -> None:
    config = parse_config(
        {"users": [{"id": "bob", "name": "Bob"}, {"id": "vic", "name": "Vic", "role": "viewer"}]}
    )
    assert config.people()["bob"].role == Role.RESPONDER
    assert config.people()["vic"].role == Role.VIEWER


def test_a_bad_role_or_password_hash_is_refused_at_its_key() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(
            {"users": [{"id": "bob", "name": "Bob", "role": "owner", "password_hash": "plain"}]}
        )
    text = " ".join(error.value.problems)
    assert "users[0].role" in text
    assert "users[0].password_hash" in text
