"""The pre-registered claims: read them, apply their rules, print verdict lines, build the ledger.

A claim's rule is a list of conditions ``statistic op threshold`` (``data/claims.yaml``).  A
chapter measures the statistics once per seed and calls :func:`report`, which prints exactly one
line of the form fixed in the project's claims file::

    CLAIM C1: SUPPORTED - mean_tv_frequent = 0.003/0.004, spearman_n_tv = -0.6/-0.59 (rule: ...)

(values per seed, separated by ``/``).  A statistic may come with an uncertainty interval
``(value, low, high)``; if the interval straddles the threshold the seed is undecided.
SUPPORTED = every seed passes, REFUTED = every seed fails, INCONCLUSIVE otherwise.
"""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from .settings import project_root

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
VERDICTS = ("SUPPORTED", "REFUTED", "INCONCLUSIVE")
LINE = re.compile(r"^CLAIM (C\d+): (SUPPORTED|REFUTED|INCONCLUSIVE) - (.*) \(rule: (.*)\)$")


@dataclass(frozen=True)
class Condition:
    statistic: str
    op: str
    threshold: float
    digits: int

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)


@dataclass(frozen=True)
class Claim:
    id: str
    chapter: int
    source: str
    cite: str | None
    claim: str
    statement: str
    rule: str
    conditions: tuple[Condition, ...]


def _parse_claim(entry: dict) -> Claim:
    required = ("id", "chapter", "source", "claim", "statement", "rule", "conditions")
    missing = [k for k in required if k not in entry]
    if missing:
        raise ValueError(f"claim {entry.get('id', '?')} lacks {', '.join(missing)}")
    if not re.fullmatch(r"C\d+", str(entry["id"])):
        raise ValueError(f"claim id {entry['id']!r} is not of the form C<n>")
    conditions = []
    for c in entry["conditions"]:
        if c.get("op") not in OPS:
            raise ValueError(f"claim {entry['id']}: unknown operator {c.get('op')!r}")
        conditions.append(Condition(str(c["statistic"]), c["op"], float(c["threshold"]),
                                    int(c.get("digits", 3))))
    if not conditions:
        raise ValueError(f"claim {entry['id']} has no conditions")
    return Claim(id=entry["id"], chapter=int(entry["chapter"]), source=str(entry["source"]),
                 cite=entry.get("cite"), claim=entry["claim"].strip(),
                 statement=" ".join(entry["statement"].split()), rule=entry["rule"],
                 conditions=tuple(conditions))


def load_claims(path: Path | str | None = None) -> dict[str, Claim]:
    """All claims of ``data/claims.yaml`` (or ``path``), keyed by id, in file order."""
    path = Path(path) if path is not None else project_root() / "data" / "claims.yaml"
    entries = yaml.safe_load(path.read_text())["claims"]
    claims = {}
    for entry in entries:
        claim = _parse_claim(entry)
        if claim.id in claims:
            raise ValueError(f"claim {claim.id} appears twice in {path}")
        claims[claim.id] = claim
    return claims


def claims_for_chapter(chapter: int, claims: dict[str, Claim] | None = None) -> list[Claim]:
    claims = claims if claims is not None else load_claims()
    return [c for c in claims.values() if c.chapter == chapter]


def _split(measured) -> tuple[float, float | None, float | None]:
    if isinstance(measured, (tuple, list)):
        if len(measured) != 3:
            raise ValueError("a statistic with uncertainty is (value, low, high)")
        value, low, high = (float(v) for v in measured)
        if not low <= high:
            raise ValueError(f"interval low {low} exceeds high {high}")
    else:
        value, low, high = float(measured), None, None
    if math.isnan(value):
        raise ValueError("a statistic is NaN: the experiment did not produce a number")
    return value, low, high


def seed_outcome(claim: Claim, stats: dict) -> str:
    """``pass``, ``fail`` or ``undecided`` for one seed's statistics."""
    missing = [c.statistic for c in claim.conditions if c.statistic not in stats]
    if missing:
        raise KeyError(f"claim {claim.id} needs statistic(s) {', '.join(missing)}")
    outcomes = []
    for c in claim.conditions:
        value, low, high = _split(stats[c.statistic])
        point = c.holds(round(value, c.digits))
        if low is not None and (c.holds(low) != point or c.holds(high) != point):
            outcomes.append("undecided")
        else:
            outcomes.append("pass" if point else "fail")
    if "fail" in outcomes:
        return "fail"
    return "undecided" if "undecided" in outcomes else "pass"


