"""Reloading `tocsin.yaml` without a restart: SIGHUP, or `POST /api/v1/config/reload` with the
admin API key, in either run mode (each process reloads the file it was started with).

The new file is loaded and checked completely first; a bad file is refused with every problem
at its key, and the running configuration stays. A good one replaces the whole configuration in
one assignment (`LiveConfig.replace`); each service reads its section through a view of it, so
the next page, timer or request sees the new one. Timers are documents naming an incident and a
step, never a copy of the configuration, so pending timers keep working: they page from the
configuration as it is when they fire.

Every service reads its section live, but a few parts are built once at start (the notifier's
provider clients, the public URL, the Slack user map of inbound buttons): when those change the
report says "changed; restart to apply" for that section (see `RESTART_ONLY`).
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
import asyncio
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from services.notifier.inbound_slack import slack_users
from tocsin.composition.config import ConfigError, TocsinConfig, load_config
from tocsin.runtime.live_config import LiveConfig
from tocsin.runtime.service import Service

log = logging.getLogger(__name__)

ADMIN_KEY = "admin"  # the key bootstrapped from TOCSIN_ADMIN_TOKEN (wiring.api_keys)

SectionStatus = Literal["reloaded", "unchanged", "changed; restart to apply"]

# The services that read their section through a view of the live configuration.
LIVE_SECTIONS = frozenset({"ingest", "triage", "escalation", "notifier"})


def escalation_section(config: TocsinConfig) -> object:
    """Escalation's section and the status pages' update cadence it reads live."""
    return (config.escalation(), config.status_updates())


def notifier_section(config: TocsinConfig) -> object:
    """The notifier's section and the maintenance windows its status pages read live."""
    return (config.notifier(), config.maintenance_windows)


SECTIONS: Mapping[str, Callable[[TocsinConfig], object]] = {
    "ingest": TocsinConfig.ingest,
    "triage": TocsinConfig.triage,
    "escalation": escalation_section,
    "notifier": notifier_section,
}


def escalation_restart_only(config: TocsinConfig) -> object:
    """What escalation takes once at start: the public URL its pages link to."""
    return config.public_url


def notifier_restart_only(config: TocsinConfig) -> object:
    """What the notifier builds once at start: the provider clients, the public URL they call
    back and sign with, and the Slack user map of inbound buttons. Contacts apply live."""
    return (config.providers, config.public_url, slack_users(config.notifier().contacts))


# Per service, the part of the file it applies only at a restart (the rest applies live).
RESTART_ONLY: Mapping[str, Callable[[TocsinConfig], object]] = {
    "escalation": escalation_restart_only,
    "notifier": notifier_restart_only,
}


def section_status(name: str, old: TocsinConfig, new: TocsinConfig) -> SectionStatus:
    restart_only = RESTART_ONLY.get(name)
    if restart_only is not None and restart_only(old) != restart_only(new):
        return "changed; restart to apply"
    section = SECTIONS[name]
    if section(old) == section(new):
        return "unchanged"
    return "reloaded" if name in LIVE_SECTIONS else "changed; restart to apply"


class NoConfigFile(Exception):
    pass


class ReloadReport(BaseModel):
    source: str
    sections: dict[str, SectionStatus] = Field(
        description="Each service of this process: its section reloaded, unchanged, or "
        "changed but applied only after a restart."
    )


class ConfigReloader:
    def __init__(
        self, path: Path | None, live: LiveConfig[TocsinConfig], services: Sequence[str]
    ) -> None:
        self._path = path
        self._live = live
        self._services = tuple(services)

    def reload(self) -> ReloadReport:
        """Load, check and swap in the file; raise ConfigError (nothing changes) or
        NoConfigFile."""
        if self._path is None:
            raise NoConfigFile("started without a configuration file (--config); nothing to reload")
        new = load_config(self._path)
        old = self._live.current
        sections = {name: section_status(name, old, new) for name in self._services}
        self._live.replace(new)
        report = ReloadReport(source=str(self._path), sections=sections)
        log.info(
            "configuration reloaded from %s: %s",
            report.source,
            ", ".join(f"{name} {status}" for name, status in sections.items()),
        )
        return report

    def reload_logged(self) -> None:
        """For SIGHUP: the outcome goes to the log (a bad file keeps the running config)."""
        try:
            self.reload()
        except NoConfigFile as error:
            log.warning("SIGHUP: %s", error)
        except ConfigError as error:
            log.error(
                "SIGHUP: configuration in %s refused; the running configuration stays: %s",
                error.source,
                "; ".join(error.problems),
            )


def reload_service(reloader: ConfigReloader, require_api_key: Callable[..., str]) -> Service:
    """The reload route and the SIGHUP handler, as a part of the process."""
    api = APIRouter(prefix="/api/v1/config", tags=["configuration"])
    ApiKey = Annotated[str, Depends(require_api_key)]

    @api.post(
        "/reload",
        response_model=ReloadReport,
        responses={401: {}, 403: {}, 409: {}, 422: {}},
    )
    async def reload_config(key_name: ApiKey, request: Request) -> ReloadReport:
        """Reload the configuration file this process was started with (admin key only).
        422 with every problem at its key when the file is bad: nothing changes then."""
        # With people and roles, the guard has checked the role (tocsin.runtime.access);
        # with a fixed key directory only the bootstrap key may.
        principal = getattr(request.state, "principal", None)
        if principal is None and key_name != ADMIN_KEY:
            raise HTTPException(403, "only the admin API key may reload the configuration")
        try:
            return reloader.reload()
        except NoConfigFile as error:
            raise HTTPException(409, str(error)) from None
        except ConfigError as error:
            raise HTTPException(
                422,
                {
                    "error": "invalid configuration; the running configuration stays",
                    "source": error.source,
                    "problems": error.problems,
                },
            ) from None

    async def handle_sighup() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.reload_logged)

    return Service(name="config", router=api, on_start=[handle_sighup])
