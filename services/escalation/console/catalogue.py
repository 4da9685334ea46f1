"""The console's view of what the configuration file declares about services: each service's
tier and escalation policy, its integrations (kind, where they send, the token) and heartbeats.

The composition root builds a `Catalogue` from the file (`TocsinConfig.catalogue`) and hands it
to escalation through the live configuration, so a reload shows at once; escalation never sees
ingest's section. Tokens are shown masked (`••••••3f9a`): only an admin may reveal one, with a
POST carrying the CSRF token, recorded in the audit log; a token never goes to a log."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

MASK = "••••••"
# Kind -> the route its sender posts to; `{token}` in the path, else the token is the body's
# routing key (PagerDuty's Events API v2).
ROUTES: dict[str, str] = {
    "alertmanager": "/v1/ingest/{token}",
    "grafana": "/v1/ingest/{token}",
    "datadog": "/v1/ingest/{token}",
    "generic": "/v1/ingest/{token}",
    "pagerduty": "/v2/enqueue",
    "heartbeat": "/v1/heartbeats/{token}",
}


def mask(token: str) -> str:
    """The last four characters, and only when the token is long enough to keep most hidden."""
    return MASK + token[-4:] if len(token) >= 16 else MASK


@dataclass(frozen=True)
class DeclaredIntegration:
    id: str
    kind: str  # alertmanager, grafana, datadog, pagerduty, generic, heartbeat
    service_id: str
    token: SecretStr
    signed: bool = False

    @property
    def ref(self) -> str:
        """Names it among both integrations and heartbeats (two id spaces)."""
        return ("heartbeat:" if self.kind == "heartbeat" else "integration:") + self.id

    def url(self, base: str, reveal: bool = False) -> str:
        token = self.token.get_secret_value()
        shown = token if reveal else mask(token)
        return base.rstrip("/") + ROUTES[self.kind].replace("{token}", shown)

    def routing_key(self, reveal: bool = False) -> str | None:
        """PagerDuty senders put the token in the body, not the URL."""
        if "{token}" in ROUTES[self.kind]:
            return None
        token = self.token.get_secret_value()
        return token if reveal else mask(token)


@dataclass(frozen=True)
class DeclaredService:
    id: str
    name: str
    tier: int
    escalation_policy: str
    integrations: tuple[DeclaredIntegration, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    services: tuple[DeclaredService, ...] = ()
    # Every integration and heartbeat by its `ref`.
    by_ref: dict[str, DeclaredIntegration] = field(default_factory=dict)

    @classmethod
    def of(
        cls, services: list[DeclaredService], integrations: list[DeclaredIntegration]
    ) -> Catalogue:
        return cls(
            services=tuple(
                DeclaredService(
                    s.id,
                    s.name,
                    s.tier,
                    s.escalation_policy,
                    tuple(i for i in integrations if i.service_id == s.id),
                )
                for s in services
            ),
            by_ref={i.ref: i for i in integrations},
        )

    def integration(self, ref: str) -> DeclaredIntegration | None:
        return self.by_ref.get(ref)
