"""Draw the dashboards as SVG line charts from real Prometheus query results.

    TOCSIN_DASHBOARD_CAPTURE=/tmp/capture.json .venv/bin/pytest tests/e2e/test_observability.py
    .venv/bin/python deploy/grafana/render_svg.py /tmp/capture.json docs/dashboards

The capture holds the window (`start`, `end`, Unix seconds) and, per dashboard and panel in
the dashboards' order, the series of each of its queries (`legend`: the panel's legend format
filled in; `values`: `[time, "value"]`) as the end-to-end test's Prometheus answered its
`query_range` (Grafana's variables filled in as the test does). Each dashboard becomes one
SVG: its panels in a grid, each a line chart of its series over the whole window. No Grafana is
involved: this is a picture of the data the panels query, not of Grafana.
"""

from __future__ import annotations

import html
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

COLUMNS = 2
PANEL_W, PANEL_H = 560, 250
MARGIN = 16
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 56, 12, 30, 60
COLORS = ("#3274d9", "#e0752d", "#56a64b", "#a352cc", "#f2cc0c", "#e02f44", "#8ab8ff", "#8f3bb8")


def _number(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 10_000:
        return f"{value:.3g}"
    return f"{value:.2e}"


def panel_svg(
    title: str, series: list[dict[str, Any]], x0: int, y0: int, window: tuple[float, float]
) -> str:
    parts = [
        f'<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" rx="4" '
        'fill="#181b1f" stroke="#2f3237"/>',
        f'<text x="{x0 + 10}" y="{y0 + 20}" fill="#ccccdc" font-size="13" '
        f'font-weight="bold">{html.escape(title)}</text>',
    ]
    points = [
        (float(t), float(v)) for s in series for t, v in s["values"] if math.isfinite(float(v))
    ]
    left, top = x0 + PLOT_LEFT, y0 + PLOT_TOP
    width = PANEL_W - PLOT_LEFT - PLOT_RIGHT
    height = PANEL_H - PLOT_TOP - PLOT_BOTTOM
    if not points:
        parts.append(
            f'<text x="{x0 + PANEL_W / 2}" y="{y0 + PANEL_H / 2}" fill="#8e8e8e" '
            'text-anchor="middle" font-size="12">No data</text>'
        )
        return "\n".join(parts)
    t_min, t_max = window
    v_min, v_max = min(0.0, min(p[1] for p in points)), max(p[1] for p in points)
    if v_max == v_min:
        v_max = v_min + 1
    t_span = (t_max - t_min) or 1

    def xy(t: float, v: float) -> tuple[float, float]:
        return left + (t - t_min) / t_span * width, top + height - (v - v_min) / (
            v_max - v_min
        ) * height

    for fraction in (0, 0.5, 1):
        value = v_min + (v_max - v_min) * fraction
        _, y = xy(t_min, value)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" stroke="#2f3237"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" fill="#8e8e8e" font-size="10" '
            f'text-anchor="end">{_number(value)}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{top + height + 14}" fill="#8e8e8e" font-size="10">'
        f"0 s</text>"
        f'<text x="{left + width}" y="{top + height + 14}" fill="#8e8e8e" font-size="10" '
        f'text-anchor="end">+{t_max - t_min:.0f} s</text>'
    )
    legend_y = top + height + 30
    for n, s in enumerate(series[: len(COLORS)]):
        color = COLORS[n]
        segments: list[list[str]] = [[]]
        for t, v in s["values"]:
            if not math.isfinite(float(v)):
                segments.append([])
                continue
            x, y = xy(float(t), float(v))
            segments[-1].append(f"{x:.1f},{y:.1f}")
        for segment in segments:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{color}"/>')
            elif segment:
                parts.append(
                    f'<polyline points="{" ".join(segment)}" fill="none" stroke="{color}" '
                    'stroke-width="1.5"/>'
                )
        column, row = n % 2, n // 2
        lx, ly = x0 + 10 + column * (PANEL_W // 2), legend_y + row * 13
        name = str(s["legend"])[:48]
        parts.append(
            f'<rect x="{lx}" y="{ly - 8}" width="10" height="3" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly - 4}" fill="#ccccdc" font-size="10">'
            f"{html.escape(name)}</text>"
        )
    return "\n".join(parts)


def dashboard_svg(
    title: str, panels: dict[str, list[dict[str, Any]]], window: tuple[float, float]
) -> str:
    names = list(panels)
    rows = math.ceil(len(names) / COLUMNS)
    width = COLUMNS * PANEL_W + (COLUMNS + 1) * MARGIN
    height = 40 + rows * (PANEL_H + MARGIN) + MARGIN
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Inter, Helvetica, Arial, sans-serif">',
        f'<rect width="{width}" height="{height}" fill="#111217"/>',
        f'<text x="{MARGIN}" y="28" fill="#ccccdc" font-size="18">{html.escape(title)}</text>',
    ]
    for n, name in enumerate(names):
        x0 = MARGIN + (n % COLUMNS) * (PANEL_W + MARGIN)
        y0 = 40 + (n // COLUMNS) * (PANEL_H + MARGIN)
        body.append(panel_svg(name, panels[name], x0, y0, window))
    body.append("</svg>")
    return "\n".join(body) + "\n"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower().replace("tocsin /", "")).strip("-")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: render_svg.py CAPTURE.json OUT_DIR", file=sys.stderr)
        return 2
    capture = json.loads(Path(argv[0]).read_text())
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    window = (float(capture["start"]), float(capture["end"]))
    for title, panels in capture["dashboards"].items():
        path = out / f"{slug(title)}.svg"
        path.write_text(dashboard_svg(title, panels, window))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
