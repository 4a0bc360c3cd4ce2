"""The verdict chapter's conditional prose, as pure functions of the claims and their
records.

The closing chapter (``chapters/08_verdict.md``) was written against the verdicts
registered as ``discussed_as`` in ``data/claims.yaml``. What in it depends on a run -
the measured numbers it quotes, the tally of verdicts, the warning shown when a verdict
differs from the one the text assumes, and the paragraphs on the price of a posterior
(C13, C14) - is built here from the records of :mod:`bayes_at_scale.book.claims`, so
that every branch can be tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .claims import NOT_TESTED, VERDICTS, Claim, Record

#: Sources that ``data/claims.yaml`` names in words, and the reference each stands for.
SOURCE_KEYS = {
    "blog": "blog2024large",
    "position paper": "papamarkou2024position",
    "GPT-4 report": "openai2023gpt4",
}
#: What the prose quotes in place of a statistic whose claim has no record.
NOT_MEASURED = "(not yet measured)"

_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)

Records = Mapping[str, Record]
Claims = Mapping[str, Claim]


def in_words(n: int) -> str:
    """A small count as a word, for prose ("fourteen"); larger ones as digits."""
    return _WORDS[n] if 0 <= n < len(_WORDS) else str(n)


def prose_list(values: Sequence[str]) -> str:
    """Items as prose: "a", "a and b", "a, b and c" (per-seed values, say)."""
    if not values:
        raise ValueError("nothing to list")
    values = list(values)
    return (
        values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]
    )


def escape_markdown(text: str) -> str:
    """``text`` with every character that means something in MyST markdown escaped."""
    return re.sub(r"([\\`*_{}\[\]<>|$#])", r"\\\1", text)


def source_markdown(source: str, cite: str | None) -> str:
    """A claim's source in words, with MyST citations of the references it names.

    The parts of ``source`` (separated by ``;``) that are a kind of source - the blog,
    the position paper - keep their words and gain a parenthetical citation; the part
    that names the claim's ``cite`` by its first author becomes a textual citation of
    it; ``cite``, if no part names it, is cited at the end.
    """
    parts, cited = [], set()
    author = re.match(r"[a-z]+", cite).group(0) if cite else None
    for part in (p.strip() for p in source.split(";")):
        if part in SOURCE_KEYS:
            parts.append(f"{escape_markdown(part)} {{cite:p}}`{SOURCE_KEYS[part]}`")
            cited.add(SOURCE_KEYS[part])
        elif cite and cite not in cited and author in part.lower():
            parts.append(f"{{cite:t}}`{cite}`")
            cited.add(cite)
        else:
            parts.append(escape_markdown(part))
    text = "; ".join(parts)
    if cite and cite not in cited:
        text += f" {{cite:p}}`{cite}`"
    return text


# --- what the chapter quotes ----------------------------------------------------------


def verdict_of(records: Records, cid: str) -> str:
    """The verdict recorded for ``cid``, or "not yet tested"."""
    return records[cid].verdict if cid in records else NOT_TESTED


def given(records: Records, cid: str, statistic: str) -> str:
    """A statistic as its verdict line printed it, the seeds listed in words: "0.002 and
    0.001" (:data:`NOT_MEASURED` if the claim has no record)."""
    if cid not in records:
        return NOT_MEASURED
    return prose_list(records[cid].printed[statistic])


def held(records: Records, claims: Claims, cid: str, statistic: str) -> bool:
    """Whether the rule's condition on ``statistic`` held on every seed, as printed."""
    condition = claims[cid].condition(statistic)
    return all(condition.holds(float(v)) for v in records[cid].printed[statistic])


def tally(records: Records, claims: Claims) -> str:
    """How many claims got each verdict: "five are supported, seven are refuted and two
    are inconclusive" (untested claims last)."""
    verdicts = [verdict_of(records, cid) for cid in claims]
    parts = [
        f"{in_words(verdicts.count(v))} {'is' if verdicts.count(v) == 1 else 'are'} "
        f"{v.lower()}"
        for v in (*VERDICTS, NOT_TESTED)
        if verdicts.count(v)
    ]
    return prose_list(parts)


def n_seeds(records: Records, cid: str = "C1") -> str:
    """In words, how many seeds ``cid``'s verdict was measured on."""
    return in_words(len(records[cid].seeds)) if cid in records else NOT_MEASURED


