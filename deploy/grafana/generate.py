"""Tocsin's Grafana dashboards as code: `python deploy/grafana/generate.py` writes
deploy/grafana/dashboards/*.json with grafana-foundation-sdk.

1. Incident response: MTTA and MTTR (p50/p90 over the range) by service and severity,
   incidents over time, acknowledged within 5 minutes (%), escalations, reopen and recurrence
   rate.
2. On-call health: pages per person and per team, after-hours pages, time to page p99.
3. Pipeline: ingest rate and answers, dedup ratio, triage outcomes, consumer lag, DLQ counts,
   notification delivery by channel and outcome.

Every query reads metrics that Tocsin's processes export (see the README, "Measuring your
response"); tests/e2e/test_observability.py evaluates each of them against a real Prometheus
that scraped Tocsin during a scenario, and fails on any that returns nothing. The JSON files
are committed; `--check` fails when they differ from what this script writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    GridPos,
)

OUT = Path(__file__).resolve().parent / "dashboards"
CHART_COPY = Path(__file__).resolve().parents[1] / "helm" / "tocsin" / "files" / "dashboards"
"""The chart can only read files inside it: it ships a copy of every dashboard (ConfigMaps for
Grafana's sidecar, `dashboards.enabled`)."""
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SCOPE = 'service=~"$service", severity=~"$severity"'

TTA = "tocsin_incident_time_to_acknowledge_seconds"
TTR = "tocsin_incident_time_to_resolve_seconds"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Literal["stat", "timeseries"] = "timeseries"
    description: str = ""
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    filters: bool = True  # service and severity variables
    tags: tuple[str, ...] = field(default=("tocsin",))


def quantile(q: float, metric: str, by: str = "", window: str = "$__range") -> str:
    group = f"le, {by}" if by else "le"
    return (
        f"histogram_quantile({q}, sum by ({group}) "
        f"(increase({metric}_bucket{{{SCOPE}}}[{window}])))"
    )


INCIDENT_RESPONSE = Board(
    uid="tocsin-incident-response",
    title="Tocsin / Incident response",
    description="How fast incidents are acknowledged and resolved (MTTA, MTTR), how many open, "
    "how often they escalate or come back.",
    panels=(
        Panel("MTTA p50", (Query(quantile(0.5, TTA)),), "s", "stat", width=6, height=4),
        Panel("MTTA p90", (Query(quantile(0.9, TTA)),), "s", "stat", width=6, height=4),
        Panel("MTTR p50", (Query(quantile(0.5, TTR)),), "s", "stat", width=6, height=4),
        Panel("MTTR p90", (Query(quantile(0.9, TTR)),), "s", "stat", width=6, height=4),
        Panel(
            "MTTA by service and severity (p50, p90 over the range)",
            (
                Query(quantile(0.5, TTA, "service, severity"), "p50 {{service}} {{severity}}"),
                Query(quantile(0.9, TTA, "service, severity"), "p90 {{service}} {{severity}}"),
            ),
            "s",
        ),
        Panel(
            "MTTR by service and severity (p50, p90 over the range)",
            (
                Query(quantile(0.5, TTR, "service, severity"), "p50 {{service}} {{severity}}"),
                Query(quantile(0.9, TTR, "service, severity"), "p90 {{service}} {{severity}}"),
            ),
            "s",
        ),
        Panel(
            "Incidents opened",
            (
                Query(
                    f"sum by (service, severity) "
                    f"(increase(tocsin_incidents_opened_total{{{SCOPE}}}[$__rate_interval]))",
                    "{{service}} {{severity}}",
                ),
            ),
            description="Incidents triggered per interval.",
        ),
        Panel(
            "Acknowledged within 5 min",
            (
                Query(
                    f'sum(increase({TTA}_bucket{{{SCOPE}, le="300.0"}}[$__range])) '
                    f"/ sum(increase({TTA}_count{{{SCOPE}}}[$__range]))"
                ),
            ),
            "percentunit",
            "stat",
            "Of the acknowledgements in the range, the share within 5 minutes of the trigger.",
            width=6,
        ),
        Panel(
            "Reopen and recurrence rate",
            (
                Query(
                    f"(sum(increase(tocsin_incidents_reopened_total{{{SCOPE}}}[$__range])) "
                    "or vector(0)) "
                    f"/ sum(increase(tocsin_incidents_opened_total{{{SCOPE}}}[$__range]))",
                    "reopened",
                ),
                Query(
                    "(sum(increase(tocsin_incident_recurrences_total"
                    '{service=~"$service"}[$__range])) or vector(0)) '
                    f"/ sum(increase(tocsin_incidents_opened_total{{{SCOPE}}}[$__range]))",
                    "recurred",
                ),
            ),
            "percentunit",
            "stat",
            "Per incident opened: resolved incidents that fired again (reopened), and new "
            "incidents whose group had one resolved in the 30 days before (recurred); 0 when "
            "none.",
            width=6,
        ),
        Panel(
            "Escalations by level",
            (
                Query(
                    f"sum by (level) "
                    f"(increase(tocsin_incidents_escalated_total{{{SCOPE}}}[$__rate_interval]))",
                    "level {{level}}",
                ),
            ),
            description="Escalations to a level of the policy (0 is the first).",
        ),
        Panel(
            "Incidents acknowledged and resolved",
            (
                Query(
                    f"sum(increase(tocsin_incidents_acknowledged_total{{{SCOPE}}}"
                    "[$__rate_interval]))",
                    "acknowledged",
                ),
                Query(
                    f"sum(increase(tocsin_incidents_resolved_total{{{SCOPE}}}[$__rate_interval]))",
                    "resolved",
                ),
            ),
        ),
    ),
)

ONCALL_HEALTH = Board(
    uid="tocsin-oncall-health",
    title="Tocsin / On-call health",
    description="Who gets paged, how often, at what hours, and how long a page takes to arrive.",
    filters=False,
    panels=(
        Panel(
            "Pages per person",
            (
                Query(
                    "sum by (user) (increase(tocsin_pages_requested_total[$__range]))", "{{user}}"
                ),
            ),
            kind="stat",
            description="Pages (triggered, escalated) requested per user over the range.",
        ),
        Panel(
            "Pages per team",
            (
                Query(
                    "sum by (team) (increase(tocsin_pages_requested_total[$__rate_interval]))",
                    "{{team}}",
                ),
            ),
            description="A team is the escalation policy of the incident's service.",
        ),
        Panel(
            "After-hours pages per team",
            (
                Query(
                    "sum by (team) (increase(tocsin_after_hours_pages_total[$__rate_interval]))",
                    "{{team}}",
                ),
            ),
            description="Pages outside the service's support hours (without them: outside "
            "Mon-Fri 09:00-18:00 UTC).",
        ),
        Panel(
            "Time to page p99",
            (
                Query(
                    "histogram_quantile(0.99, sum by (le, channel) "
                    "(rate(tocsin_time_to_page_seconds_bucket[$__rate_interval])))",
                    "p99 {{channel}}",
                ),
                Query(
                    "histogram_quantile(0.5, sum by (le, channel) "
                    "(rate(tocsin_time_to_page_seconds_bucket[$__rate_interval])))",
                    "p50 {{channel}}",
                ),
            ),
            "s",
            description="From the alert's arrival at ingest to the first page delivered.",
        ),
    ),
)

PIPELINE = Board(
    uid="tocsin-pipeline",
    title="Tocsin / Pipeline",
    description="Alerts in, what triage made of them, queues, dead letters and deliveries.",
    filters=False,
    panels=(
        Panel(
            "Alerts accepted by source",
            (
                Query(
                    "sum by (source) (rate(tocsin_ingest_alerts_accepted_total[$__rate_interval]))",
                    "{{source}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Ingest answers (2xx, 4xx, 503)",
            (
                Query(
                    "sum by (code) (rate(tocsin_ingest_responses_total[$__rate_interval]))",
                    "{{code}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Ingest refusals by reason",
            (
                Query(
                    "sum by (reason) "
                    "(increase(tocsin_ingest_requests_rejected_total[$__rate_interval]))",
                    "{{reason}}",
                ),
            ),
        ),
        Panel(
            "Dedup ratio (alerts in per incident opened)",
            (
                Query(
                    "sum(increase(tocsin_triage_alerts_total[$__range])) "
                    "/ sum(increase(tocsin_incidents_opened_total[$__range]))"
                ),
            ),
            kind="stat",
            width=6,
        ),
        Panel(
            "Triage outcomes",
            (
                Query(
                    "sum by (outcome) (increase(tocsin_triage_alerts_total[$__rate_interval]))",
                    "{{outcome}}",
                ),
            ),
            width=18,
        ),
        Panel(
            "Consumer lag",
            (Query("sum by (topic, group) (tocsin_consumer_lag_messages)", "{{group}} {{topic}}"),),
            description="Messages not yet handled, per topic and consumer group.",
        ),
        Panel(
            "Dead-lettered messages",
            (
                Query(
                    "sum by (topic) (increase(tocsin_messages_dead_lettered_total[$__range]))",
                    "{{topic}}",
                ),
            ),
            kind="stat",
        ),
        Panel(
            "Notifications by channel and outcome",
            (
                Query(
                    "sum by (channel, outcome) "
                    "(increase(tocsin_notifications_total[$__rate_interval]))",
                    "{{channel}} {{outcome}}",
                ),
            ),
            width=24,
        ),
    ),
)

BOARDS = (INCIDENT_RESPONSE, ONCALL_HEALTH, PIPELINE)
FILES = {
    INCIDENT_RESPONSE.uid: "incident-response.json",
    ONCALL_HEALTH.uid: "oncall-health.json",
    PIPELINE.uid: "pipeline.json",
}


def _panel(spec: Panel, position: GridPos) -> Any:
    builder: Any = stat.Panel() if spec.kind == "stat" else timeseries.Panel()
    builder = builder.title(spec.title).datasource(DATASOURCE).unit(spec.unit).grid_pos(position)
    if spec.description:
        builder = builder.description(spec.description)
    for n, query in enumerate(spec.queries):
        target = prometheus.Dataquery().expr(query.expr).ref_id(chr(ord("A") + n))
        if query.legend:
            target = target.legend_format(query.legend)
        builder = builder.with_target(target)
    return builder


def _variables(board: Board) -> list[Any]:
    variables: list[Any] = [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
    ]
    if board.filters:
        for name in ("service", "severity"):
            variables.append(
                dashboard.QueryVariable(name)
                .label(name.title())
                .datasource(DATASOURCE)
                .query(f"label_values(tocsin_incidents_opened_total, {name})")
                .include_all(True)
                .all_value(".*")
                .multi(True)
            )
    return variables


def build(board: Board) -> dict[str, Any]:
    builder = (
        dashboard.Dashboard(board.title)
        .uid(board.uid)
        .description(board.description)
        .tags(list(board.tags))
        .refresh("30s")
        .time("now-24h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .variables(_variables(board))
    )
    x = y = row_height = 0
    for spec in board.panels:
        if x + spec.width > 24:
            x, y, row_height = 0, y + row_height, 0
        builder = builder.with_panel(_panel(spec, GridPos(spec.height, spec.width, x, y)))
        x += spec.width
        row_height = max(row_height, spec.height)
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
    return encoded


def render(board: Board) -> str:
    return json.dumps(build(board), indent=2, sort_keys=True) + "\n"


def queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel of a dashboard's JSON."""
    return [
        (panel["title"], target["expr"])
        for panel in document.get("panels", [])
        for target in panel.get("targets", [])
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    args = parser.parse_args(argv)
    wanted = {OUT / FILES[board.uid]: render(board) for board in BOARDS}
    # The hand-written overview (and any other JSON in OUT) goes to the chart as it is.
    for path in sorted(OUT.glob("*.json")):
        wanted.setdefault(path, path.read_text())
    wanted.update({CHART_COPY / path.name: text for path, text in list(wanted.items())})
    extra = set(CHART_COPY.glob("*.json")) - set(wanted)
    stale = sorted(
        {str(p) for p, text in wanted.items() if not p.exists() or p.read_text() != text}
        | {str(p) for p in extra}
    )
    if args.check:
        if stale:
            print(f"stale: {', '.join(stale)}; run deploy/grafana/generate.py", file=sys.stderr)
            return 1
        return 0
    for path, text in wanted.items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    for path in extra:
        path.unlink()
        print(f"removed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
