"""What the notifier remembers about the messages it sent through chat and mail (the queue of
notifications itself is store.py's):

- `notifier_slack_messages`: one document per Slack message a notification posted (its
  channel and `ts`), found by incident, user and contact, so that an acknowledged or resolved
  notice to that contact updates those messages (`chat.update`) instead of posting another.
- `notifier_secrets`: the key that signs e-mail acknowledge links. It is made at random the
  first time a notifier needs it and shared by every replica through the database, so that a
  link made by one replica is honoured by another and by the same one after a restart.
  Deleting the document rotates the key (every link sent before stops working).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from tocsin.runtime.retention import RetentionPolicy, RetentionRule
from tocsin.runtime.store import DocumentDatabase

EMAIL_LINK_KEY = "email-link"
_KEY_BYTES = 32


@dataclass(frozen=True)
class PostedMessage:
    channel: str
    ts: str


class MessageStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def slack_posted(
        self,
        notification_id: str,
        *,
        incident_id: str,
        user_id: str,
        contact_id: str,
        message: PostedMessage,
        at: datetime,
    ) -> None:
        """Remember the message a notification posted (idempotent on the notification)."""

    async def slack_messages(
        self, incident_id: str, user_id: str, contact_id: str
    ) -> list[PostedMessage]:
        """The messages posted about an incident to one contact, oldest first."""

    async def secret(self, name: str, at: datetime) -> bytes:
        """The key called `name`, made at random on first use and the same ever after."""


class MongoMessageStore:
    def __init__(self, database: DocumentDatabase) -> None:
        self._slack = database["notifier_slack_messages"]
        self._secrets = database["notifier_secrets"]

    async def ensure_indexes(self) -> None:
        await self._slack.create_index([("incident_id", 1), ("user_id", 1), ("contact_id", 1)])
        await self._slack.create_index("posted_at")

    async def slack_posted(
        self,
        notification_id: str,
        *,
        incident_id: str,
        user_id: str,
        contact_id: str,
        message: PostedMessage,
        at: datetime,
    ) -> None:
        await self._slack.update_one(
            {"_id": notification_id},
            {
                "$set": {
                    "incident_id": incident_id,
                    "user_id": user_id,
                    "contact_id": contact_id,
                    "channel": message.channel,
                    "ts": message.ts,
                    "posted_at": at,
                }
            },
            upsert=True,
        )

    async def slack_messages(
        self, incident_id: str, user_id: str, contact_id: str
    ) -> list[PostedMessage]:
        cursor = self._slack.find(
            {"incident_id": incident_id, "user_id": user_id, "contact_id": contact_id}
        ).sort("posted_at", 1)
        return [PostedMessage(str(doc["channel"]), str(doc["ts"])) async for doc in cursor]

    async def secret(self, name: str, at: datetime) -> bytes:
        made = secrets.token_hex(_KEY_BYTES)
        try:
            doc = await self._secrets.find_one_and_update(
                {"_id": name},
                {"$setOnInsert": {"value": made, "created_at": at}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            # Another replica made it at the same moment: theirs is the key.
            doc = await self._secrets.find_one({"_id": name})
        if doc is None:
            raise RuntimeError(f"the {name} key was not stored")
        return bytes.fromhex(str(doc["value"]))


def message_retention_rules(policy: RetentionPolicy) -> list[RetentionRule]:
    """Slack message references live as long as notifications do (the incident is long
    resolved by then); the keys stay."""
    return [RetentionRule("notifier_slack_messages", "posted_at", policy.notifications)]
