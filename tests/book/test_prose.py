"""Tests of bayes_at_scale.book.prose: every branch of the verdict chapter's conditional text."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bayes_at_scale.book import claims, prose
from bayes_at_scale.book.claims import NOT_TESTED, Claim

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def every_claim() -> dict[str, Claim]:
    return claims.load_claims()


@pytest.fixture(scope="module")
def all_claims(every_claim) -> dict[str, Claim]:
    """Round 1's claims: the ones the verdict chapter's discussion is written against."""
    return {cid: c for cid, c in every_claim.items() if c.round == 1}


@pytest.fixture(scope="module")
def bill_claims(every_claim) -> dict[str, Claim]:
    """The claims of the bill: round 1's C13 and C14 and their refinements C29 and C30."""
    return {cid: every_claim[cid] for cid in ("C13", "C14", "C29", "C30")}


def _record(all_claims, cid: str, *per_seed: dict, extra: dict | None = None,
            pooled: dict | None = None) -> claims.Record:
    return claims.make_record(all_claims[cid], list(per_seed), extra, root=ROOT, pooled=pooled)


def _uniform(all_claims, cid: str, value: float, seeds: int = 2) -> claims.Record:
    return _record(all_claims, cid, *[{c.statistic: value for c in all_claims[cid].conditions}]
                   * seeds)


# --- words --------------------------------------------------------------------------------


def test_in_words():
    assert [prose.in_words(n) for n in (0, 1, 2, 14, 16, 20, 21, -1)] == [
        "zero", "one", "two", "fourteen", "sixteen", "twenty", "21", "-1"]


def test_prose_list():
    assert prose.prose_list(["a"]) == "a"
    assert prose.prose_list(("a", "b")) == "a and b"
    assert prose.prose_list(["0.1", "0.2", "0.3"]) == "0.1, 0.2 and 0.3"
    with pytest.raises(ValueError, match="nothing to list"):
        prose.prose_list([])


def test_escape_markdown():
    assert prose.escape_markdown(r"a|b <= c_d *e* `f` $g$ #h [i] {j} \k") == (
        r"a\|b \<= c\_d \*e\* \`f\` \$g\$ \#h \[i\] \{j\} \\k")
    assert prose.escape_markdown("plain words, 0.5") == "plain words, 0.5"


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
    ("a_b", None, r"a\_b"),  # words are escaped
])
def test_source_markdown(source, cite, markdown):
    assert prose.source_markdown(source, cite) == markdown


def test_every_registered_source_is_cited(all_claims):
    for c in all_claims.values():
        text = prose.source_markdown(c.source, c.cite)
        if c.cite:
            assert f"`{c.cite}`" in text, c.id


# --- what the chapter quotes --------------------------------------------------------------


def test_verdict_of_given_and_held(all_claims):
    records = {"C1": _record(all_claims, "C1", {"mean_tv_frequent": 0.0021, "spearman_n_tv": -0.6},
                             {"mean_tv_frequent": 0.03, "spearman_n_tv": -0.7})}
    assert prose.verdict_of(records, "C1") == "INCONCLUSIVE"
    assert prose.verdict_of(records, "C2") == NOT_TESTED
    assert prose.given(records, "C1", "mean_tv_frequent") == "0.002 and 0.030"
    assert prose.given(records, "C2", "mean_tv_frequent_contexts") == prose.NOT_MEASURED
    assert prose.held(records, all_claims, "C1", "spearman_n_tv")  # on every seed
    assert not prose.held(records, all_claims, "C1", "mean_tv_frequent")  # not on the second


@pytest.mark.parametrize("values, text", [
    ({"C2": 0.0}, "one is supported and thirteen are not yet tested"),
    ({"C2": 0.0, "C3": 0.0, "C13": 9.0}, "one is supported, two are refuted and "
                                         "eleven are not yet tested"),
    ({}, "fourteen are not yet tested"),
])
def test_tally(all_claims, values, text):
    # C2 holds at 0 (mean TV <= 0.05); C3 fails at 0 (ratio >= 10), C13 at 9 (epochs <= 3)
    records = {cid: _uniform(all_claims, cid, value) for cid, value in values.items()}
    assert prose.tally(records, all_claims) == text


