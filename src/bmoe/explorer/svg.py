"""Plots as inline SVG, drawn on the server from the numbers given: a line chart and a bar chart.

Owns axes, ticks, scaling and legends. The plots are markup in the page, so they need no script,
no library in the browser and no network; each point carries its value as a tooltip (``<title>``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from bmoe.explorer.html import Html

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7f8f", "#57606a",
           "#fb8500", "#3d348b")
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 16, 28, 40
LEGEND = 96  # the legend's column, right of the plot, when a chart has several series


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    color: str = ""


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (about ``count`` of them)."""
    if not high > low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, max(last, first + 1) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


class _Frame:
    """The plot area: data ranges mapped to pixels, with its axes drawn."""

    def __init__(self, width: int, height: int, xs: Sequence[float], ys: Sequence[float],
                 y_range: tuple[float | None, float | None], right: int = PAD_RIGHT) -> None:
        self.width, self.height, self.right = width, height, right
        self.x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0))
        low = y_range[0] if y_range[0] is not None else min(ys, default=0.0)
        high = y_range[1] if y_range[1] is not None else max(ys, default=1.0)
        self.y_ticks = nice_ticks(low, high)
        self.x0, self.x1 = self.x_ticks[0], self.x_ticks[-1]
        self.y0, self.y1 = self.y_ticks[0], self.y_ticks[-1]

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return PAD_LEFT + (value - self.x0) / span * (self.width - PAD_LEFT - self.right)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - PAD_BOTTOM - (value - self.y0) / span * (self.height - PAD_TOP - PAD_BOTTOM)

    def axes(self, x_label: str, y_label: str, x_ticks: bool = True) -> str:
        parts = []
        for tick in self.y_ticks:
            y = self.y(tick)
            parts.append(f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{self.width - self.right}" y2="{y:.1f}" '
                         f'stroke="#eef1f5"/><text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                         f"{_label(tick)}</text>")
        if x_ticks:
            for tick in self.x_ticks:
                x = self.x(tick)
                parts.append(f'<text x="{x:.1f}" y="{self.height - PAD_BOTTOM + 16}" text-anchor="middle">'
                             f"{_label(tick)}</text>")
        bottom = self.height - PAD_BOTTOM
        parts.append(f'<line x1="{PAD_LEFT}" y1="{bottom}" x2="{self.width - self.right}" y2="{bottom}" '
                     f'stroke="#667085"/><line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{bottom}" '
                     f'stroke="#667085"/>')
        parts.append(f'<text x="{(PAD_LEFT + self.width - self.right) / 2:.1f}" y="{self.height - 6}" '
                     f'text-anchor="middle">{escape(x_label)}</text>')
        parts.append(f'<text transform="translate(14 {(PAD_TOP + bottom) / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle">{escape(y_label)}</text>')
        return "".join(parts)


def _svg(width: int, height: int, title: str, body: str, id_: str | None) -> Html:
    ident = f' id="{escape(id_)}"' if id_ else ""
    return Html(f'<svg xmlns="http://www.w3.org/2000/svg"{ident} width="{width}" height="{height}" '
                f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" font-size="11" '
                f'font-family="system-ui,sans-serif"><text x="{PAD_LEFT}" y="17" font-size="13" font-weight="600">'
                f"{escape(title)}</text>{body}</svg>")


def _legend(series: Sequence[Series], width: int) -> str:
    """One entry a line, right of the plot area (``LEGEND`` pixels wide)."""
    x = width - LEGEND + 8
    return "".join(f'<rect x="{x}" y="{PAD_TOP + 14 * i}" width="10" height="10" fill="{item.color}"/>'
                   f'<text x="{x + 14}" y="{PAD_TOP + 14 * i + 9}">{escape(item.name)}</text>'
                   for i, item in enumerate(series))


def line_chart(series: Sequence[Series], *, title: str, x_label: str, y_label: str, width: int = 560,
               height: int = 240, y_range: tuple[float | None, float | None] = (None, None),
               id_: str | None = None) -> Html:
    """Lines through each series' (x, y) points, a dot per point with its value as a tooltip."""
    coloured = [Series(s.name, s.points, s.color or PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)]
    xs = [x for s in coloured for x, _ in s.points]
    ys = [y for s in coloured for _, y in s.points]
    if not xs:
        return _svg(width, 60, title, f'<text x="{PAD_LEFT}" y="45">no data yet</text>', id_)
    frame = _Frame(width, height, xs, ys, y_range, LEGEND if len(coloured) > 1 else PAD_RIGHT)
    parts = [frame.axes(x_label, y_label)]
    for item in coloured:
        coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in item.points)
        parts.append(f'<polyline fill="none" stroke="{item.color}" stroke-width="1.6" points="{coords}"/>')
        parts += [f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="2.4" fill="{item.color}">'
                  f"<title>{escape(item.name)}: {_label(x)}, {_label(y)}</title></circle>" for x, y in item.points]
    if len(coloured) > 1:
        parts.append(_legend(coloured, width))
    return _svg(width, height, title, "".join(parts), id_)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, x_label: str, y_label: str,
              colors: Sequence[str] = (), width: int = 560, height: int = 240,
              y_range: tuple[float | None, float | None] = (0.0, None), id_: str | None = None) -> Html:
    """One bar per label, its value as a tooltip."""
    if not values:
        return _svg(width, 60, title, f'<text x="{PAD_LEFT}" y="45">no data yet</text>', id_)
    frame = _Frame(width, height, [0.0, float(len(values))], list(values), y_range)
    frame.x0, frame.x1 = 0.0, float(len(values))
    parts = [frame.axes(x_label, y_label, x_ticks=False)]
    slot = (width - PAD_LEFT - PAD_RIGHT) / len(values)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        color = colors[i] if i < len(colors) else PALETTE[0]
        top, base = frame.y(value), frame.y(frame.y0)
        x = frame.x(i) + slot * 0.15
        parts.append(f'<rect x="{x:.1f}" y="{min(top, base):.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{abs(base - top):.1f}" fill="{color}"><title>{escape(label)}: {_label(value)}</title>'
                     f'</rect><text x="{x + slot * 0.35:.1f}" y="{height - PAD_BOTTOM + 16}" text-anchor="middle">'
                     f"{escape(label)}</text>")
    return _svg(width, height, title, "".join(parts), id_)
