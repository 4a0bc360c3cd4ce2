"""Tests of bayes_at_scale.book.ledger: reading verdict records, the ledger and its markdown."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from bayes_at_scale.book import claims, ledger
from bayes_at_scale.book.claims import Claim

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def all_claims() -> dict[str, Claim]:
    return claims.load_claims()


def _record(all_claims, cid: str, value: float = 0.123456, seeds: int = 1,
            **extra) -> claims.Record:
    claim = all_claims[cid]
    per_seed = [{c.statistic: value for c in claim.conditions}] * seeds
    return claims.make_record(claim, per_seed, extra or None, root=ROOT)


def _write(folder: Path, *records: claims.Record) -> list[Path]:
    return [claims.write_record(r, folder) for r in records]


# --- reading records ----------------------------------------------------------------------


def test_records_do_not_depend_on_the_order_they_are_listed(tmp_path, all_claims):
    paths = _write(tmp_path, *(_record(all_claims, cid) for cid in ("C10", "C2", "C1", "C13")))
    results = [ledger.records_from_files(order) for order in itertools.permutations(paths)]
    assert all(r == results[0] for r in results)
    assert list(results[0]) == ["C1", "C2", "C10", "C13"]  # claim order, not name order
    tables = [ledger.ledger(r, all_claims) for r in results]
    assert all(t.equals(tables[0]) for t in tables)
    assert ledger.read_records(tmp_path) == results[0]


def test_record_files_are_the_claims_json_files(tmp_path, all_claims):
    _write(tmp_path, _record(all_claims, "C1"))
    for name in ("notes.json", "C1a.json", ".C2.json.partial", "C3.txt"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in ledger.record_files(tmp_path)] == ["C1.json"]
    assert ledger.record_files(tmp_path / "missing") == []
    assert ledger.read_records(tmp_path / "missing") == {}


def test_a_record_must_be_named_after_its_claim(tmp_path, all_claims):
    path = _write(tmp_path, _record(all_claims, "C1"))[0]
    wrong = path.rename(tmp_path / "C2.json")
    with pytest.raises(ValueError, match=r"C2.json holds the record of C1, not of C2"):
        ledger.records_from_files([wrong])


def test_a_claim_has_one_record(tmp_path, all_claims):
    a = _write(tmp_path / "a", _record(all_claims, "C1"))
    b = _write(tmp_path / "b", _record(all_claims, "C1", 0.5))
    with pytest.raises(ValueError, match=r"claim C1 has more than one record"):
        ledger.records_from_files(a + b)


def test_a_bad_record_is_named(tmp_path):
    (tmp_path / "C4.json").write_text('{"format": 0}')
    with pytest.raises(ValueError, match=r"C4.json: not a verdict record of format 1"):
        ledger.read_records(tmp_path)


# --- which records --------------------------------------------------------------------------


def _root(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir(parents=True)
    (tmp_path / "data" / "claims.yaml").write_text((ROOT / "data" / "claims.yaml").read_text())
    return tmp_path


def test_without_essay_records_the_blessed_records_are_read(tmp_path, monkeypatch, all_claims):
    root = _root(tmp_path)
    monkeypatch.delenv(claims.RECORDS_ENV, raising=False)
    _write(root / ledger.BLESSED, _record(all_claims, "C5"))
    _write(root / ledger.BUILT, _record(all_claims, "C6"))  # an earlier build's: not read
    assert ledger.records_source(root) == root / ledger.BLESSED
    records, origin = ledger.find_records(root)
    assert list(records) == ["C5"] and origin == "the committed reference notebooks"


def test_essay_records_is_read_when_it_holds_records(tmp_path, monkeypatch, all_claims):
    root = _root(tmp_path / "book")
    _write(root / ledger.BLESSED, _record(all_claims, "C5"))
    _write(root / ledger.BUILT, _record(all_claims, "C6"))
    monkeypatch.setenv(claims.RECORDS_ENV, "_build/records")
    records, origin = ledger.find_records(root)
    assert list(records) == ["C6"] and origin == "this build's executed chapters"
    # the blessed folder named by ESSAY_RECORDS, as `make references` does
    monkeypatch.setenv(claims.RECORDS_ENV, str(root / ledger.BLESSED))
    assert ledger.find_records(root)[1] == "the committed reference notebooks"
    # any other folder, by its path
    other = _write(tmp_path / "elsewhere", _record(all_claims, "C7"))[0].parent
    monkeypatch.setenv(claims.RECORDS_ENV, str(other))
    assert ledger.find_records(root) == ({"C7": ledger.read_records(other)["C7"]},
                                         f"the records in {other.resolve()}")
    # inside the book, by its path from the book's root
    _write(root / "_build" / "full" / "records", _record(all_claims, "C8"))
    monkeypatch.setenv(claims.RECORDS_ENV, "_build/full/records")
    assert ledger.find_records(root)[1] == "the records in _build/full/records"


def test_an_empty_essay_records_folder_falls_back_to_the_blessed_records(tmp_path, monkeypatch,
                                                                          all_claims):
    root = _root(tmp_path)
    _write(root / ledger.BLESSED, _record(all_claims, "C5"))
    (root / ledger.BUILT).mkdir(parents=True)
    monkeypatch.setenv(claims.RECORDS_ENV, "_build/records")
    assert ledger.find_records(root) == (ledger.read_records(root / ledger.BLESSED),
                                         "the committed reference notebooks")


def test_a_book_without_records(tmp_path, monkeypatch, all_claims):
    monkeypatch.delenv(claims.RECORDS_ENV, raising=False)
    records, origin = ledger.find_records(_root(tmp_path))
    assert records == {} and origin == "the committed reference notebooks"
    table = ledger.ledger(records, all_claims)
    assert (table["verdict"] == claims.NOT_TESTED).all()
    assert ledger.summary_line(table, origin) == (
        f"Verdicts read from the committed reference notebooks: 0 of {len(claims.load_claims())} "
        "claims tested.")


# --- the ledger -----------------------------------------------------------------------------


def test_ledger(all_claims):
    records = {cid: _record(all_claims, cid, seeds=2) for cid in ("C1", "C7", "C14")}
    table = ledger.ledger(records, all_claims)
    assert list(table.columns) == list(ledger.COLUMNS)
    assert list(table["id"]) == ledger.reading_order(all_claims)
    row = table.set_index("id")
    for cid, record in records.items():
        assert row.loc[cid, "verdict"] == record.verdict
        assert row.loc[cid, "measured"] == claims.LINE.match(record.line).group(3)
        assert row.loc[cid, "printed"] == record.printed
        assert (row.loc[cid, "document"], row.loc[cid, "anchor"]) == (
            record.document, f"claim-{cid.lower()}")
    assert row.loc["C1", "verdict"] == "REFUTED"  # 0.123 > 0.02
    assert row.loc["C1", "document"] == "01_frequentist_limit"
    assert row.loc["C2", "verdict"] == claims.NOT_TESTED
    assert tuple(row.loc["C2", ["measured", "document", "anchor"]]) == ("", "", "")
    assert row.loc["C2", "printed"] == {}
    assert row.loc["C7", "cite"] == "kalai2024calibrated" and row.loc["C14", "cite"] == ""
    assert row.loc["C7", "source"] == "Kalai & Vempala 2024"
    assert row.loc["C5", "discussed_as"] == "INCONCLUSIVE" and row.loc["C5", "round"] == 1
    assert row.loc["C14", "chapter"] == 7 and row.loc["C3", "rule"] == all_claims["C3"].rule
    assert row.loc["C12", "caveat"].startswith("premise not met") and row.loc["C1", "caveat"] == ""
    assert ledger.summary_line(table, "here") == (
        f"Verdicts read from here: 3 of {len(all_claims)} claims tested.")


def test_ledger_reads_the_claims_file_by_default(all_claims):
    assert ledger.ledger({}).equals(ledger.ledger({}, all_claims))


def test_ledger_rejects_records_of_unknown_claims(all_claims):
    c1 = _record(all_claims, "C1")
    with pytest.raises(ValueError, match=r"records of unknown claims: C77, C99"):
        ledger.ledger({"C99": c1, "C77": c1, "C1": c1}, all_claims)


@pytest.mark.parametrize("field, value", [("rule", "an older rule"), ("chapter", 3)])
def test_ledger_rejects_a_record_of_another_rule_or_chapter(all_claims, field, value):
    import dataclasses

    stale = dataclasses.replace(_record(all_claims, "C1"), **{field: value})
    with pytest.raises(ValueError, match=r"the record of C1 was written for another rule or "
                                         r"chapter than data/claims.yaml's; re-run chapter 1"):
        ledger.ledger({"C1": stale}, all_claims)


# --- the ledger as markdown -----------------------------------------------------------------


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_ledger_markdown(all_claims):
    records = {cid: _record(all_claims, cid) for cid in ("C5", "C7")}
    text = ledger.ledger_markdown(ledger.ledger(records, all_claims))
    rows = text.strip().splitlines()
    assert text.endswith("|\n") and len(rows) == 2 + len(all_claims)
    assert _cells(rows[0]) == list(ledger.LEDGER_HEADER)
    assert rows[1] == "| --- | --- | --- | --- | --- | --- |"
    assert all(len(_cells(r)) == len(ledger.LEDGER_HEADER) for r in rows)
    order = ledger.reading_order(all_claims)
    c12 = dict(zip(ledger.LEDGER_HEADER, _cells(rows[2 + order.index("C12")])))
    assert c12["Verdict"] == f"*{claims.NOT_TESTED}* *({all_claims['C12'].caveat})*"
    c7 = dict(zip(ledger.LEDGER_HEADER, _cells(rows[2 + order.index("C7")])))
    assert c7["Claim"].startswith("**C7** A calibrated model")
    # the rule's absolute-value bars are escaped, not column separators
    assert c7["Rule"].startswith(r"hallucination rate(LA) \>= 0.8 x monofact rate and \|")
    assert c7["Measured"] == "`hallucination_over_monofact` = 0.12; `hallucination_gap` = 0.123"
    assert c7["Verdict"] == ledger.badge(records["C7"].verdict)
    assert c7["Source"] == "{cite:t}`kalai2024calibrated`"
    assert c7["Evidence"] == "ch. 4, \N{SECTION SIGN} {ref}`claim-c7`"
    c5 = dict(zip(ledger.LEDGER_HEADER, _cells(rows[2 + order.index("C5")])))
    assert r"KL(LA \|\| MAP)" in c5["Rule"] and r"g(N\_max)" in c5["Rule"]
    c1 = dict(zip(ledger.LEDGER_HEADER, _cells(rows[2])))
    assert (c1["Measured"], c1["Verdict"], c1["Evidence"]) == ("-", "*not yet tested*",
                                                                "chapter 1")


def test_measured_markdown_lists_every_seed():
    assert ledger.measured_markdown({"a": ("0.002", "0.001"), "b": ("-0.67",)}) == (
        "`a` = 0.002/0.001; `b` = -0.67")
    assert ledger.measured_markdown({}) == "-"


@pytest.mark.parametrize("chapter, document, anchor, text", [
    (4, "04_x", "claim-c7", "ch. 4, \N{SECTION SIGN} {ref}`claim-c7`"),
    (4, "", "claim-c7", "chapter 4"),  # the record found no chapter file
    (4, "", "", "chapter 4"),  # not yet tested
])
def test_evidence_markdown(chapter, document, anchor, text):
    assert ledger.evidence_markdown(chapter, document, anchor) == text


def test_the_ledger_shows_both_rounds():
    registered = claims.load_claims()
    table = ledger.ledger({}, registered)
    assert set(table["round"]) == {1, 2}
    row = table.set_index("id")
    assert row.loc["C15", "refines"] == "C1" and row.loc["C1", "refines"] == ""
    text = ledger.ledger_markdown(table)
    c15 = next(line for line in text.splitlines() if line.startswith("| **C15**"))
    assert f"*(round 2; refines C1: {registered['C15'].why})*" in c15
    c20 = next(line for line in text.splitlines() if line.startswith("| **C20**"))
    assert f"*(round 2: {registered['C20'].why})*" in c20
    c1 = next(line for line in text.splitlines() if line.startswith("| **C1**"))
    assert "round" not in c1


def test_reading_order_puts_each_refinement_after_what_it_refines(all_claims):
    order = ledger.reading_order(all_claims)
    assert sorted(order) == sorted(all_claims) and len(set(order)) == len(order)
    for cid, c in all_claims.items():
        if c.refines:
            assert order.index(cid) > order.index(c.refines)
            between = order[order.index(c.refines) + 1:order.index(cid)]
            assert all(all_claims[b].refines == c.refines for b in between)
    assert order[:4] == ["C1", "C15", "C2", "C16"]
    # a new round-2 claim follows the last claim of its chapter
    chapter_3 = [cid for cid in order if all_claims[cid].chapter == 3]
    assert chapter_3[-1] == "C20" and order.index("C20") == order.index(chapter_3[-2]) + 1


@pytest.mark.parametrize("verdict", ["SUPPORTED", "REFUTED", "INCONCLUSIVE"])
def test_badges_carry_the_word_and_a_symbol(verdict):
    text = ledger.badge(verdict)
    colour, symbol = ledger.BADGES[verdict]
    assert text == f"{{bdg-{colour}}}`{symbol} {verdict}`"
    assert ledger.verdict_of_badge(text + " *(a caveat)*") == verdict
    assert len({c for c, _ in ledger.BADGES.values()}) == 3   # one colour per verdict
    assert ledger.badge(claims.NOT_TESTED) == f"*{claims.NOT_TESTED}*"


def test_tiles_put_refinements_under_what_they_refine(all_claims):
    table = ledger.ledger({}, all_claims)
    tiles = ledger.tiles(table).set_index("id")
    assert len(tiles) == len(all_claims)
    for cid, c in all_claims.items():
        assert tiles.loc[cid, "group"] == ledger.STEPS[c.chapter]
        if c.refines:
            assert tiles.loc[cid, "column"] == tiles.loc[c.refines, "column"]
            assert tiles.loc[cid, "round"] > tiles.loc[c.refines, "round"]
    # a new round-2 claim has a column of its own in its step
    c26 = tiles.loc["C26"]
    assert c26["round"] == 2 and not ((tiles["group"] == c26["group"])
                                      & (tiles["column"] == c26["column"])
                                      & (tiles["round"] == 1)).any()
    with pytest.raises(ValueError, match=r"no step of the blog's argument for chapter"):
        ledger.tiles(table.assign(chapter=99))


def test_summary_markdown(all_claims):
    records = {cid: _record(all_claims, cid) for cid in ("C5", "C7")}
    table = ledger.ledger(records, all_claims)
    rows = ledger.summary_markdown(table).strip().splitlines()
    assert _cells(rows[0]) == list(ledger.SUMMARY_HEADER) and len(rows) == 2 + len(all_claims)
    cells = {re.match(r"\*\*(C\d+)\*\*", _cells(r)[0]).group(1): _cells(r) for r in rows[2:]}
    assert list(cells) == ledger.reading_order(all_claims)
    assert cells["C7"][1:] == ["1", "4", ledger.badge(records["C7"].verdict)]
    assert cells["C15"][0].endswith("*(refines C1)*") and cells["C15"][3] == \
        f"*{claims.NOT_TESTED}*"
