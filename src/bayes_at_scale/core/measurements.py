"""Recorded measurements: JSON files committed with their SHA-256 checksums.

A measurement that depends on the machine (a wall time, a peak memory) cannot be
re-derived when the book is built, so a chapter reads it from a record: a JSON file
written once by the command that measured it, next to a ``SHA256SUMS`` file (``sha256sum
-c`` format) in the same folder.  :func:`write_measurement` writes a record and its
checksum line; :func:`read_measurement` refuses a record that is missing, has no
checksum, or was changed after it was written, and names the command that records it
again.  (Not to be confused with the verdict records of
:mod:`bayes_at_scale.book.claims`.)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CHECKSUMS = "SHA256SUMS"


def sha256(path: Path | str) -> str:
    """The SHA-256 hex digest of the file at ``path``."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_measurement(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path`` (creating its folder) and put its checksum in the
    folder's ``SHA256SUMS``, replacing the file's old line if there is one; lines stay
    sorted."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    sums = path.parent / CHECKSUMS
    lines = [
        line
        for line in (sums.read_text().splitlines() if sums.is_file() else [])
        if line.split("  ", 1)[-1] != path.name
    ]
    sums.write_text("\n".join(sorted(lines + [f"{sha256(path)}  {path.name}"])) + "\n")
    return path


def read_measurement(path: Path | str, command: str) -> dict:
    """The JSON record at ``path``, after checking it against its folder's
    ``SHA256SUMS``.

    Raises ``FileNotFoundError`` naming ``command`` (the command that records it) when
    it is missing, and ``ValueError`` when its checksum is missing or does not match (an
    edited or truncated file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no recorded measurement {path}: run `{command}`")
    sums = path.parent / CHECKSUMS
    expected = {
        line.split("  ", 1)[1]: line.split("  ", 1)[0]
        for line in (sums.read_text().splitlines() if sums.is_file() else [])
        if "  " in line
    }
    if path.name not in expected:
        raise ValueError(
            f"{path.name} has no checksum in {sums}: record it with `{command}`"
        )
    if sha256(path) != expected[path.name]:
        raise ValueError(
            f"{path} does not match its checksum in {sums}: the file was changed "
            f"after it was recorded; re-record it with `{command}`"
        )
    return json.loads(path.read_text())
