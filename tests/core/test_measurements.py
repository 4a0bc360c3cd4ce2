"""Tests of bayes_at_scale.core.records: JSON records kept with their SHA-256 checksums."""

from __future__ import annotations

import hashlib
import json

import pytest

from bayes_at_scale.core import measurements

COMMAND = "python make_it.py --record"


def _text(**fields):
    return json.dumps({"scale": "tiny", **fields}, indent=2) + "\n"


def _sums(folder):
    lines = (folder / measurements.CHECKSUMS).read_text().splitlines()
    return dict(reversed(line.split("  ")) for line in lines)


def test_write_then_read_round_trip(tmp_path):
    path = measurements.write_measurement(tmp_path / "deep" / "a.json", _text())
    assert path == tmp_path / "deep" / "a.json" and path.read_text() == _text()
    assert measurements.sha256(path) == hashlib.sha256(_text().encode()).hexdigest()
    assert _sums(path.parent) == {"a.json": measurements.sha256(path)}
    assert measurements.read_measurement(path, COMMAND) == json.loads(_text())


def test_sums_keep_one_sorted_line_per_file(tmp_path):
    measurements.write_measurement(tmp_path / "b.json", _text())
    measurements.write_measurement(str(tmp_path / "a.json"), _text(seed=1))
    measurements.write_measurement(tmp_path / "b.json", _text(seed=3))  # replaced, never duplicated
    lines = (tmp_path / measurements.CHECKSUMS).read_text().splitlines()
    assert len(lines) == 2 and lines == sorted(lines)
    assert _sums(tmp_path)["b.json"] == hashlib.sha256(_text(seed=3).encode()).hexdigest()
    assert measurements.read_measurement(tmp_path / "b.json", COMMAND)["seed"] == 3
    assert measurements.read_measurement(tmp_path / "a.json", COMMAND)["seed"] == 1


def test_read_refuses_a_missing_changed_or_unlisted_record(tmp_path):
    path = tmp_path / "a.json"
    with pytest.raises(FileNotFoundError, match="no recorded measurement .*make_it.py --record"):
        measurements.read_measurement(path, COMMAND)
    measurements.write_measurement(path, _text())
    path.write_text(_text(seed=9))
    with pytest.raises(ValueError, match="does not match its checksum.*re-record it with"):
        measurements.read_measurement(path, COMMAND)
    path.write_text(_text()[:-5])  # truncated
    with pytest.raises(ValueError, match="checksum"):
        measurements.read_measurement(path, COMMAND)
    path.write_text(_text())  # restored: valid again
    assert measurements.read_measurement(path, COMMAND)["scale"] == "tiny"
    (tmp_path / measurements.CHECKSUMS).write_text("")
    with pytest.raises(ValueError, match="has no checksum.*make_it.py --record"):
        measurements.read_measurement(path, COMMAND)
    (tmp_path / measurements.CHECKSUMS).unlink()
    with pytest.raises(ValueError, match="has no checksum"):
        measurements.read_measurement(path, COMMAND)