def test_tally_of_every_verdict(all_claims):
    records = {"C2": _uniform(all_claims, "C2", 0.0),
               "C3": _uniform(all_claims, "C3", 0.0),
               "C13": _record(all_claims, "C13", {"worst_cost_in_epochs": 1.0},
                              {"worst_cost_in_epochs": 5.0})}
    assert [r.verdict for r in records.values()] == ["SUPPORTED", "REFUTED", "INCONCLUSIVE"]
    assert prose.tally(records, all_claims) == ("one is supported, one is refuted, one is "
                                                "inconclusive and eleven are not yet tested")


def test_n_seeds(all_claims):
    assert prose.n_seeds({"C1": _uniform(all_claims, "C1", 0.0, seeds=3)}) == "three"
    assert prose.n_seeds({"C2": _uniform(all_claims, "C2", 0.0)}, "C2") == "two"
    assert prose.n_seeds({}) == prose.NOT_MEASURED


def test_glue_texts(every_claim):
    all_claims = every_claim
    records = {"C3": _record(all_claims, "C3",
                             {"std_ratio_rare_frequent": 1.66, "loglog_slope_std_n": -0.004},
                             {"std_ratio_rare_frequent": 1.5, "loglog_slope_std_n": 0.02}),
               "C1": _uniform(all_claims, "C1", 0.0)}
    texts = prose.glue_texts(records, all_claims)
    assert texts["C3_std_ratio_rare_frequent"] == "1.7 and 1.5"
    assert texts["C3_loglog_slope_std_n"] == "0.00 and 0.02"  # no minus sign on zero
    assert texts["C3_std_ratio_rare_frequent_threshold"] == "10"
    assert texts["C3_loglog_slope_std_n_threshold"] == "-0.25"
    assert texts["C5_spearman_n_gain"] == texts["C5_spearman_n_gain_size"] == prose.NOT_MEASURED
    assert texts["C5_spearman_n_gain_threshold"] == "-0.8"
    first = {cid: c for cid, c in all_claims.items() if c.round == 1}
    second = {cid: c for cid, c in all_claims.items() if c.round == 2}
    assert (texts["n_claims"], texts["n_seeds"]) == ("fourteen", "two")
    assert texts["tally"] == prose.tally(records, first)
    assert texts["n_claims_round2"] == prose.in_words(len(second))
    assert texts["tally_round2"] == prose.tally(records, second)
    names = {f"{cid}_{c.statistic}{suffix}" for cid, claim in all_claims.items()
             for c in claim.conditions for suffix in ("", "_size", "_threshold")}
    assert set(texts) == names | {"n_claims", "tally", "n_seeds", "n_claims_round2",
                                  "tally_round2"}


def test_sizes_drop_the_sign(all_claims):
    records = {"C4": _record(all_claims, "C4",
                             {"mean_tv_difference": -0.0056, "ci_high_tv_difference": -0.0039},
                             {"mean_tv_difference": 0.0173, "ci_high_tv_difference": -0.0153})}
    texts = prose.glue_texts(records, all_claims)
    assert texts["C4_mean_tv_difference"] == "-0.0056 and 0.0173"
    assert texts["C4_mean_tv_difference_size"] == "0.0056 and 0.0173"


def test_every_glued_text_of_the_chapter_is_made():
    chapter = (ROOT / "chapters" / "08_verdict.md").read_text()
    quoted = set(re.findall(r"\{glue:text\}`([^`:]+)", chapter))
    made = set(prose.glue_texts({}, claims.load_claims())) | {"price"}
    assert quoted and quoted <= made, sorted(quoted - made)


# --- the warning above the discussion -----------------------------------------------------


def _as_discussed(all_claims, cid: str) -> claims.Record:
    """A record of ``cid`` with the verdict the prose was written against."""
    record = _uniform(all_claims, cid, 0.0)
    return dataclasses.replace(record, verdict=all_claims[cid].discussed_as)


def test_no_warning_when_every_verdict_is_as_discussed(all_claims):
    records = {cid: _as_discussed(all_claims, cid) for cid in all_claims}
    assert prose.drift_note(records, all_claims) == ""


