"""Which store errors mean "the store is unavailable" (back off, retry) rather than a fault of
the request (the texts are FerretDB 1.24's while its PostgreSQL is stopped or restarting, as
seen in tests/e2e/test_infra_restarts.py)."""

from __future__ import annotations

import pytest

from tocsin.runtime.mongo import backend_down


@pytest.mark.parametrize(
    "message",
    [
        "failed to connect to `user=postgres database=ferretdb`: 127.0.0.1:27432 (127.0.0.1): "
        "dial error: dial tcp 127.0.0.1:27432: connect: connection refused",
        "FATAL: terminating connection due to administrator command (SQLSTATE 57P01)",
        "FATAL: the database system is starting up (SQLSTATE 57P03)",
        "unexpected EOF (SQLSTATE 08006)",
    ],
)
def test_ferretdb_internal_errors_naming_its_backend_are_unavailability(message: str) -> None:
    assert backend_down(1, message)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (1, "invalid $set operator"),  # an internal error about the request itself
        (2, "failed to connect to nowhere"),  # BadValue: the request's fault whatever it says
        (11000, "E11000 duplicate key error"),
        (None, "connection refused"),
    ],
)
def test_other_server_errors_are_not(code: int | None, message: str) -> None:
    assert not backend_down(code, message)
