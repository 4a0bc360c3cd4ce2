"""Tests of bayes_at_scale.claims: the claims file, verdicts, verdict lines and the ledger."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from bayes_at_scale import claims
from bayes_at_scale.claims import Claim, Condition

ROOT = Path(__file__).resolve().parents[1]


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
    assert list(all_claims) == [f"C{i}" for i in range(1, 15)]
    for cid, c in all_claims.items():
        assert c.id == cid
        assert isinstance(c.chapter, int) and c.chapter >= 1
        assert c.source and c.rule and c.claim and c.statement
        assert len(c.conditions) >= 1
        for cond in c.conditions:
            assert cond.op in claims.OPS
            assert re.fullmatch(r"[a-z][a-z0-9_]*", cond.statistic)
            assert isinstance(cond.threshold, float) and cond.digits >= 1
        assert "\n" not in c.statement and "  " not in c.statement  # folded to one line
    # chapters appear in order
    chapters = [c.chapter for c in all_claims.values()]
    assert chapters == sorted(chapters)


def test_claims_file_details(all_claims):
    c1 = all_claims["C1"]
    assert c1.chapter == 1 and c1.source == "blog" and c1.cite == "blog2024large"
    assert c1.conditions == (Condition("mean_tv_frequent", "<=", 0.02, 3),
                             Condition("spearman_n_tv", "<=", -0.5, 2))
    assert all_claims["C14"].cite is None
    assert [c.id for c in claims.claims_for_chapter(1, all_claims)] == ["C1", "C2"]
    assert [c.id for c in claims.claims_for_chapter(7, all_claims)] == ["C13", "C14"]
    assert claims.claims_for_chapter(99, all_claims) == []


def test_load_claims_from_a_path(all_claims):
    assert claims.load_claims(ROOT / "data" / "claims.yaml") == all_claims
    assert claims.load_claims(str(ROOT / "data" / "claims.yaml")) == all_claims


def _write(tmp_path, entries) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": entries}))
    return path


def _entry(**overrides) -> dict:
    entry = dict(id="C1", chapter=1, source="s", cite=None, claim="c", statement="s", rule="r",
                 conditions=[dict(statistic="x", op="<=", threshold=1)])
    entry.update(overrides)
    return entry


def test_condition_digits_default_to_three(tmp_path):
    c = claims.load_claims(_write(tmp_path, [_entry()]))["C1"]
    assert c.conditions == (Condition("x", "<=", 1.0, 3),)


@pytest.mark.parametrize("entries, pattern", [
    ([{k: v for k, v in _entry().items() if k != "rule"}], r"claim C1 lacks rule"),
    ([{k: v for k, v in _entry().items() if k not in ("source", "conditions")}],
     r"claim C1 lacks source, conditions"),
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


def test_report_prints_the_line_and_returns_nothing(all_claims, capsys):
    # report() returns None so that a chapter's verdict cell has no display output besides the
    # printed line (a trailing ';' is not reliable under nbval's kernel).
    assert claims.report("C2", [{"mean_tv_frequent_contexts": 0.0123}], all_claims) is None
    line = capsys.readouterr().out
    assert line == claims.verdict_line(all_claims["C2"], [{"mean_tv_frequent_contexts": 0.0123}]) + "\n"
    assert line.startswith("CLAIM C2: SUPPORTED - mean_tv_frequent_contexts = 0.012 (rule: ")


def test_report_reads_the_claims_file_by_default(capsys):
    claims.report("C13", [{"worst_cost_in_epochs": 4.0}])
    assert capsys.readouterr().out.startswith("CLAIM C13: REFUTED - worst_cost_in_epochs = 4.00")


@pytest.mark.parametrize("cid", ["C0", "C15", "c1", "X", ""])
def test_report_unknown_claim(all_claims, cid):
    with pytest.raises(KeyError, match=rf"unknown claim '{cid}'; known: C1, C2, "):
        claims.report(cid, [{"x": 0.0}], all_claims)


# --- parsing and the ledger ---------------------------------------------------------------


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


def test_ledger_round_trip(all_claims):
    lines = _lines(all_claims, ["C1", "C3", "C14"])
    table = claims.ledger(claims.parse_verdict_lines("\n".join(lines.values())), all_claims)
    assert list(table.columns) == ["id", "claim", "source", "chapter", "verdict", "measured"]
    assert list(table["id"]) == list(all_claims)
    row = table.set_index("id")
    for cid, line in lines.items():
        m = claims.LINE.match(line)
        assert row.loc[cid, "verdict"] == m.group(2)
        assert row.loc[cid, "measured"] == m.group(3)
    untested = set(all_claims) - set(lines)
    assert (row.loc[sorted(untested), "verdict"] == "not yet tested").all()
    assert (row.loc[sorted(untested), "measured"] == "").all()
    assert row.loc["C1", "verdict"] == "REFUTED"      # 0.123 > 0.02
    assert row.loc["C14", "chapter"] == 7
    assert row.loc["C7", "source"] == "Kalai & Vempala 2024"


def test_ledger_of_nothing(all_claims):
    table = claims.ledger({}, all_claims)
    assert len(table) == 14 and (table["verdict"] == "not yet tested").all()


def test_ledger_rejects_unknown_claims(all_claims):
    with pytest.raises(ValueError, match=r"verdicts for unknown claims: C77, C99"):
        claims.ledger({"C99": "CLAIM C99: SUPPORTED - x = 1 (rule: r)", "C77": "x"}, all_claims)


def _notebook(path: Path, outputs: list) -> Path:
    cells = [{"cell_type": "markdown", "source": "CLAIM C2: SUPPORTED - x = 1 (rule: r)"}]
    for out in outputs:
        out = {"output_type": "stream", "name": "stdout", **out}
        cells.append({"cell_type": "code", "source": "", "outputs": [out]})
    path.write_text(json.dumps({"cells": cells}))
    return path


def test_notebook_text_outputs(tmp_path):
    nb = _notebook(tmp_path / "a.ipynb", [
        {"output_type": "stream", "name": "stdout", "text": ["line one\n", "line two\n"]},
        {"output_type": "stream", "name": "stdout", "text": "line three\n"},
        {"output_type": "display_data", "data": {"text/plain": "ignored"}},
        {"output_type": "stream", "name": "stderr", "text": "error text\n"},
    ])
    text = claims.notebook_text_outputs(nb)
    assert "line one\nline two\n" in text and "line three" in text
    assert "error text" not in text  # stderr is not a printed result
    assert "CLAIM C2" not in text  # markdown cells are not outputs
    assert "ignored" not in text


def test_a_line_split_across_stream_messages_is_reassembled(tmp_path, all_claims):
    line = _lines(all_claims, ["C1"])["C1"]
    nb = tmp_path / "split.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": line[:20]},
        {"output_type": "stream", "name": "stdout", "text": line[20:] + "\n"}]}]}))
    assert claims.verdicts_from_notebooks([nb]) == {"C1": line}


def test_verdicts_from_notebooks(tmp_path, all_claims):
    lines = _lines(all_claims, ["C1", "C2", "C3"])
    a = _notebook(tmp_path / "01.ipynb", [{"text": lines["C1"] + "\n" + lines["C2"] + "\n"}])
    b = _notebook(tmp_path / "02.ipynb", [{"text": ["noise\n", lines["C3"] + "\n"]}])
    assert claims.verdicts_from_notebooks([a, b]) == lines
    c = _notebook(tmp_path / "03.ipynb", [{"text": lines["C2"]}])
    with pytest.raises(ValueError, match=r"claim C2 has verdict lines in more than one notebook"):
        claims.verdicts_from_notebooks([a, c])


# --- where verdicts are read from ---------------------------------------------------------


def _touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / n for n in names]
    for p in paths:
        _notebook(p, [])
    return sorted(paths)


def test_executed_chapters_prefers_this_build(tmp_path):
    built = _touch(tmp_path / "_build" / "jupyter_execute" / "chapters",
                   "02_b.ipynb", "01_a.ipynb", "bibliography.ipynb")
    refs = _touch(tmp_path / "tests" / "references", "01_a.ipynb")
    paths, origin = claims.executed_chapters(tmp_path, in_build=True)
    assert paths == [p for p in built if p.name[0].isdigit()]
    assert [p.name for p in paths] == ["01_a.ipynb", "02_b.ipynb"]
    assert origin == "this build's executed chapters"
    # outside a build, a _build folder left by an earlier one is not read
    assert claims.executed_chapters(tmp_path, in_build=False) == (
        refs, "the committed reference notebooks")
    assert claims.executed_chapters(tmp_path) == (refs, "the committed reference notebooks")


def test_pytest_is_not_a_book_build():
    assert claims.inside_book_build() is False


def test_executed_chapters_falls_back_to_references(tmp_path):
    refs = _touch(tmp_path / "tests" / "references", "01_a.ipynb", "03_c.ipynb", "notes.ipynb")
    paths, origin = claims.executed_chapters(str(tmp_path))
    assert paths == [p for p in refs if p.name[0].isdigit()]
    assert origin == "the committed reference notebooks"


def test_executed_chapters_of_an_empty_book(tmp_path):
    assert claims.executed_chapters(tmp_path) == ([], "the committed reference notebooks")


def test_every_threshold_appears_in_its_rule_text(all_claims):
    # the printed rule and the applied thresholds must not drift apart
    for claim in all_claims.values():
        numbers = {float(x) / (100 if pct else 1)
                   for x, pct in re.findall(r"(-?\d+(?:\.\d+)?)(%?)", claim.rule)}
        for condition in claim.conditions:
            if condition.threshold == 0 and "_minus_" in condition.statistic:
                continue  # "a <= b" is applied as "a - b <= 0"
            assert condition.threshold in numbers, (claim.id, condition.statistic)


# --- the evidence ledger ------------------------------------------------------------------


@pytest.mark.parametrize("title, slug", [
    ("Verdict", "verdict"),
    ("Verdict on C11", "verdict-on-c11"),
    ("One world, four corpus sizes", "one-world-four-corpus-sizes"),
    ('A posterior spreads its doubt; it does not say "I don\'t know"',
     "a-posterior-spreads-its-doubt-it-does-not-say-i-dont-know"),
    ("Confident where data are dense?", "confident-where-data-are-dense"),
    ("Best-of-$n$ at scale", "best-of--at-scale"),  # maths is not text
    ("The `unknown` token", "the-unknown-token"),  # inline code is
    ("A [linked](https://x.org) {term}`word`", "a-linked-"),
    ("  padded title  ", "padded-title"),
])
def test_heading_slug(title, slug):
    assert claims.heading_slug(title) == slug


def test_heading_slug_agrees_with_myst_on_plain_titles():
    from myst_parser.mdit_to_docutils.base import default_slugify

    for title in ["Real English", "Where the hallucinations come from", "Can it flag errors?",
                  "Fine-tuning against a grader", "What the verdicts mean, and what they do not"]:
        assert claims.heading_slug(title) == default_slugify(title)


def test_markdown_headings_skips_fenced_blocks():
    text = "\n".join(["# Title", "text", "```python", "# a comment", "```", "## Section #",
                      "~~~~", "# not a heading", "~~~", "still fenced", "~~~~",
                      ":::{note}", "# inside a colon fence", ":::", "#not a heading either",
                      "### Deep"])
    assert claims.markdown_headings(text) == [(1, "Title"), (2, "Section"), (3, "Deep")]


def _chapter_notebook(path: Path, cells: list[tuple[str, str]]) -> Path:
    """An executed notebook from (kind, text) pairs: markdown source or printed stdout."""
    nb = {"cells": []}
    for kind, text in cells:
        if kind == "markdown":
            nb["cells"].append({"cell_type": "markdown", "source": text})
        else:
            nb["cells"].append({"cell_type": "code", "source": "", "outputs": [
                {"output_type": "stream", "name": "stdout", "text": text}]})
    path.write_text(json.dumps(nb))
    return path


def test_verdict_evidence(tmp_path, all_claims):
    lines = _lines(all_claims, ["C1", "C2", "C3", "C4"])
    a = _chapter_notebook(tmp_path / "01_first.ipynb", [
        ("code", lines["C4"] + "\n"),  # before any heading
        ("markdown", "(label)=\n# The first chapter\n\nProse."),
        ("markdown", "## Results\n\n```\n## not a heading\n```"),
        ("code", "noise\n" + lines["C1"] + "\n"),
        ("markdown", "## Results\n#### Too deep for an anchor"),
        ("code", lines["C2"] + "\n"),
    ])
    b = _chapter_notebook(tmp_path / "02_second.ipynb", [
        ("markdown", "# Second"), ("code", lines["C3"])])
    found = claims.verdict_evidence([a, b])
    assert found["C4"] == claims.Evidence(lines["C4"], "01_first", "", "", "")
    assert found["C1"] == claims.Evidence(lines["C1"], "01_first", "The first chapter", "Results",
                                          "results")
    # a repeated heading gets MyST's suffixed anchor; a level-4 heading is not a section
    assert found["C2"] == claims.Evidence(lines["C2"], "01_first", "The first chapter", "Results",
                                          "results-1")
    assert found["C3"] == claims.Evidence(lines["C3"], "02_second", "Second", "Second", "second")
    c = _chapter_notebook(tmp_path / "03_third.ipynb", [("code", lines["C3"])])
    with pytest.raises(ValueError, match=r"claim C3 has more than one verdict line "
                                         r"\(02_second, 03_third\)"):
        claims.verdict_evidence([a, b, c])


def test_parse_measured(all_claims):
    line = claims.verdict_line(all_claims["C1"], [{"mean_tv_frequent": 0.0021,
                                                   "spearman_n_tv": -0.671},
                                                  {"mean_tv_frequent": 0.001,
                                                   "spearman_n_tv": -0.66}])
    measured = claims.LINE.match(line).group(3)
    assert claims.parse_measured(measured) == {"mean_tv_frequent": ["0.002", "0.001"],
                                               "spearman_n_tv": ["-0.67", "-0.66"]}
    assert claims.parse_measured("") == {}


def test_evidence_ledger(tmp_path, all_claims):
    lines = _lines(all_claims, ["C1", "C7"])
    nb = _chapter_notebook(tmp_path / "04_x.ipynb", [
        ("markdown", "# Chapter\n## Section one"), ("code", lines["C1"] + "\n" + lines["C7"])])
    table = claims.evidence_ledger([nb], all_claims)
    assert list(table.columns) == ["id", "claim", "source", "cite", "chapter", "rule", "verdict",
                                   "measured", "document", "title", "section", "anchor"]
    assert list(table["id"]) == list(all_claims)
    row = table.set_index("id")
    assert row.loc["C1", "rule"] == all_claims["C1"].rule
    assert row.loc["C7", "cite"] == "kalai2024calibrated" and row.loc["C14", "cite"] == ""
    assert tuple(row.loc["C7", ["document", "title", "section", "anchor"]]) == (
        "04_x", "Chapter", "Section one", "section-one")
    assert row.loc["C7", "verdict"] == claims.LINE.match(lines["C7"]).group(2)
    assert row.loc["C2", "verdict"] == claims.NOT_TESTED
    assert tuple(row.loc["C2", ["document", "title", "section", "anchor"]]) == ("",) * 4
    # the columns it shares with the plain ledger agree with it
    plain = claims.ledger(claims.verdicts_from_notebooks([nb]), all_claims)
    assert table[plain.columns].equals(plain)


@pytest.mark.parametrize("source, cite, markdown", [
    ("blog", "blog2024large", "blog {cite:p}`blog2024large`"),
    ("position paper", "papamarkou2024position", "position paper {cite:p}`papamarkou2024position`"),
    ("Kalai & Vempala 2024", "kalai2024calibrated", "{cite:t}`kalai2024calibrated`"),
    ("Yang et al. 2024; position paper", "yang2024reward",
     "{cite:t}`yang2024reward`; position paper {cite:p}`papamarkou2024position`"),
    ("GPT-4 report; Kalai et al. 2025", "kalai2025why",
     "GPT-4 report {cite:p}`openai2023gpt4`; {cite:t}`kalai2025why`"),
    ("this essay", None, "this essay"),
    ("a colleague", "smith2020x", "a colleague {cite:p}`smith2020x`"),  # cite not named: appended
])
def test_source_markdown(source, cite, markdown):
    assert claims.source_markdown(source, cite) == markdown


def test_every_registered_source_is_cited(all_claims):
    for c in all_claims.values():
        text = claims.source_markdown(c.source, c.cite)
        if c.cite:
            assert f"`{c.cite}`" in text, c.id


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_ledger_markdown(tmp_path, all_claims):
    lines = _lines(all_claims, ["C5", "C7"])
    nb = _chapter_notebook(tmp_path / "04_x.ipynb", [
        ("markdown", "# Chapter\n## Hallucinations?"), ("code", lines["C7"]),
        ("markdown", "## Scale"), ("code", lines["C5"])])
    text = claims.ledger_markdown(claims.evidence_ledger([nb], all_claims), base="chapters/")
    rows = text.strip().splitlines()
    assert len(rows) == 2 + len(all_claims)
    assert _cells(rows[0]) == list(claims.LEDGER_HEADER)
    assert all(len(_cells(r)) == len(claims.LEDGER_HEADER) for r in rows)
    c7 = dict(zip(claims.LEDGER_HEADER, _cells(rows[2 + list(all_claims).index("C7")])))
    assert c7["Claim"].startswith("**C7** A calibrated model")
    # the rule's absolute-value bars are escaped, not column separators
    assert c7["Rule"].startswith(r"hallucination rate(LA) \>= 0.8 x monofact rate and \|")
    assert c7["Measured"] == ("`hallucination_over_monofact` = 0.12; "
                              "`hallucination_gap` = 0.123")
    assert c7["Verdict"] == claims.LINE.match(lines["C7"]).group(2)
    assert c7["Evidence"] == "[ch. 4, \N{SECTION SIGN} Hallucinations?](chapters/04_x.md#hallucinations)"
    c5 = dict(zip(claims.LEDGER_HEADER, _cells(rows[2 + list(all_claims).index("C5")])))
    assert r"KL(LA \|\| MAP)" in c5["Rule"] and r"g(N\_max)" in c5["Rule"]
    c1 = dict(zip(claims.LEDGER_HEADER, _cells(rows[2])))
    assert (c1["Measured"], c1["Verdict"], c1["Evidence"]) == ("-", "*not yet tested*",
                                                                "chapter 1")


def test_read_executed_merges_outputs_a_cached_build_left_out(tmp_path, all_claims):
    # myst-nb writes a page whose execution came from jupyter-cache to _build/jupyter_execute
    # without outputs; the verdicts are then read from the cache
    import nbformat
    from jupyter_cache import get_cache

    line = _lines(all_claims, ["C1"])["C1"]
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3",
                                                           "display_name": "Python 3",
                                                           "language": "python"}})
    cell = nbformat.v4.new_code_cell(f"print({line!r})", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=line + "\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter\n## Where"), cell]
    executed = tmp_path / "executed.ipynb"
    nbformat.write(nb, executed)
    get_cache(tmp_path / "_build" / ".jupyter_cache").cache_notebook_file(str(executed))

    cell.outputs, cell.execution_count = [], None
    built = tmp_path / "_build" / "jupyter_execute" / "chapters" / "01_x.ipynb"
    built.parent.mkdir(parents=True)
    nbformat.write(nb, built)
    assert claims.verdicts_from_notebooks([built]) == {"C1": line}
    assert claims.verdict_evidence([built])["C1"].anchor == "where"
    # a notebook elsewhere is read as it is
    elsewhere = tmp_path / "01_x.ipynb"
    nbformat.write(nb, elsewhere)
    assert claims.verdicts_from_notebooks([elsewhere]) == {}
    # and so is one the cache does not know
    cell.source = "print('something else')"
    nbformat.write(nb, built)
    assert claims.verdicts_from_notebooks([built]) == {}


def test_glued_values(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "", "outputs": [
        {"output_type": "display_data", "metadata": {"scrapbook": {
            "name": name, "mime_prefix": "application/papermill.record/"}},
         "data": {"application/papermill.record/text/plain": text}}
        for name, text in [("a", "0.5"), ("b", "np.float64(1.25)"), ("c", "'1,770'"),
                           ("d", ['"two ', 'lines"'])]] + [
        {"output_type": "stream", "name": "stdout", "text": "not glued\n"}]}]}
    path = tmp_path / "g.ipynb"
    path.write_text(json.dumps(nb))
    assert claims.glued_values(path) == {"a": "0.5", "b": "1.25", "c": "1,770", "d": "two lines"}
    assert float(claims.glued_values(path)["b"]) == 1.25


def test_claim_condition_finds_the_rule_on_a_statistic(all_claims):
    c14 = all_claims["C14"]
    assert c14.condition("compute_ratio").threshold == 0.2
    assert c14.condition("auroc_ratio").op == ">="
    with pytest.raises(KeyError, match="C14 has no condition on 'spearman'"):
        c14.condition("spearman")


def test_prose_helpers():
    assert [claims.in_words(n) for n in (0, 2, 14, 15)] == ["zero", "two", "fourteen", "15"]
    assert claims.prose_list(["a"]) == "a"
    assert claims.prose_list(("a", "b")) == "a and b"
    assert claims.prose_list(["0.1", "0.2", "0.3"]) == "0.1, 0.2 and 0.3"
    with pytest.raises(ValueError, match="nothing to list"):
        claims.prose_list([])
