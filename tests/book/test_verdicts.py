"""Tests of bayes_at_scale.book.verdicts: the In brief boxes, the verdict callouts and the
answer in brief follow the verdicts they are given, and the claims file carries what they
need."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bayes_at_scale.book import claims, ledger, verdicts
from bayes_at_scale.book.claims import PREMISE, VERDICTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def all_claims():
    return claims.load_claims()


def _stats(claim, passes: bool) -> dict:
    """Statistics on which every condition of ``claim`` holds (or fails)."""
    stats = {}
    for c in claim.conditions:
        if c.statistic == PREMISE:
            stats[c.statistic] = 1.0
            continue
        up = c.op in (">=", ">")
        stats[c.statistic] = c.threshold + (1.0 if up == passes else -1.0)
    return stats


def _record(claim, verdict: str) -> claims.Record:
    if verdict == "INCONCLUSIVE":
        seeds = [_stats(claim, True), _stats(claim, False)]
    else:
        seeds = [_stats(claim, verdict == "SUPPORTED")] * 2
    pooled = {c.statistic: seeds[0][c.statistic] for c in claim.conditions_in("pooled")}
    record = claims.make_record(claim, seeds, root=ROOT, pooled=pooled or None)
    assert record.verdict == verdict, (claim.id, record.verdict)
    return record


def _discussed(claim) -> str:
    """The verdict the prose was written against (SUPPORTED where none is registered)."""
    return claim.discussed_as or "SUPPORTED"


# --- the claims file -------------------------------------------------------------------


def test_every_claim_reads_every_verdict(all_claims):
    for claim in all_claims.values():
        assert claim.tested_as, claim.id
        assert set(claim.reading) == set(VERDICTS), claim.id
        assert set(claim.brief) == set(VERDICTS), claim.id
        for verdict, flag in claim.flags.items():
            assert flag in claims.FLAGS
            # a flagged reading links to the claim that refines it
            assert verdicts.refinements(claim, all_claims), (claim.id, verdict)


def test_every_chapter_asks_a_question_and_the_book_gives_an_answer():
    questions = claims.load_questions()
    chapters = sorted(p.name[:2] for p in (ROOT / "chapters").glob("[0-9]*_*.md"))
    assert sorted(questions) == [int(n) for n in chapters]
    assert all(q.endswith("?") for q in questions.values())
    assert claims.load_answer()


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"reading": {"MAYBE": "x"}}, "unknown verdict"),
        ({"reading": "supported"}, "must map verdicts"),
        ({"brief": {"REFUTED": "  "}}, "non-empty"),
        ({"flag": {"REFUTED": "it was hard"}}, "flag of REFUTED must be one of"),
        ({"tested_as": ""}, "tested_as must be a non-empty string"),
    ],
)
def test_bad_readings_are_refused(tmp_path, entry, message):
    data = yaml.safe_load((ROOT / "data" / "claims.yaml").read_text())
    data["claims"] = [dict(data["claims"][0], **entry)]
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=message):
        claims.load_claims(path)


def test_bad_questions_are_refused(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"chapters": [{"number": 1, "question": ""}]}))
    with pytest.raises(ValueError, match="chapter 1 has no question"):
        claims.load_questions(path)
    path.write_text(yaml.safe_dump({"claims": []}))
    with pytest.raises(ValueError, match="no answer in brief"):
        claims.load_answer(path)


# --- what report() keeps ---------------------------------------------------------------


def test_report_keeps_this_kernels_records_without_a_folder(monkeypatch, all_claims, capsys):
    monkeypatch.delenv(claims.RECORDS_ENV, raising=False)
    monkeypatch.setattr(claims, "_REPORTED", {})
    claim = all_claims["C1"]
    claims.report("C1", [_stats(claim, False)], all_claims)
    line = capsys.readouterr().out.strip()
    kept = claims.reported()
    assert list(kept) == ["C1"]
    assert kept["C1"].verdict == "REFUTED" and kept["C1"].line == line


# --- callouts and boxes ----------------------------------------------------------------


@pytest.mark.parametrize("verdict", VERDICTS)
def test_a_callout_shows_the_verdicts_badge_reading_statistics_and_rule(
    all_claims, verdict
):
    claim = all_claims["C1"]
    record = _record(claim, verdict)
    text = verdicts.callout(claim, record, all_claims)
    assert text.startswith(":::{admonition} C1:") and text.endswith(":::")
    assert f"verdict-{verdict.lower()}" in text
    assert ledger.badge(verdict) in text
    assert " ".join(claim.reading[verdict].split()[:4]) in text
    other = [v for v in VERDICTS if v != verdict]
    assert all(claim.reading[v] not in text for v in other)
    for name, texts in record.printed.items():  # one line per statistic, seeds spaced
        assert f"- `{name}` = " + " / ".join(texts) in text
    assert "**Rule:**" in text and f"**Tested:** {claim.tested_as}" in text


def test_a_flagged_verdict_names_its_flag_and_links_its_refinement(all_claims):
    flagged = next(c for c in all_claims.values() if c.flags)
    verdict = next(iter(flagged.flags))
    text = verdicts.reading(flagged, verdict, all_claims)
    assert f"Caveat: {flagged.flags[verdict]}" in text
    for later in verdicts.refinements(flagged, all_claims):
        assert f"{{ref}}`{later} <claim-{later.lower()}>`" in text
    unflagged = next(v for v in VERDICTS if v not in flagged.flags)
    assert "Caveat" not in verdicts.reading(flagged, unflagged, all_claims)


def test_the_verdict_section_holds_every_claim_of_its_chapter(all_claims):
    records = {cid: _record(c, "SUPPORTED") for cid, c in all_claims.items()
               if c.chapter == 1}
    text = verdicts.verdict_section(1, records, all_claims)
    shown = re.findall(r"^:::\{admonition\} (C\d+):", text, flags=re.M)
    assert shown == [cid for cid in ledger.reading_order(all_claims) if cid in records]
    with pytest.raises(ValueError, match="no registered claim belongs to chapter 99"):
        verdicts.verdict_section(99, records, all_claims)


def test_in_brief_follows_the_verdicts_and_flags_a_change(all_claims):
    chapter = 4
    ids = [c.id for c in all_claims.values() if c.chapter == chapter]
    as_discussed = {cid: _record(all_claims[cid], _discussed(all_claims[cid]))
                    for cid in ids}
    questions = claims.load_questions()
    box = verdicts.in_brief(chapter, as_discussed, all_claims)
    assert questions[chapter] in box
    for cid in ids:
        claim = all_claims[cid]
        assert claim.brief[_discussed(claim)] in box
        assert f"{{ref}}`{cid} <claim-{cid.lower()}>` " + ledger.badge(
            _discussed(claim)) in box
    assert "differs" not in box
    # one verdict turns over: its brief and badge change, and the box says so
    cid = ids[0]
    claim = all_claims[cid]
    turned = "REFUTED" if claim.discussed_as != "REFUTED" else "SUPPORTED"
    changed = dict(as_discussed, **{cid: _record(claim, turned)})
    box = verdicts.in_brief(chapter, changed, all_claims)
    assert claim.brief[turned] in box and claim.brief[claim.discussed_as] not in box
    assert ledger.badge(turned) in box
    assert re.search(rf"differs .* for {cid} \({turned}, written against", box)


def test_an_untested_claim_is_said_to_be_untested(all_claims):
    box = verdicts.in_brief(1, {}, all_claims)
    assert box.count("*not yet tested*") >= len(
        [c for c in all_claims.values() if c.chapter == 1])


def test_the_answer_in_brief_lists_every_claim_once(all_claims):
    records = {cid: _record(c, _discussed(c)) for cid, c in all_claims.items()}
    box = verdicts.answer_in_brief(records, "An answer.", all_claims)
    for cid in all_claims:
        assert box.count(f"`{cid} <claim-{cid.lower()}>`") == 1
    assert "differs" not in box
    with pytest.raises(ValueError, match="empty"):
        verdicts.answer_in_brief(records, " ", all_claims)
    box = verdicts.answer_in_brief(records, "An answer.", all_claims, title="In brief",
                                   question="Why?")
    assert box.startswith(":::{admonition} In brief") and "**Question.** Why?" in box


def test_a_callout_shows_each_seeds_interval(all_claims):
    claim = next(c for c in all_claims.values() if c.round == 2
                 and not c.conditions_in("pooled"))
    stats = _stats(claim, True)
    name = claim.conditions[-1].statistic
    if name == PREMISE:
        name = claim.conditions[0].statistic
    value = stats[name]
    stats[name] = (value, value - 0.5, value + 0.5)
    record = claims.make_record(claim, [stats], root=ROOT)
    digits = claim.condition(name).digits
    low, high = (claims.format_value(v, digits) for v in (value - 0.5, value + 0.5))
    text = verdicts.callout(claim, record, all_claims)
    assert f"- `{name}` = {record.printed[name][0]} [{low}, {high}]" in text
