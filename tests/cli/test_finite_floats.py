"""Float flags refuse NaN and infinities with one line (cli/finite.py): click's FloatRange let them through."""

from __future__ import annotations

import re

import click
import pytest

from bmoe.cli.finite import FiniteFloatRange
from tests.cli.in_process import bmoe_here


@pytest.mark.parametrize("text", ["nan", "NaN"])
def test_nan_is_refused_whatever_the_bounds(text: str) -> None:
    for kind in (FiniteFloatRange(), FiniteFloatRange(min=0.0), FiniteFloatRange(0.0, 1.0)):
        with pytest.raises(click.BadParameter, match=f"must be a finite number, got {text}"):
            kind.convert(text, None, None)


@pytest.mark.parametrize("text", ["inf", "-inf"])
def test_an_infinity_is_refused_with_or_without_bounds(text: str) -> None:
    with pytest.raises(click.BadParameter, match=f"must be a finite number, got {text}"):
        FiniteFloatRange().convert(text, None, None)
    with pytest.raises(click.BadParameter):  # past a bound: click's own message
        FiniteFloatRange(0.0, 1.0).convert(text, None, None)
    if text == "inf":  # an open-ended range: ours
        with pytest.raises(click.BadParameter, match="must be a finite number, got inf"):
            FiniteFloatRange(min=0.0).convert(text, None, None)


def test_finite_values_and_the_bounds_are_click_s() -> None:
    assert FiniteFloatRange(0.0, 1.0).convert("0.25", None, None) == 0.25
    assert FiniteFloatRange().convert("-1e300", None, None) == -1e300
    with pytest.raises(click.BadParameter, match=re.escape("0.0<=x<=1.0")):
        FiniteFloatRange(0.0, 1.0).convert("2", None, None)


def test_a_command_s_nan_flag_is_one_line() -> None:
    refused = bmoe_here("lm", "attacks", "--probability", "nan")
    assert refused.returncode == 2
    assert "'--probability': must be a finite number, got nan" in refused.stderr
    assert "Traceback" not in refused.stderr