def glue_texts(records: Records, claims: Claims) -> dict[str, str]:
    """Every text the chapter's prose quotes by name.

    For every statistic of every rule, ``<id>_<statistic>`` (the per-seed values as
    printed), ``<id>_<statistic>_size`` (the same without their signs) and
    ``<id>_<statistic>_threshold``; ``n_claims`` and ``tally`` (round 1, which the
    discussion is written against), ``n_claims_round2`` and ``tally_round2``, and
    ``n_seeds``.
    """
    texts = {}
    for cid, claim in claims.items():
        for c in claim.conditions:
            if cid in records:
                values = records[cid].printed[c.statistic]
                texts[f"{cid}_{c.statistic}"] = prose_list(values)
                texts[f"{cid}_{c.statistic}_size"] = prose_list(
                    [v.lstrip("-") for v in values]
                )
            else:
                texts[f"{cid}_{c.statistic}"] = texts[f"{cid}_{c.statistic}_size"] = (
                    NOT_MEASURED
                )
    for cid, claim in claims.items():
        for c in claim.conditions:
            texts[f"{cid}_{c.statistic}_threshold"] = f"{c.threshold:g}"
    # the discussion is written against round 1; round 2's tally stands beside it
    first = {cid: c for cid, c in claims.items() if c.round == 1}
    second = {cid: c for cid, c in claims.items() if c.round >= 2}
    texts["n_claims"] = in_words(len(first))
    texts["tally"] = tally(records, first)
    texts["n_claims_round2"] = in_words(len(second))
    texts["tally_round2"] = tally(records, second) if second else "none is registered"
    texts["n_seeds"] = n_seeds(records)
    return texts


def drift_note(records: Records, claims: Claims) -> str:
    """A MyST warning listing the claims whose verdict differs from the one the
    discussion was written against (``discussed_as``); empty when none does."""
    changed = [
        f"{cid} is {verdict_of(records, cid)} (the text assumes {c.discussed_as})"
        for cid, c in claims.items()
        if c.discussed_as and verdict_of(records, cid) != c.discussed_as
    ]
    if not changed:
        return ""
    return (
        ":::{warning}\nThis run's verdicts differ from those the discussion below was"
        " written against: "
        + "; ".join(changed)
        + ". Read the ledger, not the prose, where they disagree.\n:::\n"
    )


# --- the bill: C13, C29, C14 and C30 --------------------------------------------------


def _not_tested(records: Records, cid: str, lead: str) -> str | None:
    """A bill paragraph's text while ``cid`` has no verdict (None once it has)."""
    return (
        lead + " is not yet tested in this run."
        if verdict_of(records, cid) == NOT_TESTED
        else None
    )


def _over_the_sizes(
    records: Records,
    claims: Claims,
    cid: str,
    lead: str,
    statistic: str,
    measured: str,
    endings: dict,
) -> str:
    """A bill paragraph on a per-size claim (C13, C29): ``lead``, the verdict,
    ``measured`` (which reads its value with ``{value}``) against the rule's limit, and
    the verdict's ending."""
    if (untested := _not_tested(records, cid, lead)) is not None:
        return untested
    verdict = verdict_of(records, cid)
    limit = f"{claims[cid].condition(statistic).threshold:g}"
    return (
        f"{lead} is {verdict.lower()}: over the network sizes of chapter 7, "
        + measured.format(value=given(records, cid, statistic))
        + f", where the rule allowed {limit}."
        + endings[verdict]
    )


def c13_text(records: Records, claims: Claims) -> str:
    """The paragraph on C13, the position paper's price of a posterior in epochs."""
    return _over_the_sizes(
        records,
        claims,
        "C13",
        "**C13**, the position paper's estimate that fitting a post-hoc Laplace"
        " posterior costs about as much as a few epochs of training"
        " {cite:p}`papamarkou2024position`,",
        "worst_cost_in_epochs",
        "fitting the last-layer KFAC posterior and its prior cost at worst {value}"
        " training epochs of the same network",
        {
            "SUPPORTED": " At these sizes the estimate holds.",
            "REFUTED": (
                " On the small networks of this book the estimate fails, largely"
                " because the fit's fixed start-up is set against epochs over a corpus"
                " of one batch; C29 asks the question per token, and chapter 7 works"
                " out what the posterior would cost a large language model."
            ),
            "INCONCLUSIVE": " The seeds disagree.",
        },
    )


