"""The README's Python example runs as written, and the README keeps exactly two set-up commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1
    result = subprocess.run([sys.executable, "-c", blocks[0]], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    assert accuracy > 0.6


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
