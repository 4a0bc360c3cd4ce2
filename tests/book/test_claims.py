"""Tests of bayes_at_scale.book.claims: the claims file, verdicts, verdict lines and records."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from bayes_at_scale.book import claims
from bayes_at_scale.book.claims import Claim, Condition
from bayes_at_scale.core import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def all_claims() -> dict[str, Claim]:
    return claims.load_claims()


@pytest.fixture
def c1(all_claims) -> Claim:
    return all_claims["C1"]


def _claim(*conditions: Condition, id: str = "C99") -> Claim:
    return Claim(id=id, chapter=1, source="test", cite=None, claim="A test claim.",
                 statement="A test claim.", rule="x <= 0.5", conditions=conditions)


ONE = _claim(Condition("x", "<=", 0.5, 3))
TWO = _claim(Condition("x", "<=", 0.5, 3), Condition("y", ">", 0.0, 2))


# --- the claims file ----------------------------------------------------------------------


def test_the_real_claims_file(all_claims):
    ids = list(all_claims)
    assert ids[:14] == [f"C{i}" for i in range(1, 15)]
    assert ids[14:] == [f"C{i}" for i in range(15, 15 + len(ids) - 14)]
    for cid, c in all_claims.items():
        assert c.id == cid
        assert isinstance(c.chapter, int) and c.chapter >= 1
        assert c.source and c.rule and c.claim and c.statement
        assert len(c.conditions) >= 1
        for cond in c.conditions:
            assert cond.op in claims.OPS
            assert re.fullmatch(r"[a-z][a-z0-9_]*", cond.statistic)
            assert isinstance(cond.threshold, float) and cond.digits >= 0
            assert cond.scope in claims.SCOPES
        assert "\n" not in c.statement and "  " not in c.statement  # folded to one line
        assert c.anchor == f"claim-{cid.lower()}"
        if int(cid[1:]) <= 14:
            assert c.round == 1 and c.refines is None
            assert c.discussed_as in claims.VERDICTS
            assert all(cond.scope == "seed" for cond in c.conditions)
        else:
            assert c.round == 2
            if c.refines is not None:  # a round-2 claim refines a round-1 claim of its chapter
                assert all_claims[c.refines].round == 1
                assert all_claims[c.refines].chapter == c.chapter
    # within a round, chapters appear in order
    for r in (1, 2):
        chapters = [c.chapter for c in all_claims.values() if c.round == r]
        assert chapters == sorted(chapters)


def test_claims_file_details(all_claims):
    c1 = all_claims["C1"]
    assert c1.chapter == 1 and c1.source == "blog" and c1.cite == "blog2024large"
    assert c1.conditions == (Condition("mean_tv_frequent", "<=", 0.02, 3),
                             Condition("spearman_n_tv", "<=", -0.5, 2))
    assert all_claims["C14"].cite is None
    assert [c.id for c in claims.claims_for_chapter(1, all_claims)] == ["C1", "C2", "C15",
                                                                          "C16"]
    assert [c.id for c in claims.claims_for_chapter(7, all_claims)][:2] == ["C13", "C14"]
    assert all_claims["C15"].refines == "C1" and all_claims["C20"].refines is None
    assert [c.scope for c in all_claims["C19"].conditions] == ["pooled"] * 3
    # the bandit claims are decided over seeds (at least 10, horizon 2,000)
    for cid in ("C25", "C26"):
        assert all(c.scope == "pooled" for c in all_claims[cid].conditions)
        assert all_claims[cid].condition("seeds").threshold == 10
        assert all_claims[cid].condition("horizon").threshold == 2000
    assert all_claims["C12"].caveat.startswith("premise not met") and all_claims["C1"].caveat \
        is None
    assert claims.claims_for_chapter(99, all_claims) == []


def test_the_verdicts_the_prose_was_written_against(all_claims):
    assert {cid: c.discussed_as for cid, c in all_claims.items() if c.round == 1} == {
        "C1": "SUPPORTED", "C2": "SUPPORTED", "C3": "REFUTED", "C4": "SUPPORTED",
        "C5": "INCONCLUSIVE", "C6": "SUPPORTED", "C7": "SUPPORTED", "C8": "REFUTED",
        "C9": "REFUTED", "C10": "REFUTED", "C11": "INCONCLUSIVE", "C12": "REFUTED",
        "C13": "REFUTED", "C14": "REFUTED"}


def test_load_claims_from_a_path(all_claims):
    assert claims.load_claims(ROOT / "data" / "claims.yaml") == all_claims
    assert claims.load_claims(str(ROOT / "data" / "claims.yaml")) == all_claims


def _write(tmp_path, entries) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": entries}))
    return path


def _entry(**overrides) -> dict:
    entry = dict(id="C1", chapter=1, round=1, source="s", cite=None, claim="c", statement="s",
                 rule="r", conditions=[dict(statistic="x", op="<=", threshold=1)])
    entry.update(overrides)
    return entry


def test_condition_digits_default_to_three(tmp_path):
    c = claims.load_claims(_write(tmp_path, [_entry()]))["C1"]
    assert c.conditions == (Condition("x", "<=", 1.0, 3),)


def test_a_caveat_is_read_and_checked(tmp_path):
    c = claims.load_claims(_write(tmp_path, [_entry(caveat="premise   not met")]))["C1"]
    assert c.caveat == "premise not met"
    assert claims.load_claims(_write(tmp_path, [_entry()]))["C1"].caveat is None
    with pytest.raises(ValueError, match=r"claim C1: caveat must be a non-empty string"):
        claims.load_claims(_write(tmp_path, [_entry(caveat=" ")]))


def test_round_and_discussed_as_are_read(tmp_path):
    c = claims.load_claims(_write(tmp_path, [_entry(round=2, discussed_as="REFUTED")]))["C1"]
    assert (c.round, c.discussed_as) == (2, "REFUTED")
    # a claim the prose has not discussed yet
    assert claims.load_claims(_write(tmp_path, [_entry()]))["C1"].discussed_as is None


@pytest.mark.parametrize("entries, pattern", [
    ([{k: v for k, v in _entry().items() if k != "rule"}], r"claim C1 lacks rule"),
    ([{k: v for k, v in _entry().items() if k not in ("source", "conditions")}],
     r"claim C1 lacks source, conditions"),
    ([{k: v for k, v in _entry().items() if k != "round"}], r"claim C1 lacks round"),
    ([_entry(round=0)], r"claim C1: round must be a positive integer, got 0"),
    ([_entry(round="1")], r"claim C1: round must be a positive integer, got '1'"),
    ([_entry(round=True)], r"claim C1: round must be a positive integer, got True"),
    ([_entry(discussed_as="supported")],
     r"claim C1: discussed_as must be one of SUPPORTED, REFUTED, INCONCLUSIVE, got 'supported'"),
    ([_entry(id="X1")], r"claim id 'X1' is not of the form C<n>"),
    ([_entry(id="C")], r"claim id 'C' is not of the form C<n>"),
    ([_entry(conditions=[dict(statistic="x", op="==", threshold=1)])],
     r"claim C1: unknown operator '=='"),
    ([_entry(conditions=[])], r"claim C1 has no conditions"),
    ([_entry(), _entry()], r"claim C1 appears twice in"),
])
def test_bad_claims_files(tmp_path, entries, pattern):
    with pytest.raises(ValueError, match=pattern):
        claims.load_claims(_write(tmp_path, entries))


# --- verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize("per_seed, expected", [
    ([{"x": 0.1}], "SUPPORTED"),
    ([{"x": 0.1}, {"x": 0.5}, {"x": 0.0}], "SUPPORTED"),
    ([{"x": 0.9}], "REFUTED"),
    ([{"x": 0.9}, {"x": 0.51}], "REFUTED"),
    ([{"x": 0.1}, {"x": 0.9}], "INCONCLUSIVE"),
    ([{"x": (0.4, 0.3, 0.45)}], "SUPPORTED"),
    ([{"x": (0.7, 0.6, 0.8)}], "REFUTED"),
    ([{"x": (0.4, 0.3, 0.6)}], "INCONCLUSIVE"),   # the interval straddles the threshold
    ([{"x": (0.6, 0.4, 0.7)}], "INCONCLUSIVE"),
    ([{"x": (0.4, 0.3, 0.45)}, {"x": (0.4, 0.3, 0.6)}], "INCONCLUSIVE"),
    ([{"x": [0.4, 0.3, 0.45]}], "SUPPORTED"),     # a list works like a tuple
])
def test_verdict_one_condition(per_seed, expected):
    assert claims.verdict(ONE, per_seed) == expected


@pytest.mark.parametrize("per_seed, expected", [
    ([{"x": 0.1, "y": 1.0}], "SUPPORTED"),
    ([{"x": 0.1, "y": -1.0}], "REFUTED"),            # one failing condition fails the seed
    ([{"x": 0.9, "y": 1.0}, {"x": 0.1, "y": -1}], "REFUTED"),
    ([{"x": 0.1, "y": (1.0, -0.5, 2.0)}], "INCONCLUSIVE"),
    ([{"x": 0.9, "y": (1.0, -0.5, 2.0)}], "REFUTED"),  # fail beats undecided
    ([{"x": 0.1, "y": 1.0}, {"x": 0.1, "y": 0.0}], "INCONCLUSIVE"),
])
def test_verdict_all_conditions_must_hold(per_seed, expected):
    assert claims.verdict(TWO, per_seed) == expected


@pytest.mark.parametrize("value, expected", [
    (0.5004, "SUPPORTED"),   # rounds to 0.500 at 3 digits: within the threshold
    (0.5006, "REFUTED"),     # rounds to 0.501
    (0.5, "SUPPORTED"),
])
def test_verdict_compares_the_rounded_value(value, expected):
    assert claims.verdict(ONE, [{"x": value}]) == expected


@pytest.mark.parametrize("op, threshold, value, expected", [
    ("<", 0.0, 0.0, "REFUTED"),
    ("<=", 0.0, 0.0, "SUPPORTED"),
    (">", 0.0, 0.0, "REFUTED"),
    (">=", 0.0, 0.0, "SUPPORTED"),
    (">", 0.05, 0.07, "SUPPORTED"),
    ("<", -0.5, -0.4, "REFUTED"),
])
def test_operators(op, threshold, value, expected):
    claim = _claim(Condition("x", op, threshold, 3))
    assert claims.verdict(claim, [{"x": value}]) == expected


def test_seed_outcome():
    assert claims.seed_outcome(TWO, {"x": 0.1, "y": 1.0}) == "pass"
    assert claims.seed_outcome(TWO, {"x": 0.1, "y": -1.0}) == "fail"
    assert claims.seed_outcome(TWO, {"x": (0.1, 0.0, 0.9), "y": 1.0}) == "undecided"


def test_verdict_on_a_real_claim(c1):
    good = {"mean_tv_frequent": 0.003, "spearman_n_tv": -0.6}
    bad = {"mean_tv_frequent": 0.05, "spearman_n_tv": -0.6}
    assert claims.verdict(c1, [good, good]) == "SUPPORTED"
    assert claims.verdict(c1, [bad, bad]) == "REFUTED"
    assert claims.verdict(c1, [good, bad]) == "INCONCLUSIVE"


@pytest.mark.parametrize("per_seed, error, pattern", [
    ([], ValueError, r"claim C99: no seeds evaluated"),
    ([{"y": 0.1}], KeyError, r"claim C99 needs statistic\(s\) x"),
    ([{"x": float("nan")}], ValueError, r"a statistic is NaN"),
    ([{"x": (float("nan"), 0.0, 1.0)}], ValueError, r"a statistic is NaN"),
    ([{"x": (0.1, 0.2)}], ValueError, r"a statistic with uncertainty is \(value, low, high\)"),
    ([{"x": (0.1, 0.3, 0.2)}], ValueError, r"interval low 0.3 exceeds high 0.2"),
    ([{"x": 0.1}, {"x": float("nan")}], ValueError, r"a statistic is NaN"),
])
def test_verdict_bad_statistics(per_seed, error, pattern):
    with pytest.raises(error, match=pattern):
        claims.verdict(ONE, per_seed)


def test_missing_statistics_are_all_named():
    with pytest.raises(KeyError, match=r"claim C99 needs statistic\(s\) x, y"):
        claims.verdict(TWO, [{}])


# --- verdict lines ------------------------------------------------------------------------


def test_verdict_line_format(c1):
    per_seed = [{"mean_tv_frequent": 0.00312, "spearman_n_tv": -0.6049},
                {"mean_tv_frequent": (0.0041, 0.003, 0.005), "spearman_n_tv": -0.5912}]
    line = claims.verdict_line(c1, per_seed)
    assert line == ("CLAIM C1: SUPPORTED - mean_tv_frequent = 0.003/0.004, "
                    "spearman_n_tv = -0.60/-0.59 (rule: " + c1.rule + ")")
    m = claims.LINE.match(line)
    assert m is not None
    assert m.groups() == ("C1", "SUPPORTED", "mean_tv_frequent = 0.003/0.004, "
                          "spearman_n_tv = -0.60/-0.59", c1.rule)


@pytest.mark.parametrize("value, digits, text", [
    (0.00049, 3, "0.000"),
    (-0.0001, 3, "0.000"),    # no negative zero
    (-0.0, 2, "0.00"),
    (-0.006, 2, "-0.01"),
    (12.3456, 1, "12.3"),
    (10.0, 1, "10.0"),
    (-0.5, 1, "-0.5"),
    (0.02, 4, "0.0200"),
])
def test_values_are_rounded_to_the_condition_digits(value, digits, text):
    claim = _claim(Condition("x", "<=", 100.0, digits))
    line = claims.verdict_line(claim, [{"x": value}])
    assert claims.LINE.match(line).group(3) == f"x = {text}"


@pytest.mark.parametrize("value, text", [
    (3.4, "3"),
    (-2.6, "-3"),
    pytest.param(0.4, "0"),
    pytest.param(-0.4, "0"),
])
def test_values_with_zero_digits(value, text):
    claim = _claim(Condition("x", "<=", 100.0, 0))
    assert claims.LINE.match(claims.verdict_line(claim, [{"x": value}])).group(3) == f"x = {text}"


@pytest.mark.parametrize("cid", [f"C{i}" for i in range(1, 15)])
def test_every_claim_gives_a_parsable_line(all_claims, cid):
    claim = all_claims[cid]
    stats = {c.statistic: c.threshold for c in claim.conditions}  # on the threshold: passes
    line = claims.verdict_line(claim, [stats, stats])
    m = claims.LINE.match(line)
    assert m is not None, line
    assert m.group(1) == cid
    assert m.group(2) == ("REFUTED" if any(c.op in "<>" for c in claim.conditions)
                          else "SUPPORTED")
    assert m.group(4) == claim.rule
    assert claims.parse_verdict_lines(line) == {cid: line}


def test_verdict_line_bad_statistics(c1):
    with pytest.raises(ValueError, match=r"a statistic is NaN"):
        claims.verdict_line(c1, [{"mean_tv_frequent": float("nan"), "spearman_n_tv": -0.6}])
    with pytest.raises(KeyError, match=r"spearman_n_tv"):
        claims.verdict_line(c1, [{"mean_tv_frequent": 0.01}])


@pytest.fixture
def no_records(monkeypatch):
    """``ESSAY_RECORDS`` unset: ``report`` only prints."""
    monkeypatch.delenv(claims.RECORDS_ENV, raising=False)


def test_report_prints_the_line_and_returns_nothing(all_claims, capsys, no_records):
    # report() returns None so that a chapter's verdict cell has no display output besides the
    # printed line (a trailing ';' is not reliable under nbval's kernel).
    assert claims.report("C2", [{"mean_tv_frequent_contexts": 0.0123}], all_claims) is None
    line = capsys.readouterr().out
    assert line == claims.verdict_line(all_claims["C2"], [{"mean_tv_frequent_contexts": 0.0123}]) + "\n"
    assert line.startswith("CLAIM C2: SUPPORTED - mean_tv_frequent_contexts = 0.012 (rule: ")


def test_report_reads_the_claims_file_by_default(capsys, no_records):
    claims.report("C13", [{"worst_cost_in_epochs": 4.0}])
    assert capsys.readouterr().out.startswith("CLAIM C13: REFUTED - worst_cost_in_epochs = 4.00")


@pytest.mark.parametrize("cid", ["C0", "C99", "c1", "X", ""])
def test_report_unknown_claim(all_claims, cid):
    with pytest.raises(KeyError, match=rf"unknown claim '{cid}'; known: C1, C2, "):
        claims.report(cid, [{"x": 0.0}], all_claims)


# --- printed lines ------------------------------------------------------------------------


def _lines(all_claims, ids):
    out = {}
    for cid in ids:
        claim = all_claims[cid]
        out[cid] = claims.verdict_line(claim, [{c.statistic: 0.123456 for c in claim.conditions}])
    return out


def test_parse_verdict_lines_finds_lines_among_output(all_claims):
    lines = _lines(all_claims, ["C1", "C4", "C9"])
    text = "\n".join(["training...", "  " + lines["C1"] + "  ", "loss 0.3", lines["C4"],
                      "CLAIM C5: MAYBE - x = 1 (rule: r)", "not a CLAIM C6: SUPPORTED line",
                      lines["C9"]])
    assert claims.parse_verdict_lines(text) == lines
    assert claims.parse_verdict_lines("") == {}


def test_parse_verdict_lines_rejects_duplicates(all_claims):
    line = _lines(all_claims, ["C1"])["C1"]
    with pytest.raises(ValueError, match=r"claim C1 has more than one verdict line"):
        claims.parse_verdict_lines(line + "\n" + line)


def test_every_threshold_appears_in_its_rule_text(all_claims):
    # the printed rule and the applied thresholds must not drift apart
    for claim in all_claims.values():
        rule = re.sub(r"(\d),(\d{3})", r"\1\2", claim.rule)  # 20,000 -> 20000
        numbers = {float(x) / (100 if pct else 1)
                   for x, pct in re.findall(r"(-?\d+(?:\.\d+)?)(%?)", rule)}
        for condition in claim.conditions:
            if condition.threshold == 0 and "_minus_" in condition.statistic:
                continue  # "a <= b" is applied as "a - b <= 0"
            assert condition.threshold in numbers, (claim.id, condition.statistic)


def test_claim_condition_finds_the_rule_on_a_statistic(all_claims):
    c14 = all_claims["C14"]
    assert c14.condition("compute_ratio").threshold == 0.2
    assert c14.condition("auroc_ratio").op == ">="
    with pytest.raises(KeyError, match="C14 has no condition on 'spearman'"):
        c14.condition("spearman")



# --- records ------------------------------------------------------------------------------


@pytest.fixture
def records_to(tmp_path, monkeypatch):
    """``ESSAY_RECORDS`` set to a fresh folder, returned."""
    folder = tmp_path / "records"
    monkeypatch.setenv(claims.RECORDS_ENV, str(folder))
    return folder


C1_SEEDS = [{"mean_tv_frequent": 0.00312, "spearman_n_tv": -0.6049},
            {"mean_tv_frequent": (0.0041, 0.003, 0.005), "spearman_n_tv": -0.5912}]


def test_report_writes_a_record_that_agrees_with_its_printed_line(all_claims, capsys,
                                                                  records_to):
    claims.report("C1", C1_SEEDS, all_claims)
    printed = capsys.readouterr().out
    assert printed == claims.verdict_line(all_claims["C1"], C1_SEEDS) + "\n"
    assert [p.name for p in records_to.iterdir()] == ["C1.json"]  # nothing half-written left
    record = claims.Record.from_json((records_to / "C1.json").read_text())
    m = claims.LINE.match(printed.strip())
    assert record.line == printed.strip()
    assert (record.claim, record.verdict, record.measured, record.rule) == m.groups()
    assert (record.round, record.chapter, record.document, record.anchor) == (
        1, 1, "01_frequentist_limit", "claim-c1")
    assert record.statistics == ("mean_tv_frequent", "spearman_n_tv")
    assert record.seeds == ({"mean_tv_frequent": {"value": 0.00312},
                             "spearman_n_tv": {"value": -0.6049}},
                            {"mean_tv_frequent": {"value": 0.0041, "low": 0.003, "high": 0.005},
                             "spearman_n_tv": {"value": -0.5912}})
    assert record.printed == {"mean_tv_frequent": ("0.003", "0.004"),
                              "spearman_n_tv": ("-0.60", "-0.59")}
    assert record.outcomes == ("pass", "pass") and record.extra == {}
    assert record.settings == dataclasses.asdict(settings.from_env())


@pytest.mark.parametrize("cid", [f"C{i}" for i in range(1, 15)])
def test_every_claims_record_agrees_with_its_line(all_claims, capsys, records_to, cid):
    claim = all_claims[cid]
    per_seed = [{c.statistic: c.threshold + 0.01 * i for c in claim.conditions} for i in (1, 2)]
    claims.report(cid, per_seed, all_claims)
    line = capsys.readouterr().out.strip()
    record = claims.Record.from_json((records_to / f"{cid}.json").read_text())
    assert (record.claim, record.verdict, record.measured, record.rule) == \
        claims.LINE.match(line).groups()
    assert record.line == line and record.chapter == claim.chapter
    assert record.document == claims.chapter_document(claim.chapter)
    assert (ROOT / "chapters" / f"{record.document}.md").is_file()
    assert list(record.printed) == list(record.statistics)  # the rule's order, not sorted


def test_a_record_is_the_same_text_for_the_same_run(all_claims, records_to, capsys):
    claims.report("C1", C1_SEEDS, all_claims)
    first = (records_to / "C1.json").read_bytes()
    claims.report("C1", C1_SEEDS, all_claims)
    assert (records_to / "C1.json").read_bytes() == first
    data = json.loads(first)
    assert list(data) == sorted(data) and data["format"] == claims.RECORD_FORMAT


def test_a_record_round_trips(all_claims):
    record = claims.make_record(all_claims["C3"], [{"std_ratio_rare_frequent": 1.7,
                                                    "loglog_slope_std_n": 0.004}],
                                extra={"b": 2, "a": 1.5})
    again = claims.Record.from_json(record.to_json())
    assert again == record
    assert list(again.printed) == ["std_ratio_rare_frequent", "loglog_slope_std_n"]
    assert again.measured == "std_ratio_rare_frequent = 1.7, loglog_slope_std_n = 0.00"
    assert list(again.extra.items()) == [("a", 1.5), ("b", 2.0)]


def test_report_records_extra_values(all_claims, records_to, capsys):
    claims.report("C13", [{"worst_cost_in_epochs": 4.0}], all_claims,
                  extra={"parameter_span": np.float64(120.5), "worst_parameters": 3000})
    record = claims.Record.from_json((records_to / "C13.json").read_text())
    assert record.extra == {"parameter_span": 120.5, "worst_parameters": 3000.0}
    assert capsys.readouterr().out.startswith("CLAIM C13: REFUTED")


@pytest.mark.parametrize("extra, error, pattern", [
    ([("a", 1.0)], TypeError, r"C13: extra must be a mapping"),
    ({"Bad name": 1.0}, ValueError, r"C13: extra value name 'Bad name' is not a lower-case"),
    ({"a": "0.5"}, TypeError, r"C13: extra value a must be a number, got '0.5'"),
    ({"a": True}, TypeError, r"C13: extra value a must be a number"),
    ({"a": float("inf")}, ValueError, r"C13: extra value a is not finite"),
])
@pytest.mark.parametrize("recorded", [True, False])
def test_report_rejects_bad_extra_values(all_claims, tmp_path, monkeypatch, capsys, extra,
                                         error, pattern, recorded):
    if recorded:
        monkeypatch.setenv(claims.RECORDS_ENV, str(tmp_path))
    else:
        monkeypatch.delenv(claims.RECORDS_ENV, raising=False)
    with pytest.raises(error, match=pattern):
        claims.report("C13", [{"worst_cost_in_epochs": 4.0}], all_claims, extra=extra)
    assert capsys.readouterr().out == ""  # nothing printed, nothing recorded
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("value", [None, ""])
def test_report_writes_nothing_without_essay_records(all_claims, tmp_path, monkeypatch, capsys,
                                                     value):
    if value is None:
        monkeypatch.delenv(claims.RECORDS_ENV, raising=False)
    else:
        monkeypatch.setenv(claims.RECORDS_ENV, value)
    monkeypatch.chdir(tmp_path)
    assert claims.records_folder(ROOT) is None
    claims.report("C1", C1_SEEDS, all_claims)
    assert capsys.readouterr().out.startswith("CLAIM C1: SUPPORTED")
    assert not list(tmp_path.rglob("*.json")) and not (ROOT / "C1.json").exists()


def _book(root: Path, *chapters: str) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "claims.yaml").write_text((ROOT / "data" / "claims.yaml").read_text())
    (root / "chapters").mkdir()
    for name in chapters:
        (root / "chapters" / name).write_text("# A chapter\n")
    return root


def test_a_relative_records_folder_is_taken_from_the_books_root(tmp_path, monkeypatch, capsys):
    # a book build's kernel runs in the chapter's folder, not in the book's root
    root = _book(tmp_path / "book", "01_first.md", "02_second.md", "notes.md")
    monkeypatch.delenv("ESSAY_ROOT", raising=False)
    monkeypatch.setenv(claims.RECORDS_ENV, "_build/records")
    monkeypatch.chdir(root / "chapters")
    claims.report("C3", [{"std_ratio_rare_frequent": 1.7, "loglog_slope_std_n": 0.0}])
    record = claims.Record.from_json((root / "_build" / "records" / "C3.json").read_text())
    assert record.document == "02_second" and record.verdict == "REFUTED"
    assert claims.records_folder() == root / "_build" / "records"


def test_chapter_document(tmp_path):
    root = _book(tmp_path, "01_a.md", "10_ten.md", "02_b.md", "02_again.md", "intro.md")
    assert claims.chapter_document(1, root) == "01_a"
    assert claims.chapter_document(10, str(root)) == "10_ten"
    assert claims.chapter_document(3, root) is None
    with pytest.raises(ValueError, match=r"more than one chapter is numbered 2: 02_again, 02_b"):
        claims.chapter_document(2, root)
    assert claims.chapter_document(4) == "04_uncertainty_is_not_i_dont_know"


def test_a_claim_without_a_chapter_file_has_no_document(tmp_path, all_claims):
    root = _book(tmp_path / "book")
    assert claims.make_record(all_claims["C13"], [{"worst_cost_in_epochs": 1.0}],
                              root=root).document is None


def _json(record: claims.Record, **changes) -> str:
    data = json.loads(record.to_json())
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize("changes, pattern", [
    (dict(format=None), r"not a verdict record of format 1"),
    (dict(format=2), r"not a verdict record of format 1"),
    (dict(line=None, anchor=None), r"verdict record lacks anchor, line"),
    (dict(verdict="MAYBE"), r"verdict record of C1: unknown verdict 'MAYBE'"),
    (dict(statistics=["mean_tv_frequent"]), r"C1: its printed statistics are not its rule's"),
])
def test_bad_records(all_claims, changes, pattern):
    record = claims.make_record(all_claims["C1"], C1_SEEDS)
    with pytest.raises(ValueError, match=pattern):
        claims.Record.from_json(_json(record, **changes))


def test_a_record_must_be_an_object():
    with pytest.raises(ValueError, match=r"not a verdict record"):
        claims.Record.from_json("[1, 2]")


# --- round 2: unrounded comparisons, pooled statistics, premises ------------------------------


def _round2(*conditions: Condition) -> Claim:
    return dataclasses.replace(_claim(*conditions), round=2)


def test_round_two_compares_unrounded_values():
    one, two = ONE, _round2(Condition("x", "<=", 0.5, 3))
    assert claims.verdict(one, [{"x": 0.5004}]) == "SUPPORTED"   # printed 0.500
    assert claims.verdict(two, [{"x": 0.5004}]) == "REFUTED"     # 0.5004 > 0.5
    assert claims.verdict(two, [{"x": 0.5 + 5e-10}]) == "SUPPORTED"  # on the threshold
    strict = _round2(Condition("x", "<", 0.5, 3))
    assert claims.verdict(strict, [{"x": 0.5 - 5e-10}]) == "REFUTED"  # on it: not below


def test_pooled_conditions_are_judged_once_with_their_interval():
    claim = _round2(Condition("x", "<=", 0.5, 3), Condition("z", ">=", 1.0, 2, "pooled"))
    seeds = [{"x": 0.1}, {"x": 0.2}]
    assert claims.verdict(claim, seeds, {"z": (1.5, 1.2, 1.8)}) == "SUPPORTED"
    assert claims.verdict(claim, seeds, {"z": (1.5, 0.8, 1.8)}) == "INCONCLUSIVE"
    assert claims.verdict(claim, [{"x": 0.9}], {"z": 0.5}) == "REFUTED"
    # the rule is a conjunction: a clearly failed pooled condition fails it on every seed
    assert claims.verdict(claim, seeds, {"z": 0.5}) == "REFUTED"
    # and a pooled condition that holds does not rescue seeds that fail
    assert claims.verdict(claim, [{"x": 0.9}, {"x": 0.8}], {"z": 1.5}) == "REFUTED"
    assert claims.verdict(claim, [{"x": 0.9}, {"x": 0.1}], {"z": 1.5}) == "INCONCLUSIVE"
    line = claims.verdict_line(claim, seeds, {"z": (1.5, 1.2, 1.8)})
    assert "x = 0.100/0.200, z = 1.50 [1.20, 1.80] [2 seeds]" in line
    with pytest.raises(KeyError, match="needs statistic"):
        claims.verdict(claim, seeds, {})
    with pytest.raises(ValueError, match="no pooled conditions"):
        claims.verdict(_round2(Condition("x", "<=", 0.5, 3)), seeds, {"z": 1.0})


def test_round_two_fails_a_seed_only_where_no_interval_straddles():
    claim = _round2(Condition("d", "<", 0.0, 4), Condition("high", "<", 0.0, 4))
    straddling = {"d": (-0.0003, -0.001, 0.0007), "high": 0.0007}
    clean_fail = {"d": (0.001, 0.0005, 0.002), "high": 0.002}
    assert claims.seed_outcome(claim, straddling) == "undecided"
    assert claims.verdict(claim, [clean_fail, straddling]) == "INCONCLUSIVE"
    assert claims.verdict(claim, [clean_fail, clean_fail]) == "REFUTED"
    round1 = dataclasses.replace(claim, round=1)
    assert claims.seed_outcome(round1, straddling) == "fail"  # round 1 as first run


def test_a_rule_of_pooled_conditions_only_is_decided_by_them():
    claim = _round2(Condition("z", ">=", 1.0, 2, "pooled"))
    seeds = [{"informative": 0.1}] * 5
    assert claims.verdict(claim, seeds, {"z": (0.5, 0.4, 0.6)}) == "REFUTED"
    assert claims.verdict(claim, seeds, {"z": (1.5, 1.2, 1.8)}) == "SUPPORTED"
    assert claims.verdict(claim, seeds, {"z": (1.5, 0.8, 1.8)}) == "INCONCLUSIVE"


def test_a_failed_premise_is_inconclusive_never_refuted():
    claim = _round2(Condition("x", "<=", 0.5, 3))
    assert claims.verdict(claim, [{"x": 0.9, "premise_met": 0}] * 2) == "INCONCLUSIVE"
    assert claims.verdict(claim, [{"x": 0.1, "premise_met": 0}] * 2) == "INCONCLUSIVE"
    assert claims.verdict(claim, [{"x": 0.9, "premise_met": 1}] * 2) == "REFUTED"


def test_pooled_records_round_trip(tmp_path, monkeypatch):
    claim = _round2(Condition("x", "<=", 0.5, 3), Condition("z", ">=", 1.0, 2, "pooled"))
    record = claims.make_record(claim, [{"x": 0.1}], pooled={"z": (1.5, 1.2, 1.8)},
                                root=tmp_path)
    assert record.pooled == {"z": {"value": 1.5, "low": 1.2, "high": 1.8}}
    again = claims.Record.from_json(record.to_json())
    assert again == record and again.verdict == "SUPPORTED"


@pytest.mark.parametrize("change, message", [
    ({"refines": "one"}, "refines must name a claim"),
    ({"conditions": [{"statistic": "x", "op": "<=", "threshold": 1, "scope": "all"}]},
     "unknown scope"),
    ({"round": 1, "conditions": [{"statistic": "x", "op": "<=", "threshold": 1,
                                  "scope": "pooled"}]}, "pooled conditions are a round-2"),
])
def test_bad_round_two_entries(change, message):
    entry = {"id": "C99", "chapter": 1, "round": 2, "source": "s", "claim": "c",
             "statement": "s", "rule": "r",
             "conditions": [{"statistic": "x", "op": "<=", "threshold": 1}], **change}
    with pytest.raises(ValueError, match=message):
        claims._parse_claim(entry)
