"""Geometry of the server-drawn SVG charts; the templates draw it, CSS classes colour it.

No JavaScript and no style attributes: bars and lines are coloured by classes that follow the
theme's variables, and every chart has a table of the same numbers next to it.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import formats

from rivya_dashboard.bidi import isolate_numbers

WIDTH = 960
HEIGHT = 240
# Room for the value labels on the left and the dates underneath.
PAD_START = 48
PAD_END = 8
PAD_TOP = 10
PAD_BOTTOM = 26
TICKS = 4
MAX_X_LABELS = 8
LINE_INSET = 24


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True)
class XLabel:
    x: float
    text: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: str
    href: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_start: float
    plot_end: float
    baseline: float
    ticks: list[Tick]
    x_labels: list[XLabel]
    bars: list[Bar]
    points: str = ""


@dataclass(frozen=True)
class BarInput:
    label: str
    short_label: str
    value: Decimal | int
    href: str


# Tops of the y axis whose quarters are round numbers, per power of ten.
NICE_TOPS = (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10)


def nice_ceiling(value: float) -> float:
    """The smallest round top (see NICE_TOPS) at or above value (1 for nothing)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in NICE_TOPS:
        if value <= step * power:
            return step * power
    return 10 * power


def number_text(value: float) -> str:
    if value >= 10 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def y_scale(top: float, bottom_value: float = 0) -> tuple[list[Tick], float]:
    span = top - bottom_value
    plot_height = HEIGHT - PAD_TOP - PAD_BOTTOM
    ticks = [
        Tick(
            HEIGHT - PAD_BOTTOM - plot_height * i / TICKS,
            number_text(bottom_value + span * i / TICKS),
        )
        for i in range(TICKS + 1)
    ]
    return ticks, plot_height / span


def sparse_labels(positions: Sequence[float], texts: Sequence[str]) -> list[XLabel]:
    every = max(1, math.ceil(len(texts) / MAX_X_LABELS))
    return [
        XLabel(x, isolate_numbers(text))
        for i, (x, text) in enumerate(zip(positions, texts, strict=True))
        if i % every == 0
    ]


def bar_chart(inputs: Sequence[BarInput], *, counts: bool = False) -> Chart:
    """Bars of inputs; with counts, the axis keeps to whole numbers (no "0.75 calls")."""
    top = nice_ceiling(float(max((i.value for i in inputs), default=0)))
    if counts:
        top = TICKS * math.ceil(top / TICKS)
    ticks, per_unit = y_scale(top)
    slot = (WIDTH - PAD_START - PAD_END) / max(len(inputs), 1)
    gap = min(slot * 0.2, 6)
    baseline = HEIGHT - PAD_BOTTOM
    bars = []
    for index, item in enumerate(inputs):
        height = float(item.value) * per_unit
        # A bar of a small but real value stays visible, and clickable.
        if item.value and height < 2:
            height = 2
        x = PAD_START + index * slot + gap / 2
        bars.append(
            Bar(
                x=round(x, 2),
                y=round(baseline - height, 2),
                width=round(slot - gap, 2),
                height=round(height, 2),
                label=item.label,
                value=number_text(float(item.value)),
                href=item.href,
            )
        )
    centres = [PAD_START + (i + 0.5) * slot for i in range(len(inputs))]
    return Chart(
        WIDTH,
        HEIGHT,
        PAD_START,
        WIDTH - PAD_END,
        baseline,
        ticks,
        sparse_labels(centres, [i.short_label for i in inputs]),
        bars,
    )


def line_chart(points: Sequence[tuple[datetime, Decimal]], date_format: str = "d M") -> Chart:
    """A step-free line through the readings, time on x, credits on y from 0."""
    top = nice_ceiling(float(max((value for _at, value in points), default=0)))
    ticks, per_unit = y_scale(top)
    baseline = HEIGHT - PAD_BOTTOM
    # Inset from both ends, so the first and last date labels are not cut at the edges.
    start, width = PAD_START + LINE_INSET, WIDTH - PAD_START - PAD_END - 2 * LINE_INSET
    if len(points) > 1:
        first, last = points[0][0], points[-1][0]
        span = (last - first).total_seconds() or 1
        xs = [start + width * (at - first).total_seconds() / span for at, _value in points]
    else:
        xs = [start + width / 2 for _point in points]
    coords = " ".join(
        f"{x:.1f},{baseline - float(value) * per_unit:.1f}"
        for x, (_at, value) in zip(xs, points, strict=True)
    )
    # Django's date format, not strftime: month names in the member's language.
    labels = sparse_labels(xs, [formats.date_format(at, date_format) for at, _value in points])
    return Chart(WIDTH, HEIGHT, PAD_START, WIDTH - PAD_END, baseline, ticks, labels, [], coords)