def test_the_warning_names_every_changed_verdict(all_claims):
    records = {cid: _as_discussed(all_claims, cid) for cid in all_claims if cid != "C2"}
    records["C3"] = dataclasses.replace(records["C3"], verdict="SUPPORTED")
    assert prose.drift_note(records, all_claims) == (
        ":::{warning}\nThis run's verdicts differ from those the discussion below was written "
        "against: C2 is not yet tested (the text assumes SUPPORTED); C3 is SUPPORTED (the text "
        "assumes REFUTED). Read the ledger, not the prose, where they disagree.\n:::\n")


def test_a_claim_not_yet_discussed_raises_no_warning(all_claims):
    undiscussed = {cid: dataclasses.replace(c, discussed_as=None) for cid, c in all_claims.items()}
    assert prose.drift_note({}, undiscussed) == ""


# --- the bill -----------------------------------------------------------------------------


C13_LEAD = ("**C13**, the position paper's estimate that fitting a post-hoc Laplace posterior "
            "costs about as much as a few epochs of training {cite:p}`papamarkou2024position`,")
C14_LEAD = ("**C14**, this essay's own guess that a Laplace posterior buys most of what a deep "
            "ensemble {cite:p}`lakshminarayanan2017simple` knows about its errors for a fraction "
            "of the ensemble's cost,")


def _c13(all_claims, *costs: float) -> dict:
    return {"C13": _record(all_claims, "C13", *[{"worst_cost_in_epochs": c} for c in costs])}


def _c14(all_claims, auroc_ratio, compute_ratio, **extra) -> dict:
    return {"C14": _record(all_claims, "C14", {"auroc_ratio": auroc_ratio,
                                               "compute_ratio": compute_ratio},
                           extra=extra or None)}


def test_c13_not_yet_tested(all_claims):
    assert prose.c13_text({}, all_claims) == C13_LEAD + " is not yet tested in this run."


@pytest.mark.parametrize("costs, verdict, given, ending", [
    ((2.5,), "supported", "2.50", " At these sizes the estimate holds."),
    ((15.72,), "refuted", "15.72",
     " On the small networks of this book the estimate fails, largely because the fit's fixed "
     "start-up is set against epochs over a corpus of one batch; C29 asks the question per "
     "token, and chapter 7 works out what the posterior would cost a large language model."),
    ((2.0, 4.0), "inconclusive", "2.00 and 4.00", " The seeds disagree."),
])
def test_c13_text(all_claims, costs, verdict, given, ending):
    assert prose.c13_text(_c13(all_claims, *costs), all_claims) == (
        f"{C13_LEAD} is {verdict}: over the network sizes of chapter 7, fitting the last-layer "
        f"KFAC posterior and its prior cost at worst {given} training epochs of the same "
        f"network, where the rule allowed 3." + ending)


def test_c14_not_yet_tested(all_claims):
    assert prose.c14_text({}, all_claims) == C14_LEAD + " is not yet tested in this run."


def _c14_body(verdict: str, auroc: str, compute: str) -> str:
    return (f"{C14_LEAD} is {verdict}: on chapter 4's detection of wrong answers it reached "
            f"{auroc} of the ensemble's AUROC for {compute} of its compute, training included, "
            f"where the rule asked for at least 0.9 of the AUROC for at most 0.2 of the compute.")


@pytest.mark.parametrize("auroc, compute, verdict, ending", [
    (0.95, 0.15, "supported", " Most of the ensemble's signal, cheaply."),
    (0.95, 0.3, "refuted",
     " It bought most of the ensemble's signal, but not cheaply enough: counting training, a "
     "posterior over one network costs at least that network, which is by itself one member of "
     "the ensemble - all that the rule allowed."),
    (0.8, 0.15, "refuted", " It was cheap, but it did not buy most of the ensemble's signal."),
    (0.8, 0.3, "refuted", " It was neither as good as the ensemble nor as cheap as hoped."),
])
def test_c14_text(all_claims, auroc, compute, verdict, ending):
    text = prose.c14_text(_c14(all_claims, auroc, compute), all_claims)
    assert text == _c14_body(verdict, f"{auroc:.3f}", f"{compute:.3f}") + ending


def test_c14_judges_each_half_on_the_printed_values(all_claims):
    # 0.8996 prints as 0.900: the AUROC half holds on the printed value, as the rule reads it
    text = prose.c14_text(_c14(all_claims, 0.8996, 0.3), all_claims)
    assert "It bought most of the ensemble's signal, but not cheaply enough" in text


