"""`tocsin keys create|list|revoke` and `tocsin users hash-password`: personal API keys managed
against the store directly (MongoDB from the settings, as `tocsin admin init`; or the data
directory of a stopped `tocsin up`), and the argon2 hash of a console password for the file."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tocsin.composition.config import ConfigError, load_config
from tocsin.runtime.access import KeyStore, StoredKey, hash_password
from tocsin.runtime.clock import utc_now
from tocsin.runtime.settings import Settings
from tocsin.runtime.store import DocumentDatabase

Work = Callable[[DocumentDatabase], Coroutine[Any, Any, int]]

KEYS_ENVIRONMENT = """\
environment:
  TOCSIN_MONGO_URL, TOCSIN_MONGO_DATABASE   where the keys live (distributed mode)
  TOCSIN_CONFIG                             the file naming the users (checked on create)

With --data-dir, the data directory of `tocsin up` (stopped: it holds a lock while running;
while it runs, use POST /api/v1/keys with the bootstrap TOCSIN_ADMIN_TOKEN instead).
"""


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser(
        "keys",
        help="personal API keys (create, list, revoke)",
        epilog=KEYS_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--user", required=True, help="the user id (from the config file)")
    create.add_argument("--label", default="", help="what the key is for")
    create.add_argument("--expires-in-days", type=int, help="default: never expires")
    create.add_argument("--config", type=Path, help="config file to check the user against")
    listing = keys_commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--user", help="only this user's keys")
    revoke = keys_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.add_argument("--user", help="refuse unless the key is this user's")
    for command in (create, listing, revoke):
        command.add_argument("--data-dir", type=Path, help="a stopped `tocsin up`'s data")

    users = commands.add_parser("users", help="user tools")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    users_commands.add_parser(
        "hash-password",
        help="print the argon2 hash of a password (for `password_hash:` in the config file)",
        description="Reads the password from the terminal (twice), or one line from stdin.",
    )


def run_users(args: argparse.Namespace) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("tocsin: the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("tocsin: a password needs at least 8 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _line(key: StoredKey) -> str:
    state = "revoked" if key.revoked_at else "active"
    return (
        f"{key.id}  {key.user_id:<16} {state:<8} created {_when(key.created_at)}  "
        f"expires {_when(key.expires_at)}  last used {_when(key.last_used_at)}  {key.label}"
    )


async def _keys(args: argparse.Namespace, store: KeyStore, settings: Settings) -> int:
    now = utc_now()
    if args.keys_command == "create":
        config_path = args.config or settings.config
        if config_path is not None:
            try:
                config = load_config(config_path)
            except ConfigError as error:
                print(f"tocsin: invalid configuration in {error.source}", file=sys.stderr)
                return 1
            if config.user(args.user) is None:
                print(f"tocsin: no user {args.user!r} in {config_path}", file=sys.stderr)
                return 1
        await store.ensure_indexes()
        days = args.expires_in_days
        expires = now + timedelta(days=days) if days else None
        key, secret = await store.create(args.user, args.label, "cli", now, expires)
        print(f"key {key.id} for {key.user_id} (shown once, keep it safe):")
        print(secret)
        return 0
    if args.keys_command == "list":
        for key in await store.list(args.user):
            print(_line(key))
        return 0
    found = await store.get(args.key_id)
    if found is None or (args.user is not None and found.user_id != args.user):
        of = f" of {args.user}" if args.user else ""
        print(f"tocsin: no key {args.key_id!r}{of}", file=sys.stderr)
        return 1
    revoked = await store.revoke(found.id, now)
    print(_line(revoked or found))
    return 0


def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    if args.data_dir is not None:
        return _with_embedded(args.data_dir, lambda db: _keys(args, KeyStore(db), settings))
    return asyncio.run(_with_mongo(settings, lambda db: _keys(args, KeyStore(db), settings)))


async def _with_mongo(settings: Settings, work: Work) -> int:
    from tocsin.runtime.mongo import MongoDatabase, open_client

    client = open_client(settings.mongo_url)
    try:
        return await work(MongoDatabase(client[settings.mongo_database]))
    finally:
        await client.close()


def _with_embedded(data_dir: Path, work: Work) -> int:
    from tocsin.composition.embedded import DataDirInUse, lock_data_dir
    from tocsin.runtime.embedded.docstore import EmbeddedDatabase
    from tocsin.runtime.embedded.sqlite import SqliteFile

    try:
        lock = lock_data_dir(data_dir)
    except DataDirInUse as error:
        print(f"tocsin: {error}; use POST /api/v1/keys while it runs", file=sys.stderr)
        return 1
    file = SqliteFile(data_dir / "tocsin.sqlite")
    try:
        code = asyncio.run(work(EmbeddedDatabase(file)))
        file.commit()
        return code
    finally:
        file.close()
        lock.close()
