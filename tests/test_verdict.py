"""The verdict chapter's ledger agrees with the chapters it summarises.

``tests/references/08_verdict.ipynb`` is the closing chapter executed against the other chapters'
reference notebooks. Its ledger must list every registered claim once, with the verdict and the
statistics that the claim's own chapter printed (or "not yet tested" where that chapter has no
reference yet), and link to a section that exists in that chapter. nbval re-executes the
notebook and compares the ledger cell's output, so a chapter re-blessed with a new verdict and a
verdict chapter left as it was fail the suite until ``make references`` brings them together.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml
from markdown_it.renderer import RendererHTML
from markdown_it.tree import SyntaxTreeNode
from myst_parser.config.main import MdParserConfig
from myst_parser.mdit_to_docutils.base import compute_unique_slug
from myst_parser.parsers.mdit import create_md_parser

from bayes_at_scale import claims

ROOT = Path(__file__).resolve().parents[1]
REFERENCES = ROOT / "tests" / "references"
VERDICT = REFERENCES / "08_verdict.ipynb"
CHECK = "nbval-check-output"
LINK = re.compile(r"^\[[^\]]*\]\(([^)#]+)\.md(?:#([^)]*))?\)$")


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
    assert header == list(claims.LEDGER_HEADER)
    rows = {}
    for line in lines[2:]:
        row = dict(zip(header, _split(line)))
        cid = re.match(r"\*\*(C\d+)\*\*", row["Claim"]).group(1)
        assert cid not in rows, f"{cid} appears twice in the ledger"
        rows[cid] = row
    return rows


@pytest.fixture(scope="module")
def chapter_verdicts() -> dict[str, tuple[str, Path]]:
    """Every verdict line in the chapters' references, with the reference that printed it."""
    found = {}
    for path in sorted(REFERENCES.glob("[0-9]*.ipynb")):
        if path != VERDICT:
            for cid, line in claims.verdicts_from_notebooks([path]).items():
                found[cid] = (line, path)
    return found


def test_the_ledger_cell_is_compared_by_nbval(ledger_cell):
    assert CHECK in ledger_cell.metadata.get("tags", [])
    printed = _outputs(ledger_cell, "stdout")
    assert printed.startswith("Verdicts read from the committed reference notebooks: ")
    assert not claims.parse_verdict_lines(printed)


def test_every_registered_claim_appears_once_in_order(ledger_rows):
    registered = yaml.safe_load((ROOT / "data" / "claims.yaml").read_text())["claims"]
    assert list(ledger_rows) == [entry["id"] for entry in registered]


def test_every_verdict_equals_its_chapters_verdict_line(ledger_rows, chapter_verdicts):
    registered = claims.load_claims()
    for cid, row in ledger_rows.items():
        if cid not in chapter_verdicts:
            assert row["Verdict"] == f"*{claims.NOT_TESTED}*", (
                f"{cid} has a verdict in the ledger but none in its chapter")
            continue
        line, path = chapter_verdicts[cid]
        m = claims.LINE.match(line)
        assert row["Verdict"] == m.group(2), (
            f"{cid}: the ledger says {row['Verdict']}, {path.name} says {m.group(2)}; "
            f"re-bless the verdict chapter")
        measured = "; ".join(f"`{k}` = {'/'.join(v)}"
                             for k, v in claims.parse_measured(m.group(3)).items())
        assert row["Measured"] == measured
        assert int(path.name[:2]) == registered[cid].chapter


def _myst_slugs(markdown_cells: list[str], levels: int) -> list[str]:
    """The heading anchors MyST gives a notebook's markdown cells, in order."""
    parser = create_md_parser(MdParserConfig(enable_extensions={"dollarmath", "colon_fence"}),
                              RendererHTML)
    slugs: dict[str, None] = {}
    for text in markdown_cells:
        for node in SyntaxTreeNode(parser.parse(text)).walk():
            if node.type == "heading" and int(node.tag[1]) <= levels:
                slugs[compute_unique_slug(node, slugs)] = None
    return list(slugs)


def _markdown_cells(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


def test_every_link_goes_to_an_existing_section_of_the_claims_chapter(ledger_rows,
                                                                      chapter_verdicts):
    for cid, row in ledger_rows.items():
        if cid not in chapter_verdicts:
            assert row["Evidence"].startswith("chapter "), row["Evidence"]
            continue
        path = chapter_verdicts[cid][1]
        m = LINK.match(row["Evidence"])
        assert m, f"{cid}: evidence is not a link to a chapter section: {row['Evidence']}"
        assert m.group(1) == path.stem and (ROOT / "chapters" / f"{path.stem}.md").is_file()
        anchors = _myst_slugs(_markdown_cells(path), claims.ANCHOR_LEVELS)
        assert m.group(2) in anchors, f"{cid}: no heading with anchor {m.group(2)!r}"


@pytest.mark.parametrize("reference", sorted(REFERENCES.glob("[0-9]*.ipynb")),
                         ids=lambda p: p.stem)
def test_anchors_are_computed_as_myst_computes_them(reference):
    cells = _markdown_cells(reference)
    ours, taken = [], set()
    for text in cells:
        for level, title in claims.markdown_headings(text):
            if level <= claims.ANCHOR_LEVELS:
                ours.append(claims._unique_slug(claims.heading_slug(title), taken))
    assert ours == _myst_slugs(cells, claims.ANCHOR_LEVELS)


@pytest.mark.parametrize("title", ["Best-of-$n$ at scale", "The `unknown` token",
                                   "A [linked](https://x.org) {term}`word`", "*Emphasis* here",
                                   'Say "I don\'t know"'])
def test_heading_slug_matches_myst_on_markup(title):
    assert [claims.heading_slug(title)] == _myst_slugs([f"## {title}"], 2)


def test_the_book_makes_the_anchors_the_ledger_links_to():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["config"]["myst_heading_anchors"] >= claims.ANCHOR_LEVELS
