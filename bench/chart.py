"""Time series as a self-contained SVG, written by hand: no plotting library is installed, and none is needed
for a few lines over time (bench/load.py draws latency and throughput with it)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

WIDTH, PANEL_HEIGHT, LEFT, RIGHT, TOP, GAP = 960, 190, 70, 20, 50, 50
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


@dataclass
class Series:
    name: str
    points: list[tuple[float, float | None]]  # (seconds since the start, value); None breaks the line


@dataclass
class Panel:
    label: str  # the y axis, with its unit
    series: list[Series]


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) that cuts `span` into about `ticks` parts."""
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= raw)


def runs(points: list[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The stretches of points without a gap (a None value)."""
    found: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            found.append([])
        else:
            found[-1].append((x, y))
    return [run for run in found if run]


def label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:g}"


def svg(title: str, panels: list[Panel], x_label: str = "seconds since the first request") -> str:
    height = TOP + len(panels) * (PANEL_HEIGHT + GAP) + 10
    plot_w = WIDTH - LEFT - RIGHT
    x_max = max((x for p in panels for s in p.series for x, _ in s.points), default=1.0) or 1.0
    x_step = nice_step(x_max, 10)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>']
    for index, panel in enumerate(panels):
        top = TOP + index * (PANEL_HEIGHT + GAP)
        y_max = max((y for s in panel.series for _, y in s.points if y is not None), default=1.0) or 1.0
        y_step = nice_step(y_max)
        y_top = y_step * -(-y_max // y_step)
        x_of = lambda x: LEFT + x / x_max * plot_w
        y_of = lambda y: top + PANEL_HEIGHT - y / y_top * PANEL_HEIGHT
        out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_HEIGHT}" fill="none" stroke="#999"/>')
        tick = 0.0
        while tick <= y_top + 1e-9:
            y = y_of(tick)
            out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                       f'<text x="{LEFT - 5}" y="{y + 4:.1f}" text-anchor="end">{label(tick)}</text>')
            tick += y_step
        tick = 0.0
        while tick <= x_max + 1e-9:
            x = x_of(tick)
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + PANEL_HEIGHT}" y2="{top + PANEL_HEIGHT + 4}" '
                       f'stroke="#999"/><text x="{x:.1f}" y="{top + PANEL_HEIGHT + 16}" '
                       f'text-anchor="middle">{label(tick)}</text>')
            tick += x_step
        out.append(f'<text x="16" y="{top + PANEL_HEIGHT / 2}" text-anchor="middle" '
                   f'transform="rotate(-90 16 {top + PANEL_HEIGHT / 2})">{escape(panel.label)}</text>')
        legend_x = LEFT + 8
        for colour, series in zip(COLOURS, panel.series):
            for run in runs(series.points):
                if len(run) == 1:  # a point alone, between gaps
                    out.append(f'<circle cx="{x_of(run[0][0]):.1f}" cy="{y_of(run[0][1]):.1f}" r="1.5" '
                               f'fill="{colour}"/>')
                else:
                    path = " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for x, y in run)
                    out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{path}"/>')
            out.append(f'<rect x="{legend_x}" y="{top + 8}" width="12" height="3" fill="{colour}"/>'
                       f'<text x="{legend_x + 16}" y="{top + 13}">{escape(series.name)}</text>')
            legend_x += 24 + 7 * len(series.name)
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    out.append("</svg>")
    return "\n".join(out)
