"""Operator API keys: held as digests, matched in constant time."""

from __future__ import annotations

import hashlib

from tocsin.runtime.http import ApiKeys, token_digest


def test_token_digest_is_sha256_hex() -> None:
    assert token_digest("s3cret") == hashlib.sha256(b"s3cret").hexdigest()


def _keys() -> ApiKeys:
    return ApiKeys({"ops": token_digest("ops-key-123"), "ci": token_digest("ci-key-456")})


def test_right_key_authenticates_as_its_name() -> None:
    keys = _keys()
    assert keys.authenticate("ops-key-123") == "ops"
    assert keys.authenticate("ci-key-456") == "ci"


def test_wrong_key_is_refused() -> None:
    keys = _keys()
    assert keys.authenticate("ops-key-124") is None
    assert keys.authenticate("") is None
    assert keys.authenticate("OPS-KEY-123") is None


def test_the_digest_itself_is_not_a_key() -> None:
    assert _keys().authenticate(token_digest("ops-key-123")) is None


def test_no_keys_refuses_everything() -> None:
    assert ApiKeys({}).authenticate("anything") is None
