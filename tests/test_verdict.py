"""The verdict chapter's ledger agrees with the records of the chapters it summarises.

Every chapter records its verdicts as it prints them (``claims.report`` with ``ESSAY_RECORDS``
set); ``make references`` blesses those records in ``tests/references/records`` beside the
reference notebooks. ``tests/references/08_verdict.ipynb`` is the closing chapter executed
against them. Its ledger must list every registered claim once, with the verdict and the
statistics of the claim's record (or "not yet tested" where there is none) and a reference to
the label of the section that printed the verdict; each record must say what its chapter's
reference notebook printed. nbval re-executes the verdict chapter and compares the ledger
cell's output, so a chapter re-blessed with a new verdict and a verdict chapter left as it was
fail the suite until ``make references`` brings them together.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from markdown_it.renderer import RendererHTML
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser

from bayes_at_scale.book import claims, ledger

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "tests" / "references"
RECORDS = ROOT / ledger.BLESSED
VERDICT = REFERENCES / "08_verdict.ipynb"
CHECK = "nbval-check-output"
#: The settings ``make references`` blesses with (the Makefile's QUICK).
QUICK = {"scale": "quick", "seed": 0, "threads": 2, "dtype": "float32"}


def _outputs(cell, kind: str) -> str:
    return "".join(o.get("data", {}).get(kind, "") if kind != "stdout" else o.get("text", "")
                   for o in cell.get("outputs", [])
                   if (o.get("output_type") == "stream") == (kind == "stdout"))


@pytest.fixture(scope="module")
def ledger_cell():
    assert VERDICT.is_file(), "no executed verdict chapter: run `make references`"
    nb = nbformat.read(VERDICT, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"
             and _outputs(c, "text/markdown").startswith("| Claim |")]
    assert len(cells) == 1, "the verdict chapter must show exactly one ledger table"
    return cells[0]


def _split(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


@pytest.fixture(scope="module")
def ledger_rows(ledger_cell) -> dict[str, dict[str, str]]:
    lines = _outputs(ledger_cell, "text/markdown").strip().splitlines()
    header = _split(lines[0])
    assert header == list(ledger.LEDGER_HEADER)
    rows = {}
    for line in lines[2:]:
        row = dict(zip(header, _split(line)))
        cid = re.match(r"\*\*(C\d+)\*\*", row["Claim"]).group(1)
        assert cid not in rows, f"{cid} appears twice in the ledger"
        rows[cid] = row
    return rows


@pytest.fixture(scope="module")
def records() -> dict[str, claims.Record]:
    assert RECORDS.is_dir(), f"no blessed verdict records in {RECORDS}: run `make references`"
    return ledger.read_records(RECORDS)


@pytest.fixture(scope="module")
def printed() -> dict[str, tuple[str, Path]]:
    """Every verdict line the chapters' references printed, with the reference that printed it."""
    found = {}
    for path in sorted(REFERENCES.glob("[0-9]*.ipynb")):
        if path != VERDICT:
            for cell in nbformat.read(path, as_version=4).cells:
                for cid, line in claims.parse_verdict_lines(_outputs(cell, "stdout")).items():
                    found[cid] = (line, path)
    return found


def test_the_ledger_cell_is_compared_by_nbval(ledger_cell):
    assert CHECK in ledger_cell.metadata.get("tags", [])
    text = _outputs(ledger_cell, "stdout")
    assert text.startswith("Verdicts read from the committed reference notebooks: ")
    assert not claims.parse_verdict_lines(text)


def test_every_registered_claim_appears_once_in_order(ledger_rows):
    registered = yaml.safe_load((ROOT / "data" / "claims.yaml").read_text())["claims"]
    assert sorted(ledger_rows) == sorted(entry["id"] for entry in registered)
    # each round-1 claim, then the round-2 claims that refine it
    assert list(ledger_rows) == ledger.reading_order(claims.load_claims())


def test_every_ledger_row_agrees_with_its_record(ledger_rows, records):
    registered = claims.load_claims()
    for cid, row in ledger_rows.items():
        chapter = registered[cid].chapter
        if cid not in records:
            assert ledger.verdict_of_badge(row["Verdict"]) == claims.NOT_TESTED, (
                f"{cid} has a verdict in the ledger but no record")
            assert (row["Measured"], row["Evidence"]) == ("-", f"chapter {chapter}")
            continue
        record = records[cid]
        assert ledger.verdict_of_badge(row["Verdict"]) == record.verdict, (
            f"{cid}: the ledger says {row['Verdict']}, its record {record.verdict}; "
            f"re-bless the verdict chapter")
        assert row["Verdict"].startswith(ledger.badge(record.verdict))
        if registered[cid].caveat:
            assert registered[cid].caveat.split(":")[0] in row["Verdict"]
        assert row["Measured"] == ledger.measured_markdown(record.printed)
        assert row["Evidence"] == f"ch. {chapter}, \N{SECTION SIGN} {{ref}}`claim-{cid.lower()}`"
        assert (record.chapter, record.anchor) == (chapter, f"claim-{cid.lower()}")


