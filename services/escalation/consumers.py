"""Escalation's topic handlers for people's commands (`incidents.commands`: the API today,
SMS, voice and chat replies later). Incident events and delivery results go straight to the
engine (see app.py).

Each command is applied once (its `event_id` is recorded with the change) and its outcome is
recorded under the command's id, so whoever submitted it (the API) can tell the person what
happened: applied, or refused and why.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from schemas import CommandKind, IncidentCommand
from services.escalation.domain.lifecycle import Action, Assignment, Refused
from services.escalation.engine import Actor, Escalation, IncidentNotFound
from services.escalation.store import CommandOutcome, EscalationStore
from tocsin.runtime.clock import Clock

log = logging.getLogger(__name__)

ACTIONS = {
    CommandKind.ACKNOWLEDGE: Action.ACKNOWLEDGE,
    CommandKind.RESOLVE: Action.RESOLVE,
    CommandKind.ESCALATE: Action.ESCALATE_NOW,
    CommandKind.SNOOZE: Action.SNOOZE,
    CommandKind.REASSIGN: Action.REASSIGN,
    CommandKind.ADD_RESPONDER: Action.ADD_RESPONDER,
    CommandKind.SET_COMMANDER: Action.SET_COMMANDER,
}


def target_of(command: IncidentCommand) -> tuple[str | None, Assignment | None]:
    """Whom a command names: the user ADD_RESPONDER pages or SET_COMMANDER names, and where
    REASSIGN sends the incident (exactly one of user, schedule, policy)."""
    if command.command is not CommandKind.REASSIGN:
        return command.user, None
    named = [
        assignment
        for assignment in (
            Assignment("user", command.user) if command.user else None,
            Assignment("schedule", command.schedule) if command.schedule else None,
            Assignment("policy", command.policy) if command.policy else None,
        )
        if assignment is not None
    ]
    if len(named) != 1:
        raise Refused("a reassign names exactly one of user, schedule or policy")
    return None, named[0]


def action_of(command: IncidentCommand) -> tuple[Action, datetime | None]:
    """The lifecycle action a command asks for, and a snooze's end (counted from when the
    person asked, so that a redelivered command ends the snooze at the same time)."""
    if command.command is CommandKind.SNOOZE:
        if command.snooze_seconds is None:
            raise Refused("a snooze needs snooze_seconds")
        return Action.SNOOZE, command.occurred_at + timedelta(seconds=command.snooze_seconds)
    return ACTIONS[command.command], None


class CommandHandler:
    def __init__(self, engine: Escalation, store: EscalationStore, clock: Clock) -> None:
        self._engine = engine
        self._store = store
        self._clock = clock

    async def handle(self, command: IncidentCommand) -> None:
        reason: str | None = None
        try:
            action, until = action_of(command)
            user, assignment = target_of(command)
            await self._engine.command(
                command.incident_id,
                action,
                Actor(command.actor),
                event_id=command.event_id,
                until=until,
                user=user,
                assignment=assignment,
            )
        except IncidentNotFound:
            reason = f"no incident {command.incident_id!r}"
        except Refused as error:
            # A person's stale or mistaken command is not a failure of the pipeline.
            reason = str(error)
        if reason is not None:
            log.info(
                "command %s on %s refused: %s", command.command.value, command.incident_id, reason
            )
        await self._store.record_command(
            CommandOutcome(
                command_id=str(command.event_id),
                incident_id=command.incident_id,
                applied=reason is None,
                reason=reason,
                at=self._clock.now(),
            )
        )
