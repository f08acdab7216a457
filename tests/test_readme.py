"""The README's Python example runs as written, and the README keeps exactly two set-up commands."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.mark.slow
def test_readme_python_example_runs() -> None:
    result = subprocess.run([sys.executable, "-c", readme_example()], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    assert accuracy > 0.6


def test_readme_python_example_runs_a_few_rounds_in_process() -> None:
    """The fast tier's witness of the example above: the same code, 5 rounds instead of 100, in this process."""
    example = readme_example()
    assert example.count("rounds=100,") == 1
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example.replace("rounds=100,", "rounds=5,"), "README.md", "exec"), {"__name__": "readme"})
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out.getvalue()).group(1))  # type: ignore[union-attr]
    assert 0 <= accuracy <= 1 and "edge records" in out.getvalue()


def test_readme_has_the_two_setup_commands_and_ci_runs_the_second() -> None:
    text = README.read_text()
    section = text.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    assert len(commands) == 2
    assert commands[0].endswith("bmoe demo")
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci


def test_ruff_is_clean() -> None:
    root = README.parent
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "tests", "benchmarks"],
                            capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
