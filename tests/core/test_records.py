"""Tests of bayes_at_scale.core.records: JSON records kept with their SHA-256 checksums."""

from __future__ import annotations

import hashlib
import json

import pytest

from bayes_at_scale.core import records

COMMAND = "python make_it.py --record"


def _text(**fields):
    return json.dumps({"scale": "tiny", **fields}, indent=2) + "\n"


def _sums(folder):
    lines = (folder / records.CHECKSUMS).read_text().splitlines()
    return dict(reversed(line.split("  ")) for line in lines)


def test_write_then_read_round_trip(tmp_path):
    path = records.write_record(tmp_path / "deep" / "a.json", _text())
    assert path == tmp_path / "deep" / "a.json" and path.read_text() == _text()
    assert records.sha256(path) == hashlib.sha256(_text().encode()).hexdigest()
    assert _sums(path.parent) == {"a.json": records.sha256(path)}
    assert records.read_record(path, COMMAND) == json.loads(_text())


def test_sums_keep_one_sorted_line_per_file(tmp_path):
    records.write_record(tmp_path / "b.json", _text())
    records.write_record(str(tmp_path / "a.json"), _text(seed=1))
    records.write_record(tmp_path / "b.json", _text(seed=3))  # replaced, never duplicated
    lines = (tmp_path / records.CHECKSUMS).read_text().splitlines()
    assert len(lines) == 2 and lines == sorted(lines)
    assert _sums(tmp_path)["b.json"] == hashlib.sha256(_text(seed=3).encode()).hexdigest()
    assert records.read_record(tmp_path / "b.json", COMMAND)["seed"] == 3
    assert records.read_record(tmp_path / "a.json", COMMAND)["seed"] == 1


def test_read_refuses_a_missing_changed_or_unlisted_record(tmp_path):
    path = tmp_path / "a.json"
    with pytest.raises(FileNotFoundError, match="no recorded measurement .*make_it.py --record"):
        records.read_record(path, COMMAND)
    records.write_record(path, _text())
    path.write_text(_text(seed=9))
    with pytest.raises(ValueError, match="does not match its checksum.*re-record it with"):
        records.read_record(path, COMMAND)
    path.write_text(_text()[:-5])  # truncated
    with pytest.raises(ValueError, match="checksum"):
        records.read_record(path, COMMAND)
    path.write_text(_text())  # restored: valid again
    assert records.read_record(path, COMMAND)["scale"] == "tiny"
    (tmp_path / records.CHECKSUMS).write_text("")
    with pytest.raises(ValueError, match="has no checksum.*make_it.py --record"):
        records.read_record(path, COMMAND)
    (tmp_path / records.CHECKSUMS).unlink()
    with pytest.raises(ValueError, match="has no checksum"):
        records.read_record(path, COMMAND)
