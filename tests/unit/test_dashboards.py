"""The committed dashboards are what deploy/grafana/generate.py writes, and every panel has a
query on a Tocsin metric (tests/e2e/test_observability.py evaluates them all on Prometheus)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", ROOT / "deploy/grafana/generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_committed_json_is_what_the_generator_writes() -> None:
    assert generator().main(["--check"]) == 0


def test_every_panel_queries_a_tocsin_metric() -> None:
    module = generator()
    titles = set()
    for board in module.BOARDS:
        document = json.loads(
            (ROOT / "deploy/grafana/dashboards" / module.FILES[board.uid]).read_text()
        )
        titles.add(document["title"])
        assert len(document["panels"]) == len(board.panels)
        for panel in document["panels"]:
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
        for title, expr in module.queries(document):
            assert re.search(r"\btocsin_[a-z_]+", expr), (title, expr)
            assert "exported_service" not in expr
    assert titles == {
        "Tocsin / Incident response",
        "Tocsin / On-call health",
        "Tocsin / Pipeline",
    }


def renderer() -> ModuleType:
    path = ROOT / "deploy/grafana/render_svg.py"
    spec = importlib.util.spec_from_file_location("render_svg", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_svg"] = module
    spec.loader.exec_module(module)
    return module


def test_svg_draws_each_panels_series_and_says_when_there_is_none() -> None:
    svg = renderer().dashboard_svg(
        "Tocsin / Pipeline",
        {
            "Consumer lag": [
                {"legend": "topic=alerts.raw", "values": [[1, "0"], [2, "3"], [3, "NaN"]]}
            ],
            "Dead-lettered messages": [],
        },
        (0.0, 4.0),
    )
    assert svg.startswith("<svg")
    assert "Consumer lag" in svg
    assert "topic=alerts.raw" in svg
    assert svg.count("<polyline") == 1
    assert "No data" in svg
    assert renderer().slug("Tocsin / On-call health") == "on-call-health"
