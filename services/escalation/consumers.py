"""Escalation's topic handlers: `incidents.events` from triage, `incidents.commands` from people."""

from __future__ import annotations

import logging

from schemas import CommandKind, IncidentCommand
from services.escalation.domain.lifecycle import Action, InvalidTransition
from services.escalation.engine import Actor, Escalation, IncidentNotFound

log = logging.getLogger(__name__)

_ACTIONS = {
    CommandKind.ACKNOWLEDGE: Action.ACKNOWLEDGE,
    CommandKind.RESOLVE: Action.RESOLVE,
}


class CommandHandler:
    def __init__(self, engine: Escalation) -> None:
        self._engine = engine

    async def handle(self, command: IncidentCommand) -> None:
        action = _ACTIONS.get(command.command)
        if action is None:
            log.warning("command %s is not supported yet; ignored", command.command.value)
            return
        try:
            await self._engine.command(command.incident_id, action, Actor(command.actor))
        except (IncidentNotFound, InvalidTransition) as error:
            # A person's stale or mistaken command is not a failure of the pipeline.
            log.info("command %s on %s refused: %s", action.value, command.incident_id, error)
