"""The explorer's markup helpers: text from the ledger or a URL never becomes markup, and plots' axes cover
their data (no browser needed)."""

from __future__ import annotations

import itertools

import pytest

from bmoe.explorer.html import Html, esc, page, table
from bmoe.explorer.svg import Series, bar_chart, line_chart, nice_ticks

HOSTILE = '<script>alert("x")</script>&"'


def test_text_is_escaped_everywhere_and_markup_passes_through() -> None:
    rendered = page(HOSTILE, table([HOSTILE], [[HOSTILE, Html("<b>kept</b>")]]), label=HOSTILE, query=HOSTILE)
    # the title, the label, the search box, the heading, a header and a cell
    assert "<script>" not in rendered and rendered.count("&lt;script&gt;") == 6
    assert "<b>kept</b>" in rendered
    assert esc(None) == "–" and esc(0.123456) == "0.1235"


@pytest.mark.parametrize(("low", "high"), [(0.0, 0.945), (0.0, 1.0), (2.09, 2.303), (-1.0, 106.0), (3.0, 3.0),
                                           (1e-7, 3e-7)])
def test_ticks_are_evenly_spaced_and_cover_the_data(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and len(ticks) >= 2
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1


def test_plots_draw_a_point_per_value_with_its_value_as_a_tooltip() -> None:
    chart = line_chart([Series("loss", [(0, 2.5), (1, 2.0), (2, 1.5)]), Series("b<", [(0, 1.0)])], title="t",
                       x_label="round", y_label="loss")
    assert chart.count("<circle") == 4 and "<title>loss: 1, 2</title>" in chart and "b&lt;" in chart
    bars = bar_chart(["0", "1"], [0.25, 0.75], title="t", x_label="expert", y_label="ratio")
    assert bars.count("<rect") == 2 and "<title>1: 0.75</title>" in bars
    assert "no data yet" in line_chart([], title="t", x_label="x", y_label="y")
