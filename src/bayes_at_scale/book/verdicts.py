"""What a reader meets first and last: the "In brief" box that opens a chapter, the
callouts of its "Verdict" section, and the front page's answer in brief.

Each is MyST markdown built from verdict records
(:class:`~bayes_at_scale.book.claims.Record`) and the registered claims - never typed by
hand - so that a changed verdict changes the text: a claim's ``reading`` of the verdict
its record carries is the one shown, and where a verdict differs from the one the book's
prose was written against (``discussed_as``), the box says so. A chapter builds its
boxes from :func:`~bayes_at_scale.book.claims.reported` (the verdicts its own kernel
printed); the front page from the ledger's records.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import prose
from .claims import (
    NOT_TESTED,
    Claim,
    Record,
    format_value,
    load_claims,
    load_questions,
)
from .ledger import STEPS, badge, reading_order

Records = Mapping[str, Record]
Claims = Mapping[str, Claim]


def _chapter_claims(chapter: int, claims: Claims) -> list[Claim]:
    found = [
        claims[cid]
        for cid in reading_order(dict(claims))
        if claims[cid].chapter == chapter
    ]
    if not found:
        raise ValueError(f"no registered claim belongs to chapter {chapter}")
    return found


def refinements(claim: Claim, claims: Claims) -> list[str]:
    """The ids of the claims that refine ``claim`` (round 2), in file order."""
    return [c.id for c in claims.values() if c.refines == claim.id]


def claim_link(cid: str) -> str:
    """A link to the section that prints ``cid``'s verdict: ``{ref}`C28
    <claim-c28>```."""
    return f"{{ref}}`{cid} <claim-{cid.lower()}>`"


def reading(claim: Claim, verdict: str, claims: Claims) -> str:
    """The plain-language reading of ``verdict`` for ``claim``, as MyST, with its flag
    (a premise not met, a rule that could not be met) and a link to the claim's
    refinement."""
    if verdict == NOT_TESTED:
        return "Not yet tested: its chapter has not run."
    text = prose.escape_markdown(claim.reading.get(verdict, ""))
    if not text:
        raise ValueError(f"claim {claim.id} has no reading of the verdict {verdict}")
    flag = claim.flags.get(verdict)
    if flag:
        later = refinements(claim, claims)
        see = (
            " Its refinement "
            + prose.prose_list([claim_link(c) for c in later])
            + " tests it again."
            if later
            else ""
        )
        text += f" **Caveat: {flag}.**{see}"
    return text


def brief(claim: Claim, verdict: str) -> str:
    """``C8 {bdg}: <the short reading of the verdict>`` (a flagged verdict says so)."""
    if verdict == NOT_TESTED:
        return f"{claim.id} *not yet tested*"
    text = claim.brief.get(verdict)
    if not text:
        raise ValueError(
            f"claim {claim.id} has no brief reading of the verdict {verdict}"
        )
    flag = f" ({claim.flags[verdict]})" if verdict in claim.flags else ""
    return f"**{claim.id}** {prose.escape_markdown(text)}{flag}"


def _statistics(claim: Claim, record: Record) -> list[str]:
    """One bullet per statistic of the rule: its name and every seed's value as the
    verdict line prints it, with the seed's 95% interval where it has one (a pooled
    statistic's is printed already), spaced so that a narrow column wraps between
    seeds."""
    lines = []
    for name, texts in record.printed.items():
        digits = claim.condition(name).digits
        shown = list(texts)
        if len(texts) == len(record.seeds):
            for i, seed in enumerate(record.seeds):
                if "low" in seed.get(name, {}):
                    low, high = (
                        format_value(seed[name][k], digits) for k in ("low", "high")
                    )
                    shown[i] += f" [{low}, {high}]"
        lines.append(f"- `{name}` = " + " / ".join(shown))
    return lines


def callout(claim: Claim, record: Record | None, claims: Claims) -> str:
    """One claim's verdict as a MyST admonition: the badge (colour, symbol and word),
    the claim, what was tested, the reading of the verdict, the statistics (wrapped, one
    line per statistic) and the rule."""
    verdict = record.verdict if record is not None else NOT_TESTED
    seeds = len(record.seeds) if record is not None else 0
    lines = [
        f":::{{admonition}} {claim.id}: {prose.escape_markdown(claim.claim)}",
        f":class: verdict verdict-{verdict.split()[0].lower()}",
        "",
        f"{badge(verdict)} {reading(claim, verdict, claims)}",
        "",
    ]
    if claim.tested_as:
        lines += [f"**Tested:** {prose.escape_markdown(claim.tested_as)}", ""]
    if record is not None:
        per = "one value per seed, with its 95% interval where it has one"
        if record.pooled:
            per += "; a statistic pooled over the seeds is one value [95% interval]"
        lines += (
            [
                (
                    f"**Measured** ({prose.in_words(seeds)} seed{'s' * (seeds != 1)};"
                    f" {per}):"
                ),
                "",
            ]
            + _statistics(claim, record)
            + [""]
        )
    lines += [f"**Rule:** {prose.escape_markdown(claim.rule)}", ":::"]
    return "\n".join(lines)


def verdict_section(
    chapter: int, records: Records, claims: Claims | None = None
) -> str:
    """Every claim of ``chapter`` as a :func:`callout`, in the ledger's reading
    order."""
    claims = claims if claims is not None else load_claims()
    return (
        "\n\n".join(
            callout(c, records.get(c.id), claims)
            for c in _chapter_claims(chapter, claims)
        )
        + "\n"
    )


def _badges(cids: list[str], records: Records) -> str:
    return " \N{MIDDLE DOT} ".join(
        f"{claim_link(cid)} {badge(prose.verdict_of(records, cid))}" for cid in cids
    )


def drifted(cids: list[str], records: Records, claims: Claims) -> list[str]:
    """The claims among ``cids`` whose verdict differs from the one the prose was
    written against (``discussed_as``); untested claims are not counted."""
    return [
        cid
        for cid in cids
        if cid in records
        and claims[cid].discussed_as
        and records[cid].verdict != claims[cid].discussed_as
    ]


def _drift_line(changed: list[str], records: Records, claims: Claims) -> list[str]:
    if not changed:
        return []
    which = prose.prose_list(
        [
            f"{cid} ({records[cid].verdict}, written against "
            f"{claims[cid].discussed_as})"
            for cid in changed
        ]
    )
    return [
        "",
        (
            "**Note:** this run's verdict differs from the one the prose was written "
            f"against for {which}: the readings above follow this run."
        ),
    ]


def in_brief(
    chapter: int,
    records: Records,
    claims: Claims | None = None,
    questions: Mapping[int, str] | None = None,
) -> str:
    """A chapter's opening box, as MyST: the question it asks, what it found (the short
    reading of each claim's verdict, :func:`brief`) and the claims with their badges."""
    claims = claims if claims is not None else load_claims()
    questions = questions if questions is not None else load_questions()
    if chapter not in questions:
        raise ValueError(f"data/claims.yaml has no question for chapter {chapter}")
    chapter_claims = _chapter_claims(chapter, claims)
    found = "; ".join(brief(c, prose.verdict_of(records, c.id)) for c in chapter_claims)
    cids = [c.id for c in chapter_claims]
    lines = [
        ":::{admonition} In brief",
        ":class: in-brief",
        "",
        f"**Question.** {prose.escape_markdown(questions[chapter])}",
        "",
        f"**Found.** {found}",
        "",
        f"**Claims.** {_badges(cids, records)}",
    ]
    lines += _drift_line(drifted(cids, records, claims), records, claims)
    return "\n".join(lines + [":::"]) + "\n"


def answer_in_brief(
    records: Records,
    answer: str,
    claims: Claims | None = None,
    *,
    title: str = "Answer in brief",
    question: str | None = None,
) -> str:
    """The book's answer as a box (the front page's; the verdict chapter's "In brief",
    with its ``question``): the ``answer`` (written against the registered
    ``discussed_as`` verdicts, and flagged where a verdict now differs), then each step
    of the blog's argument with its claims' badges
    (:data:`~bayes_at_scale.book.ledger.STEPS`)."""
    claims = claims if claims is not None else load_claims()
    if not answer or not answer.strip():
        raise ValueError("the answer in brief is empty")
    steps: dict[str, list[str]] = {}
    for cid in reading_order(dict(claims)):
        steps.setdefault(STEPS[claims[cid].chapter], []).append(cid)
    lines = [f":::{{admonition}} {title}", ":class: in-brief answer-in-brief", ""]
    if question:
        lines += [f"**Question.** {prose.escape_markdown(question)}", ""]
    lines += [("**Found.** " if question else "") + " ".join(answer.split()), ""]
    lines += [
        f"- **{step[0].upper()}{step[1:]}:** {_badges(cids, records)}"
        for step, cids in steps.items()
    ]
    lines += _drift_line(drifted(list(claims), records, claims), records, claims)
    return "\n".join(lines + [":::"]) + "\n"