def test_every_record_says_what_its_chapter_printed(records, printed):
    assert set(records) == set(printed), "records and printed verdict lines name other claims"
    for cid, record in records.items():
        line, path = printed[cid]
        assert record.line == line, f"{cid}: the record and {path.name} disagree"
        assert (record.claim, record.verdict, record.measured, record.rule) == \
            claims.LINE.match(line).groups()
        assert record.document == path.stem and int(path.stem[:2]) == record.chapter


def test_records_are_blessed_at_the_quick_scale_in_canonical_form(records):
    for cid, record in records.items():
        assert record.settings == QUICK, f"{cid} was recorded with {record.settings}"
        assert (RECORDS / f"{cid}.json").read_text() == record.to_json()


def _tokens(markdown: str) -> list[tuple[str, object]]:
    """The top-level blocks of a markdown cell, in order: ``("label", name)``,
    ``("heading", level)`` or ``("other", type)`` (a paragraph, a directive...)."""
    parser = create_md_parser(MdParserConfig(enable_extensions={"dollarmath", "colon_fence"}),
                              RendererHTML)
    found = []
    for token in parser.parse(markdown):
        if token.type == "myst_target":
            found.append(("label", token.content))
        elif token.type == "heading_open":
            found.append(("heading", int(token.tag[1])))
        elif token.level == 0 and token.nesting >= 0:
            found.append(("other", token.type))
    return found


def test_every_anchor_labels_the_section_that_printed_the_verdict(records):
    """``(claim-cN)=`` stands right above a heading (under other labels at most), and the cell
    that printed claim N's verdict lies in that heading's section."""
    for cid, record in records.items():
        cells = nbformat.read(REFERENCES / f"{record.document}.ipynb", as_version=4).cells
        # each cell's labels and headings, in order, with the cell's index
        marks = [(i, kind, value) for i, cell in enumerate(cells) if cell.cell_type == "markdown"
                 for kind, value in _tokens(cell.source)]
        at = [n for n, (_, kind, value) in enumerate(marks)
              if (kind, value) == ("label", record.anchor)]
        assert len(at) == 1, f"{record.document} must label one section ({record.anchor})=, " \
                             f"found {len(at)}"
        heading = next((n for n in range(at[0] + 1, len(marks)) if marks[n][1] != "label"),
                       None)
        assert heading is not None and marks[heading][1] == "heading", (
            f"({record.anchor})= is not directly above a heading in {record.document}")
        start, level = marks[heading][0], marks[heading][2]
        end = next((i for i, kind, value in marks[heading + 1:]
                    if kind == "heading" and value <= level), len(cells))
        printing = [i for i, cell in enumerate(cells) if cell.cell_type == "code"
                    and cid in claims.parse_verdict_lines(_outputs(cell, "stdout"))]
        assert len(printing) == 1 and start <= printing[0] < end, (
            f"{cid}'s verdict is not printed in the section labelled {record.anchor}")


# --- the reading order of the book's pages ---------------------------------------------------


@pytest.fixture(scope="module")
def reading_order():
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import reading_order
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    return reading_order


class _App:
    def __init__(self, readers=None):
        self.hooks, self.values = {}, {}
        self.config = type("Config", (), {"verdict_readers": readers})()

    def connect(self, event, handler, priority=500):
        self.hooks[event] = handler

    def add_config_value(self, name, default, rebuild):
        self.values[name] = default


def test_the_reading_order_extension_is_configured(reading_order):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"].get("reading_order") == "_ext/"
    app = _App()
    metadata = reading_order.setup(app)
    assert app.hooks["env-before-read-docs"] is reading_order.read_readers_last
    assert app.hooks["env-get-outdated"] is reading_order.reread_readers
    assert app.values["verdict_readers"] == ["chapters/08_verdict", "index"]
    assert metadata["parallel_read_safe"] is False  # a parallel read would not keep the order
    for page in app.values["verdict_readers"]:
        assert (ROOT / f"{page}.md").is_file()
        assert "ledger.find_records()" in (ROOT / f"{page}.md").read_text()


@pytest.mark.parametrize("docnames, expected", [
    (["appendix/api", "chapters/01_a", "chapters/08_verdict", "chapters/09_later", "glossary",
      "index", "zzz"],
     ["appendix/api", "chapters/01_a", "chapters/09_later", "glossary", "zzz",
      "chapters/08_verdict", "index"]),
    (["index", "chapters/02_b"], ["chapters/02_b", "index"]),
    (["chapters/02_b"], ["chapters/02_b"]),
    ([], []),
])
def test_the_pages_that_read_records_are_read_last(reading_order, docnames, expected):
    app = _App(list(reading_order.READERS))
    names = list(docnames)
    reading_order.read_readers_last(app, None, names)
    assert names == expected  # in place: Sphinx reads the list it passed


@pytest.mark.parametrize("added, changed, expected", [
    (set(), {"chapters/01_a"}, ["chapters/08_verdict", "index"]),
    ({"chapters/09_new"}, {"index"}, ["chapters/08_verdict"]),
    (set(), {"chapters/08_verdict"}, []),  # only a reader changed: nothing else to read
    (set(), set(), []),
])
def test_the_readers_are_read_again_when_another_page_is(reading_order, added, changed,
                                                         expected):
    app = _App(list(reading_order.READERS))
    assert reading_order.reread_readers(app, None, added, changed, set()) == expected
