"""The ledger: every registered claim with the verdict its chapter recorded.

Chapters record their verdicts with :func:`bayes_at_scale.book.claims.report` (one JSON
file per claim, in the folder named by ``ESSAY_RECORDS``). The ledger reads those
records - never the text a notebook printed - so it does not matter in which order, or
from which cache, the chapters were executed: only which records the folder holds.

The folder read is ``ESSAY_RECORDS`` if it is set and holds records (a book build sets
it to ``_build/records``), and otherwise the records blessed with the reference
notebooks, ``tests/references/records``. A claim without a record is "not yet tested".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..core.settings import project_root
from . import prose
from .claims import NOT_TESTED, VERDICTS, Claim, Record, load_claims, records_folder

#: The records blessed with the reference notebooks (``make references``), from the
#: book's root.
BLESSED = Path("tests", "references", "records")
#: The records of a book build (``make book``), from the book's root.
BUILT = Path("_build", "records")
#: How the ledger names the origin of its verdicts.
ORIGINS = {
    BLESSED: "the committed reference notebooks",
    BUILT: "this build's executed chapters",
}
COLUMNS = (
    "id",
    "claim",
    "source",
    "cite",
    "chapter",
    "round",
    "refines",
    "why",
    "rule",
    "verdict",
    "caveat",
    "discussed_as",
    "measured",
    "printed",
    "document",
    "anchor",
)
#: How a verdict is shown: a sphinx-design badge of a colour-blind-safe colour, with a
#: symbol and the word, so that colour is never the only signal.
BADGES = {
    "SUPPORTED": ("success", "\N{CHECK MARK}"),
    "REFUTED": ("danger", "\N{BALLOT X}"),
    "INCONCLUSIVE": ("warning", "?"),
}
LEDGER_HEADER = ("Claim", "Verdict", "Source", "Rule", "Measured", "Evidence")


def _claim_number(cid: str) -> int:
    return int(cid[1:])


def records_from_files(paths: Iterable[Path | str]) -> dict[str, Record]:
    """The records in ``paths``, keyed by claim id in claim order, whatever order the
    paths come in. Each file must be named after its claim (``C7.json``); a claim may
    have one record."""
    found: dict[str, Record] = {}
    for path in paths:
        path = Path(path)
        try:
            record = Record.from_json(path.read_text(encoding="utf8"))
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if record.claim != path.stem:
            raise ValueError(
                f"{path} holds the record of {record.claim}, not of {path.stem}"
            )
        if record.claim in found:
            raise ValueError(f"claim {record.claim} has more than one record")
        found[record.claim] = record
    return {cid: found[cid] for cid in sorted(found, key=_claim_number)}


def record_files(folder: Path | str) -> list[Path]:
    """The record files of ``folder`` (``C<n>.json``), none if the folder does not
    exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [p for p in folder.glob("C*.json") if re.fullmatch(r"C\d+", p.stem)]


def read_records(folder: Path | str) -> dict[str, Record]:
    """Every record in ``folder``, keyed by claim id in claim order."""
    return records_from_files(record_files(folder))


def origin_of(folder: Path | str, root: Path | str | None = None) -> str:
    """How the ledger names a records folder: the blessed and the built folders by what
    they are, any other folder by its path (from the book's root, if it lies inside)."""
    root = Path(root).resolve() if root is not None else project_root().resolve()
    folder = Path(folder).resolve()
    for known, words in ORIGINS.items():
        if folder == root / known:
            return words
    shown = (
        folder.relative_to(root).as_posix() if folder.is_relative_to(root) else folder
    )
    return f"the records in {shown}"


def records_source(root: Path | str | None = None) -> Path:
    """The folder to read: ``ESSAY_RECORDS`` if it holds records, else the blessed
    one."""
    root = Path(root) if root is not None else project_root()
    folder = records_folder(root)
    if folder is not None and record_files(folder):
        return folder
    return root / BLESSED


def find_records(root: Path | str | None = None) -> tuple[dict[str, Record], str]:
    """The records the ledger reads (see :func:`records_source`), and where they came
    from."""
    folder = records_source(root)
    return read_records(folder), origin_of(folder, root)


