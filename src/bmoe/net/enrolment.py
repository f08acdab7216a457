"""The enrolment file: which participants a node accepts requests from.

Owns the format: a JSON object mapping a participant's name to its address (64 lower-case hex
chars, :attr:`bmoe.ledger.keys.Identity.address`), e.g. ``{"node-a": "3f…", "publisher": "9c…"}``;
or, as operators hand in their public keys, text with one name (its role: ``publisher``,
``validator-I``, ``edge-I``, ``store-J``) and address a line, ``#`` starting a comment::

    publisher   9c…
    edge-0      3f…
Names are labels for people (logs, stats); the address is what is checked. An address appears
once. Keys themselves live in identity files (:func:`bmoe.ledger.keys.save_identity`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bmoe.fileio import read_regular_text
from bmoe.ledger.keys import is_address
from bmoe.net.errors import EnrolmentError


def check_enrolment(entries: object, where: str = "enrolment") -> dict[str, str]:
    """Validate a name -> address mapping; the same mapping as a dict, sorted by name."""
    if not isinstance(entries, dict):
        raise EnrolmentError(f"{where}: expected a JSON object of name -> address")
    seen: dict[str, str] = {}
    for name, address in entries.items():
        if not isinstance(name, str) or not name:
            raise EnrolmentError(f"{where}: names must be non-empty strings")
        if not is_address(address):
            raise EnrolmentError(f"{where}: address of {name!r} must be 64 lower-case hex chars")
        if address in seen:
            raise EnrolmentError(f"{where}: {name!r} and {seen[address]!r} have the same address")
        seen[address] = name
    return {name: entries[name] for name in sorted(entries)}


def load_enrolment(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read an enrolment file; :class:`EnrolmentError` with a one-line reason if it is bad."""
    target = Path(path)
    try:
        text = read_regular_text(target)
        entries = json.loads(text) if text.lstrip().startswith("{") else _lines(text, target)
    except EnrolmentError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise EnrolmentError(f"cannot read enrolment file {target}: {exc}") from None
    return check_enrolment(entries, f"enrolment file {target}")


def _lines(text: str, target: Path) -> dict[str, str]:
    """``NAME ADDRESS`` a line (blank lines and ``#`` comments skipped); a name given twice is refused."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2:
            raise EnrolmentError(f"enrolment file {target}, line {number}: expected NAME ADDRESS")
        if fields[0] in entries:
            raise EnrolmentError(f"enrolment file {target}, line {number}: {fields[0]!r} is enrolled twice")
        entries[fields[0]] = fields[1]
    return entries


def save_enrolment(path: str | os.PathLike[str], entries: Mapping[str, str]) -> None:
    """Write an enrolment file atomically (temporary file, then rename)."""
    target = Path(path)
    body = check_enrolment(dict(entries))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(body, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
