"""Real gzipped tar archives built in the tests, as a registry package holds its files (no mock of tarfile)."""

from __future__ import annotations

import io
import tarfile


def gzipped_tar(files: dict[str, str], top: str) -> bytes:
    """A gzipped tar with ``files`` (path -> text, UTF-8) under the folder ``top``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            member = tarfile.TarInfo(f"{top}/{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()
