"""How severe an incident is, and why."""

from __future__ import annotations

from schemas import Severity

_SEVERITY_BY_LABEL: dict[str, Severity] = {
    "critical": Severity.SEV1,
    "page": Severity.SEV1,
    "high": Severity.SEV1,
    "error": Severity.SEV2,
    "warning": Severity.SEV2,
    "medium": Severity.SEV2,
    "info": Severity.SEV3,
    "low": Severity.SEV3,
    "none": Severity.SEV3,
}


def assess_severity(
    severity_label: str | None,
    service_tier: int,
    rule: tuple[Severity, int] | None = None,
) -> tuple[Severity, tuple[str, ...]]:
    """Impact-based severity from the sender's severity, an explicit rule and the service's
    tier.

    The first `severity_rules` entry whose matchers hold (`rule`: its severity and index) sets
    the severity instead of the sender's; otherwise the sender's severity maps to SEV1..SEV3,
    and an unknown one to SEV2. SEV1 on a tier-0 service (the critical path: payments, login,
    data) is SEV0.
    """
    label = (severity_label or "").strip().lower()
    base = _SEVERITY_BY_LABEL.get(label)
    reasons: list[str] = []
    if rule is not None:
        base, n = rule
        reasons.append(f"severity_rules[{n}] matches: {base.value}")
    elif base is None:
        base = Severity.SEV2
        reasons.append(
            f"sender severity {severity_label!r} unknown: default SEV2"
            if label
            else "no severity label: default SEV2"
        )
    else:
        reasons.append(f"sender severity {label!r} maps to {base.value}")
    if base is Severity.SEV1 and service_tier == 0:
        base = Severity.SEV0
        reasons.append("tier-0 service (critical path): raised to SEV0")
    return base, tuple(reasons)


# Most severe first; never compare the values as strings.
_RANK = {severity: rank for rank, severity in enumerate(Severity)}


def raised_severity(
    current: Severity, proposed: Severity, proposed_reasons: tuple[str, ...]
) -> tuple[Severity, tuple[str, ...]] | None:
    """The incident's new severity and reasons when a joining alert is more severe, else None.

    An incident is as severe as its most severe alert; the reasons are that alert's, so they
    always explain the severity shown. A less severe alert never lowers it.
    """
    if _RANK[proposed] >= _RANK[current]:
        return None
    return proposed, (*proposed_reasons, f"raised from {current.value} by a later alert")


BLAST_RADIUS = "blast radius:"


def blast_radius_raise(
    current: Severity, reasons: tuple[str, ...], alert_count: int, limit: int
) -> tuple[Severity, tuple[str, ...]] | None:
    """One level more severe once an incident holds more than `limit` distinct alerts, with
    the reason; None if not past it, already raised for it, or SEV0 already.

    The raise is kept in the reasons: a later, more severe alert replaces them with its own,
    and the next alert to join raises that severity one level again.
    """
    if alert_count <= limit or current is Severity.SEV0:
        return None
    if any(reason.startswith(BLAST_RADIUS) for reason in reasons):
        return None
    raised = list(Severity)[_RANK[current] - 1]
    why = (
        f"{BLAST_RADIUS} {alert_count} alerts (more than {limit}): "
        f"raised from {current.value} to {raised.value}"
    )
    return raised, (*reasons, why)
