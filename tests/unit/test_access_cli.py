"""`tocsin keys` against a (stopped) `tocsin up` data directory, and `tocsin users
hash-password`."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from tocsin.composition.cli import main


def test_keys_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    assert main(["keys", "create", "--user", "vic", "--label", "phone", "--data-dir", data]) == 0
    created = capsys.readouterr().out
    key_id = re.search(r"key (key_\w+) for vic", created)
    assert key_id is not None
    secret = created.splitlines()[1]
    assert secret.startswith("tsk_")
    assert main(["keys", "list", "--data-dir", data]) == 0
    listed = capsys.readouterr().out
    assert key_id.group(1) in listed
    assert "active" in listed
    assert secret not in listed
    # Another user's key is not revoked by a mistyped --user.
    assert main(["keys", "revoke", key_id.group(1), "--user", "bob", "--data-dir", data]) == 1
    assert main(["keys", "revoke", key_id.group(1), "--data-dir", data]) == 0
    assert "revoked" in capsys.readouterr().out


def test_keys_create_checks_the_user_against_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tocsin.yaml"
    config.write_text("users:\n- {id: bob, name: Bob}\n")
    args = ["keys", "create", "--user", "vic", "--config", str(config)]
    assert main([*args, "--data-dir", str(tmp_path / "data")]) == 1
    assert "no user 'vic'" in capsys.readouterr().err


def test_hash_password_prints_an_argon2_hash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main(["users", "hash-password"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "correct horse battery")
