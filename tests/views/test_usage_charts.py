"""Geometry of the server-drawn charts: round axes, proportional bars, a line inside the plot."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rivya_dashboard.console import charts


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (0.9, 1), (9, 10), (11, 12), (1040, 1200), (2600, 3000)]
)
def test_the_axis_top_is_a_round_number_at_or_above_the_biggest_value(value, top):
    assert charts.nice_ceiling(value) == top


def bars(*values, counts=False):
    inputs = [charts.BarInput(f"day {n}", str(n), v, f"?bucket={n}") for n, v in enumerate(values)]
    return charts.bar_chart(inputs, counts=counts)


def test_bars_are_proportional_and_sit_on_the_baseline():
    chart = bars(Decimal(5), Decimal(10), Decimal(0))
    half, full, empty = chart.bars
    assert full.height == pytest.approx(2 * half.height)
    assert all(bar.y + bar.height == pytest.approx(chart.baseline) for bar in chart.bars)
    assert empty.height == 0 and full.value == "10" and half.href == "?bucket=0"


def test_a_tiny_real_value_stays_visible():
    chart = bars(Decimal(1000), Decimal("0.01"))
    assert chart.bars[1].height == 2


def test_counts_keep_whole_ticks():
    assert [tick.text for tick in bars(3, counts=True).ticks] == ["0", "1", "2", "3", "4"]
    assert [tick.text for tick in bars(9, counts=True).ticks] == ["0", "3", "6", "9", "12"]


def test_labels_are_thinned_to_stay_readable():
    chart = bars(*range(30))
    assert len(chart.x_labels) <= charts.MAX_X_LABELS


def test_the_line_stays_inside_the_plot():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    chart = charts.line_chart([(start + timedelta(days=d), Decimal(100 - d)) for d in range(10)])
    points = [tuple(map(float, pair.split(","))) for pair in chart.points.split()]
    assert len(points) == 10
    assert all(chart.plot_start <= x <= chart.plot_end for x, _y in points)
    assert all(0 <= y <= chart.baseline for _x, y in points)
    assert points[0][1] < points[-1][1]  # the balance fell, so the line goes down