def reading_order(claims: dict[str, Claim]) -> list[str]:
    """The claims in the order the ledger reads them: each round-1 claim followed by the
    round-2 claims that refine it; a round-2 claim that refines none follows the last
    claim of its chapter (in the claims file's order otherwise)."""
    order = [cid for cid, c in claims.items() if c.round == 1]
    placed = set(order)
    for cid, c in claims.items():
        if cid in placed:
            continue
        if c.refines in placed:
            anchor = max(
                i
                for i, other in enumerate(order)
                if other == c.refines or claims[other].refines == c.refines
            )
        else:
            same = [
                i for i, other in enumerate(order) if claims[other].chapter <= c.chapter
            ]
            anchor = max(same) if same else -1
        order.insert(anchor + 1, cid)
        placed.add(cid)
    return order


def ledger(
    records: dict[str, Record], claims: dict[str, Claim] | None = None
) -> pd.DataFrame:
    """One row per registered claim, in :func:`reading_order` (columns :data:`COLUMNS`:
    ``measured`` is the measured part of the verdict line, ``printed`` the same
    statistics as a dict of per-seed texts; both empty for a claim not yet tested).

    A record must belong to a registered claim and carry its chapter and rule: a record
    left by an earlier version of the claims file is an error, not a verdict.
    """
    claims = claims if claims is not None else load_claims()
    unknown = set(records) - set(claims)
    if unknown:
        unknown = ", ".join(sorted(unknown, key=_claim_number))
        raise ValueError(f"records of unknown claims: {unknown}")
    rows = []
    for c in (claims[cid] for cid in reading_order(claims)):
        r = records.get(c.id)
        if r is not None and (r.rule, r.chapter) != (c.rule, c.chapter):
            raise ValueError(
                f"the record of {c.id} was written for another rule or chapter than "
                f"data/claims.yaml's; re-run chapter {c.chapter}"
            )
        rows.append(
            {
                "id": c.id,
                "claim": c.claim,
                "source": c.source,
                "cite": c.cite or "",
                "chapter": c.chapter,
                "round": c.round,
                "refines": c.refines or "",
                "why": c.why or "",
                "rule": c.rule,
                "verdict": r.verdict if r else NOT_TESTED,
                "caveat": c.caveat or "",
                "discussed_as": c.discussed_as or "",
                "measured": r.measured if r else "",
                "printed": dict(r.printed) if r else {},
                "document": (r.document or "") if r else "",
                "anchor": r.anchor if r else "",
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def evidence_markdown(chapter: int, document: str, anchor: str) -> str:
    """Where a verdict was printed, as MyST: ``ch. 4, § {ref}`claim-c7```, the reference
    showing the title of the section above the label (a strict build fails on a missing
    label); ``chapter 4`` for a claim without a record."""
    if not document or not anchor:
        return f"chapter {chapter}"
    return f"ch. {chapter}, \N{SECTION SIGN} {{ref}}`{anchor}`"


def measured_markdown(printed: dict) -> str:
    """A record's printed statistics as table text: ``` `a` = 0.002/0.001; `b` =
    -0.67```."""
    if not printed:
        return "-"
    return "; ".join(f"`{name}` = {'/'.join(texts)}" for name, texts in printed.items())


#: The blog's four steps (and the bill) that each chapter tests, for the one-glance
#: figure.
STEPS = {
    1: "1. the frequencies",
    2: "2. rare fragments",
    3: "2. rare fragments",
    4: "3. confident nonsense",
    5: "4. the causal stage",
    6: "4. the causal stage",
    7: "the bill",
}


def tiles(table: pd.DataFrame) -> pd.DataFrame:
    """Where each claim of the ledger ``table`` sits in the one-glance figure: ``group``
    (the blog's step its chapter tests, :data:`STEPS`), ``column`` within the group,
    ``round``, ``id`` and ``verdict``.  A round-1 claim and the round-2 claims that
    refine it share a column (round 1 above); a round-2 claim that refines none gets a
    column of its own."""
    missing = {"id", "chapter", "round", "refines", "verdict"} - set(table.columns)
    if missing:
        raise ValueError(
            f"a ledger table has columns {sorted(missing)}; got {list(table.columns)}"
        )
    unknown = sorted(set(table["chapter"]) - set(STEPS))
    if unknown:
        raise ValueError(f"no step of the blog's argument for chapter(s) {unknown}")
    rows, column_of, next_column = [], {}, {}
    for row in table.itertuples(index=False):
        group = STEPS[row.chapter]
        if row.refines and row.refines in column_of:
            column, depth = column_of[row.refines]
            column_of[row.refines] = (column, depth + 1)
            level = row.round + depth
        else:
            column = next_column.get(group, 0)
            next_column[group] = column + 1
            column_of[row.id] = (column, 0)
            level = row.round
        rows.append(
            {
                "group": group,
                "column": column,
                "round": level,
                "id": row.id,
                "verdict": row.verdict,
            }
        )
    return pd.DataFrame(rows)


def badge(verdict: str) -> str:
    """A verdict as MyST: ``{bdg-success}`✓ SUPPORTED``` (sphinx-design), or the italic
    text of a claim not yet tested."""
    if verdict not in VERDICTS:
        return f"*{verdict}*"
    colour, symbol = BADGES[verdict]
    return f"{{bdg-{colour}}}`{symbol} {verdict}`"


def verdict_of_badge(text: str) -> str:
    """The verdict a ledger cell shows (the inverse of :func:`badge`, caveat
    ignored)."""
    m = re.match(r"\{bdg-[a-z]+\}`\S+ ([A-Z]+)`", text)
    if m:
        return m.group(1)
    m = re.match(r"\*([^*]+)\*", text)
    return m.group(1) if m else text


def ledger_markdown(table: pd.DataFrame) -> str:
    """The ledger as a MyST markdown table, one row per claim (render it with
    ``render_markdown_format: myst``: the sources cite and the evidence refers)."""
    lines = [
        "| " + " | ".join(LEDGER_HEADER) + " |",
        "|" + " --- |" * len(LEDGER_HEADER),
    ]
    for row in table.itertuples(index=False):
        why = f": {prose.escape_markdown(row.why)}" if row.why else ""
        cells = [
            f"**{row.id}** {prose.escape_markdown(row.claim)}"
            + (
                f" *(round {row.round}; refines {row.refines}{why})*"
                if row.refines
                else f" *(round {row.round}{why})*" if row.round > 1 else ""
            ),
            badge(row.verdict)
            + (f" *({prose.escape_markdown(row.caveat)})*" if row.caveat else ""),
            prose.source_markdown(row.source, row.cite or None),
            prose.escape_markdown(row.rule),
            measured_markdown(row.printed),
            evidence_markdown(row.chapter, row.document, row.anchor),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: The front page's short ledger: one row per claim, without the rule and the
#: statistics.
SUMMARY_HEADER = ("Claim", "Round", "Chapter", "Verdict")


def summary_markdown(table: pd.DataFrame) -> str:
    """The ledger in brief, as a MyST table: each claim (with the claim it refines), its
    round, its chapter and its verdict badge, in the ledger's order."""
    lines = [
        "| " + " | ".join(SUMMARY_HEADER) + " |",
        "|" + " --- |" * len(SUMMARY_HEADER),
    ]
    for row in table.itertuples(index=False):
        refines = f" *(refines {row.refines})*" if row.refines else ""
        lines.append(
            f"| **{row.id}** {prose.escape_markdown(row.claim)}{refines} | {row.round} "
            f"| {row.chapter} | {badge(row.verdict)} |"
        )
    return "\n".join(lines) + "\n"


def summary_line(table: pd.DataFrame, origin: str) -> str:
    """``Verdicts read from <origin>: 14 of 14 claims tested.``"""
    tested = int((table["verdict"] != NOT_TESTED).sum())
    return f"Verdicts read from {origin}: {tested} of {len(table)} claims tested."
