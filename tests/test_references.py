"""Hygiene of the nbval regression tests: the executed reference notebooks in tests/references.

nbval (run by the same pytest command) re-executes every reference notebook and compares the
outputs of cells tagged ``nbval-check-output`` exactly.  That comparison is only worth something if
the references are what this file checks: executed, current, and carrying the verdict lines.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from bayes_at_scale.book import claims, ledger

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))
REFERENCES = ROOT / "tests" / "references"
CHECK = "nbval-check-output"


def chapter_number(path: Path) -> int:
    return int(path.stem.split("_", 1)[0])


def reference_of(chapter: Path) -> Path:
    return REFERENCES / f"{chapter.stem}.ipynb"


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def stdout_of(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream")


@pytest.fixture(params=CHAPTERS, ids=lambda p: p.stem)
def chapter(request) -> Path:
    return request.param


@pytest.fixture
def reference(chapter):
    path = reference_of(chapter)
    assert path.is_file(), f"{chapter.name} has no executed reference {path}: run `make references`"
    return nbformat.read(path, as_version=4)


def test_there_are_chapters():
    assert CHAPTERS, "no chapters found under chapters/"


def test_every_reference_belongs_to_a_chapter():
    stems = {c.stem for c in CHAPTERS}
    orphans = [p.name for p in REFERENCES.glob("*.ipynb") if p.stem not in stems]
    assert not orphans, f"reference notebooks without a chapter: {orphans}"


def test_reference_code_equals_chapter_source(chapter, reference):
    source = [c.source for c in code_cells(jupytext.read(chapter))]
    blessed = [c.source for c in code_cells(reference)]
    assert blessed == source, (f"{reference_of(chapter).name} is stale: its code differs from "
                               f"{chapter.name}; run `make references`")


def test_reference_tags_equal_chapter_tags(chapter, reference):
    source = [c.metadata.get("tags", []) for c in code_cells(jupytext.read(chapter))]
    blessed = [c.metadata.get("tags", []) for c in code_cells(reference)]
    assert blessed == source


def test_every_code_cell_was_executed_in_order(reference):
    counts = [c.get("execution_count") for c in code_cells(reference)]
    assert None not in counts, "a reference code cell is unexecuted: nbval would check nothing"
    assert counts == list(range(1, len(counts) + 1)), f"cells executed out of order: {counts}"


def test_no_errors_warnings_or_stderr_in_outputs(reference):
    for cell in code_cells(reference):
        for out in cell.outputs:
            assert out.output_type != "error", f"a reference cell raised: {out.get('ename')}"
            assert not (out.output_type == "stream" and out.get("name") == "stderr"), \
                f"stderr reached a reference output: {out.get('text', '')[:200]}"
            text = out.get("text", "") if out.output_type == "stream" else ""
            assert "Warning" not in text, f"a warning reached a reference output: {text[:200]}"


def test_compared_cells_carry_the_verdicts(chapter, reference):
    checked = [c for c in code_cells(reference) if CHECK in c.metadata.get("tags", [])]
    assert checked, f"{chapter.name} has no cell tagged {CHECK}"
    assert all(stdout_of(c).strip() for c in checked), "a compared cell has no output to compare"
    verdict_cells = [c for c in checked if claims.parse_verdict_lines(stdout_of(c))]
    if claims.claims_for_chapter(chapter_number(chapter)):
        assert verdict_cells, f"{chapter.name}: no compared cell prints a verdict line"
    # a chapter that owns no claim (the closing verdict) prints none: the ledger would double-count
    for cell in code_cells(reference):
        if claims.parse_verdict_lines(stdout_of(cell)):
            assert CHECK in cell.metadata.get("tags", []), "a verdict line in an uncompared cell"


def test_each_assigned_claim_has_exactly_one_verdict_line(chapter, reference):
    expected = {c.id for c in claims.claims_for_chapter(chapter_number(chapter))}
    lines = [line for c in code_cells(reference) for line in stdout_of(c).splitlines()
             if line.startswith("CLAIM ")]
    for line in lines:
        assert claims.LINE.match(line), f"malformed verdict line: {line}"
    found = [claims.LINE.match(line).group(1) for line in lines]
    assert sorted(found) == sorted(expected), (
        f"{chapter.name} must print one verdict line for each of {sorted(expected)}, got {found}")


def test_verdict_lines_restate_the_registered_rule(reference):
    registered = claims.load_claims()
    for cell in code_cells(reference):
        for cid, line in claims.parse_verdict_lines(stdout_of(cell)).items():
            assert claims.LINE.match(line).group(4) == registered[cid].rule


def test_ledger_reads_the_references():
    # the verdict records blessed beside the reference notebooks (`make references`)
    records = REFERENCES / "records"
    assert records.is_dir(), f"no blessed verdict records in {records}: run `make references`"
    table = ledger.ledger(ledger.read_records(records)).set_index("id")
    assert len(table) == len(claims.load_claims())
    tested = set(table.index[table["verdict"] != claims.NOT_TESTED])
    assigned = {c.id for ch in CHAPTERS for c in claims.claims_for_chapter(chapter_number(ch))}
    assert tested == assigned


# --- nbval bites ---------------------------------------------------------------------------

def _notebook(stored: str, printed: str, tags: list[str]) -> dict:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"print({printed!r})", metadata={"tags": tags})
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored + "\n")]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def _run_nbval(tmp_path: Path, nb: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "probe.ipynb"
    nbformat.write(nbformat.from_dict(nb), path)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-current-env", "--rootdir", str(tmp_path), "-c", "/dev/null", str(path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)


@pytest.mark.book
@pytest.mark.parametrize("stored, printed, tags, passes", [
    ("CLAIM C1: SUPPORTED - x = 0.01", "CLAIM C1: SUPPORTED - x = 0.01", [CHECK], True),
    ("CLAIM C1: SUPPORTED - x = 0.01", "CLAIM C1: SUPPORTED - x = 0.02", [CHECK], False),
    ("CLAIM C1: SUPPORTED - x = 0.01", "CLAIM C1: REFUTED - x = 0.01", [CHECK], False),
    # the same change in an untagged cell goes unnoticed: verdicts must sit in tagged cells
    ("CLAIM C1: SUPPORTED - x = 0.01", "CLAIM C1: REFUTED - x = 0.01", [], True),
], ids=["same", "changed-number", "changed-verdict", "untagged-is-not-compared"])
def test_nbval_compares_tagged_outputs(tmp_path, stored, printed, tags, passes):
    result = _run_nbval(tmp_path, _notebook(stored, printed, tags))
    assert (result.returncode == 0) == passes, result.stdout[-2000:]


def test_sanitizer_only_touches_volatile_text():
    config = (ROOT / "tests" / "sanitize.cfg").read_text()
    patterns = re.findall(r"^regex: (.*)$", config, flags=re.M)
    assert patterns
    verdict = "CLAIM C1: SUPPORTED - mean_tv_frequent = 0.002/0.001 (rule: mean TV <= 0.02)"
    for pattern in patterns:
        assert not re.search(pattern, verdict), f"sanitizer pattern {pattern!r} rewrites a verdict"