def _c29(all_claims, ratio) -> dict:
    return {"C29": _record(all_claims, "C29", {"parameter_orders": 2.4, "corpus_sizes": 5,
                                               "corpus_orders": 1.2,
                                               "worst_slope_ratio": ratio})}


def _c30(all_claims, *seeds) -> dict:
    return {"C30": _record(all_claims, "C30", *[{"auroc_ratio": a,
                                                 "incremental_compute_ratio": c}
                                                for a, c in seeds],
                           pooled={"seeds": len(seeds)})}


def test_c29_and_c30_texts(bill_claims):
    assert prose.c29_text({}, bill_claims).endswith(" is not yet tested in this run.")
    refuted = prose.c29_text(_c29(bill_claims, 3.685), bill_claims)
    assert refuted.startswith("**C29**, the same estimate asked asymptotically")
    assert "is refuted: over the network sizes of chapter 7, the largest ratio of the fit's " \
           "cost per token to an epoch's was 3.685, where the rule allowed 1." in refuted
    assert refuted.endswith("chapter 7 shows which.")
    assert prose.c29_text(_c29(bill_claims, 0.5), bill_claims).endswith(
        " Per token, the fit is no dearer than an epoch at any size.")
    supported = prose.c30_text(_c30(bill_claims, (0.969, 0.103), (0.967, 0.147), (0.979, 0.084)),
                               bill_claims)
    assert supported.endswith(
        "is supported: the posterior reached 0.969, 0.967 and 0.979 of the ensemble's AUROC for "
        "0.103, 0.147 and 0.084 of the extra members' compute, where the rule asked for at "
        "least 0.9 and at most 0.2.")
    assert prose.c30_text({}, bill_claims).endswith(" is not yet tested in this run.")


def test_the_bill_as_the_reference_chapter_prints_it(bill_claims):
    records = {**_c13(bill_claims, 15.7234), **_c14(bill_claims, 0.9316982433847103, 0.2781),
               **_c29(bill_claims, 3.685), **_c30(bill_claims, (0.969, 0.103), (0.97, 0.1),
                                                 (0.98, 0.08))}
    assert prose.bill(records, bill_claims) == "\n\n".join(
        f(records, bill_claims) for f in (prose.c13_text, prose.c29_text, prose.c14_text,
                                         prose.c30_text)) + "\n"
    assert prose.bill({}, bill_claims).count("is not yet tested in this run.") == 4


@pytest.mark.parametrize("costs, c14, text", [
    ((), False, "What a posterior costs is chapter 7's question, not yet answered in this run."),
    ((4.0,), True, "Nor, on networks of this size, did even the cheapest posterior come as cheap "
                   "as the position paper estimates."),
    ((4.0,), False, "Nor, on networks of this size, did even the cheapest posterior come as "
                    "cheap as the position paper estimates."),
    ((2.0,), True, "And the cheapest posterior is, as the position paper says, cheap."),
    ((2.0, 4.0), True, "What it costs is measured in chapter 7."),  # C13 inconclusive
    ((), True, "What it costs is measured in chapter 7."),  # only C14 tested
])
def test_price_from_round_1(bill_claims, costs, c14, text):
    records = {**(_c13(bill_claims, *costs) if costs else {}),
               **(_c14(bill_claims, 0.95, 0.3) if c14 else {})}
    assert prose.price(records) == text


@pytest.mark.parametrize("ratio, seeds, start", [
    (3.685, [(0.97, 0.1)] * 3, "As a share of training, the cheapest posterior was as cheap"),
    (0.5, [(0.97, 0.1)] * 3, "And the cheapest posterior is, as the position paper says, cheap."),
    (3.685, [(0.5, 0.5)] * 3, "Nor was the cheapest posterior as cheap"),
    (0.5, [(0.5, 0.5)] * 3, "What it costs is measured in chapter 7."),
])
def test_price_reads_round_2_first(bill_claims, ratio, seeds, start):
    records = {**_c13(bill_claims, 15.7), **_c29(bill_claims, ratio), **_c30(bill_claims, *seeds)}
    assert prose.price(records).startswith(start)