def verdict(claim: Claim, per_seed: list[dict]) -> str:
    """Apply the claim's rule to the statistics of every seed."""
    if not per_seed:
        raise ValueError(f"claim {claim.id}: no seeds evaluated")
    outcomes = {seed_outcome(claim, s) for s in per_seed}
    if outcomes == {"pass"}:
        return "SUPPORTED"
    if outcomes == {"fail"}:
        return "REFUTED"
    return "INCONCLUSIVE"


def _fmt(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` decimals, without a minus sign on zero."""
    text = f"{round(value, digits):.{digits}f}"
    return text.lstrip("-") if text.strip("-0.") == "" else text


def verdict_line(claim: Claim, per_seed: list[dict]) -> str:
    values = ", ".join(
        f"{c.statistic} = " + "/".join(_fmt(_split(s[c.statistic])[0], c.digits) for s in per_seed)
        for c in claim.conditions
    )
    return f"CLAIM {claim.id}: {verdict(claim, per_seed)} - {values} (rule: {claim.rule})"


def report(claim_id: str, per_seed: list[dict], claims: dict[str, Claim] | None = None) -> None:
    """Print the verdict line of ``claim_id`` for the per-seed statistics.

    Returns nothing, so that a chapter's verdict cell shows the printed line and only that.
    """
    claims = claims if claims is not None else load_claims()
    if claim_id not in claims:
        raise KeyError(f"unknown claim {claim_id!r}; known: {', '.join(claims)}")
    print(verdict_line(claims[claim_id], per_seed))


# --- the ledger -----------------------------------------------------------------------------


def parse_verdict_lines(text: str) -> dict[str, str]:
    """Verdicts found in ``text``: ``{claim id: full verdict line}``."""
    found = {}
    for raw in text.splitlines():
        m = LINE.match(raw.strip())
        if m:
            if m.group(1) in found:
                raise ValueError(f"claim {m.group(1)} has more than one verdict line")
            found[m.group(1)] = raw.strip()
    return found


def notebook_text_outputs(path: Path | str) -> str:
    """All stdout text printed by the code cells of an executed ``.ipynb``.

    A cell's stream outputs are concatenated as they were printed (the kernel may split one
    printed line across several messages); cells are separated by a newline.
    """
    nb = json.loads(Path(path).read_text())
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        text = ""
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                chunk = out.get("text", "")
                text += "".join(chunk) if isinstance(chunk, list) else chunk
        cells.append(text)
    return "\n".join(cells)


def verdicts_from_notebooks(paths) -> dict[str, str]:
    """Verdict lines printed by a set of executed notebooks."""
    found: dict[str, str] = {}
    for path in paths:
        for cid, line in parse_verdict_lines(notebook_text_outputs(path)).items():
            if cid in found:
                raise ValueError(f"claim {cid} has verdict lines in more than one notebook")
            found[cid] = line
    return found


def ledger(verdicts: dict[str, str], claims: dict[str, Claim] | None = None) -> pd.DataFrame:
    """One row per claim: id, claim, source, chapter, verdict ("not yet tested" if none)."""
    claims = claims if claims is not None else load_claims()
    unknown = set(verdicts) - set(claims)
    if unknown:
        raise ValueError(f"verdicts for unknown claims: {', '.join(sorted(unknown))}")
    rows = []
    for c in claims.values():
        m = LINE.match(verdicts[c.id]) if c.id in verdicts else None
        rows.append({"id": c.id, "claim": c.claim, "source": c.source, "chapter": c.chapter,
                     "verdict": m.group(2) if m else "not yet tested",
                     "measured": m.group(3) if m else ""})
    return pd.DataFrame(rows)


def executed_chapters(root: Path | str | None = None) -> tuple[list[Path], str]:
    """The executed chapter notebooks to read verdicts from, and where they came from.

    Inside a book build these are the notebooks the build has just executed
    (``_build/jupyter_execute/chapters``); outside one, the committed reference notebooks
    (``tests/references``), which the test suite keeps equal to a fresh execution.
    """
    root = Path(root) if root is not None else project_root()
    built = sorted((root / "_build" / "jupyter_execute" / "chapters").glob("[0-9]*.ipynb"))
    if built:
        return built, "this build's executed chapters"
    references = sorted((root / "tests" / "references").glob("[0-9]*.ipynb"))
    return references, "the committed reference notebooks"