def c14_text(records: Records, claims: Claims) -> str:
    """The paragraph on C14, Laplace against a deep ensemble."""
    lead = (
        "**C14**, this essay's own guess that a Laplace posterior buys most of what a"
        " deep ensemble {cite:p}`lakshminarayanan2017simple` knows about its errors for"
        " a fraction of the ensemble's cost,"
    )
    if (untested := _not_tested(records, "C14", lead)) is not None:
        return untested
    verdict = verdict_of(records, "C14")
    auroc, compute = (
        claims["C14"].condition(s) for s in ("auroc_ratio", "compute_ratio")
    )
    text = (
        f"{lead} is {verdict.lower()}: on chapter 4's detection of wrong answers it"
        f" reached {given(records, 'C14', 'auroc_ratio')} of the ensemble's AUROC for"
        f" {given(records, 'C14', 'compute_ratio')} of its compute, training included,"
        f" where the rule asked for at least {auroc.threshold:g} of the AUROC for at"
        f" most {compute.threshold:g} of the compute."
    )
    good = held(records, claims, "C14", "auroc_ratio")
    cheap = held(records, claims, "C14", "compute_ratio")
    if good and cheap:
        text += " Most of the ensemble's signal, cheaply."
    elif good:
        text += (
            " It bought most of the ensemble's signal, but not cheaply enough: counting"
            " training, a posterior over one network costs at least that network, which"
            " is by itself one member of the ensemble - all that the rule allowed."
        )
    elif cheap:
        text += " It was cheap, but it did not buy most of the ensemble's signal."
    else:
        text += " It was neither as good as the ensemble nor as cheap as hoped."
    return text


def c29_text(records: Records, claims: Claims) -> str:
    """The paragraph on C29, C13 asked per token: the slope of the fit's cost in the
    corpus size against the slope of an epoch's."""
    return _over_the_sizes(
        records,
        claims,
        "C29",
        "**C29**, the same estimate asked asymptotically - does the cost of the fit"
        " grow with the corpus no faster than the cost of an epoch? -",
        "worst_slope_ratio",
        "the largest ratio of the fit's cost per token to an epoch's was {value}",
        {
            "SUPPORTED": " Per token, the fit is no dearer than an epoch at any size.",
            "REFUTED": (
                " Per token, the fit cost more than an epoch on at least one of the "
                "network sizes; chapter 7 shows which."
            ),
            "INCONCLUSIVE": " Its interval straddles the threshold.",
        },
    )


def c30_text(records: Records, claims: Claims) -> str:
    """The paragraph on C30, C14 made meetable: each method scored fairly, and the
    posterior's cost set against the ensemble's extra members."""
    lead = (
        "**C30**, C14 made meetable - each method scored by the better of its mutual"
        " information and its top probability, and the posterior's fit and predictive"
        " set against what the ensemble's four extra members cost -"
    )
    if (untested := _not_tested(records, "C30", lead)) is not None:
        return untested
    auroc, compute = (
        claims["C30"].condition(s) for s in ("auroc_ratio", "incremental_compute_ratio")
    )
    return (
        f"{lead} is {verdict_of(records, 'C30').lower()}: the posterior reached "
        f"{given(records, 'C30', 'auroc_ratio')} of the ensemble's AUROC for "
        f"{given(records, 'C30', 'incremental_compute_ratio')} of the extra members' "
        f"compute, where the rule asked for at least {auroc.threshold:g} and at most "
        f"{compute.threshold:g}."
    )


def bill(records: Records, claims: Claims) -> str:
    """The section on the price of a posterior: C13's paragraph, C29's, C14's and
    C30's."""
    return (
        "\n\n".join(
            f(records, claims) for f in (c13_text, c29_text, c14_text, c30_text)
        )
        + "\n"
    )


def price(records: Records) -> str:
    """The sentence on the price that the chapter's last paragraph ends with: round 2's
    verdicts (C29 per token, C30 against an ensemble) where they exist, else round 1's
    (C13)."""
    c29, c30 = verdict_of(records, "C29"), verdict_of(records, "C30")
    if c30 == "SUPPORTED" and c29 == "REFUTED":
        return (
            "As a share of training, the cheapest posterior was as cheap as the"
            " position paper says, and bought most of an ensemble's signal for a"
            " fraction of its extra cost; per token, though, its fit grew faster than"
            " an epoch."
        )
    if c30 == "SUPPORTED" and c29 == "SUPPORTED":
        return "And the cheapest posterior is, as the position paper says, cheap."
    if c30 == "REFUTED" and c29 == "REFUTED":
        return "Nor was the cheapest posterior as cheap as the position paper says."
    if (
        verdict_of(records, "C13") == NOT_TESTED
        and verdict_of(records, "C14") == NOT_TESTED
    ):
        return (
            "What a posterior costs is chapter 7's question, not yet answered in this"
            " run."
        )
    if c29 == NOT_TESTED and c30 == NOT_TESTED:
        if verdict_of(records, "C13") == "REFUTED":
            return (
                "Nor, on networks of this size, did even the cheapest posterior come as"
                " cheap as the position paper estimates."
            )
        if verdict_of(records, "C13") == "SUPPORTED":
            return "And the cheapest posterior is, as the position paper says, cheap."
    return "What it costs is measured in chapter 7."
