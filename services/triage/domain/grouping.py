"""Which incident an alert joins."""

from __future__ import annotations


def group_key(service_id: str, alertname: str) -> str:
    """Default grouping (DESIGN §4): one incident per service and `alertname`."""
    return f"{service_id}/{alertname}"
