"""Reloading `tocsin.yaml` without a restart: SIGHUP, or `POST /api/v1/config/reload` with the
admin API key, in either run mode (each process reloads the file it was started with).

The new file is loaded and checked completely first; a bad file is refused with every problem
at its key, and the running configuration stays. A good one replaces the whole configuration in
one assignment (`LiveConfig.replace`); each service reads its section through a view of it, so
the next page, timer or request sees the new one. Timers are documents naming an incident and a
step, never a copy of the configuration, so pending timers keep working: they page from the
configuration as it is when they fire.

A service built from a snapshot of its section (not a view) does not see a reload: the report
says which sections changed and need a restart to apply (see `LIVE_SECTIONS`).
"""

# No `from __future__ import annotations`: FastAPI must see the local `ApiKey` alias.
import asyncio
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from tocsin.composition.config import ConfigError, TocsinConfig, load_config
from tocsin.runtime.live_config import LiveConfig
from tocsin.runtime.service import Service

log = logging.getLogger(__name__)

ADMIN_KEY = "admin"  # the key bootstrapped from TOCSIN_ADMIN_TOKEN (wiring.api_keys)

# The services that read their section through a view of the live configuration.
LIVE_SECTIONS = frozenset({"escalation", "triage"})

SECTIONS: Mapping[str, Callable[[TocsinConfig], object]] = {
    "ingest": TocsinConfig.ingest,
    "triage": TocsinConfig.triage,
    "escalation": TocsinConfig.escalation,
    "notifier": TocsinConfig.notifier,
}

SectionStatus = Literal["reloaded", "unchanged", "changed; restart to apply"]


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
        sections: dict[str, SectionStatus] = {}
        for name in self._services:
            section = SECTIONS[name]
            if section(old) == section(new):
                sections[name] = "unchanged"
            elif name in LIVE_SECTIONS:
                sections[name] = "reloaded"
            else:
                sections[name] = "changed; restart to apply"
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
    async def reload_config(key_name: ApiKey) -> ReloadReport:
        """Reload the configuration file this process was started with (admin key only).
        422 with every problem at its key when the file is bad: nothing changes then."""
        if key_name != ADMIN_KEY:
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
