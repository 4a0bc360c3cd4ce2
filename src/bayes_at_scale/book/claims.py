"""The pre-registered claims: read them, apply their rules, print verdict lines, write
records.

A claim's rule is a list of conditions ``statistic op threshold``
(``data/claims.yaml``).  A chapter measures the statistics once per seed and calls
:func:`report`, which prints exactly one line of the form fixed in the project's claims
file::

    CLAIM C1: SUPPORTED - mean_tv_frequent = 0.003/0.004, ... (rule: ...)

(values per seed, separated by ``/``).  A statistic may come with an uncertainty
interval ``(value, low, high)``; if the interval straddles the threshold the seed is
undecided. SUPPORTED = every seed passes, REFUTED = every seed fails, INCONCLUSIVE
otherwise.

When the environment variable ``ESSAY_RECORDS`` names a folder (relative paths are taken
from the book's root), :func:`report` also writes the verdict as a :class:`Record`, the
JSON file ``<folder>/<claim id>.json``: the claim, its round and chapter, the section
that printed it (``anchor``, the MyST label ``claim-c<n>`` above that section's
heading), the rule, the verdict, the printed line, every seed's statistics with their
intervals, and the settings of the run. The ledger (:mod:`bayes_at_scale.book.ledger`)
reads these records, never the printed lines.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..core.settings import from_env, project_root

OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
VERDICTS = ("SUPPORTED", "REFUTED", "INCONCLUSIVE")
NOT_TESTED = "not yet tested"
LINE = re.compile(
    r"^CLAIM (C\d+): (SUPPORTED|REFUTED|INCONCLUSIVE) - (.*?)(?: \[\d+ seeds\])? "
    r"\(rule: (.*)\)$"
)
#: The environment variable naming the folder that :func:`report` writes records to.
RECORDS_ENV = "ESSAY_RECORDS"
#: The version of a record's layout; a record of another version is not read.
RECORD_FORMAT = 1
_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: Round 2 compares unrounded values; a value this close to its threshold counts as on
#: it.
ON_THRESHOLD = 1e-9
SCOPES = ("seed", "pooled")
#: Why a verdict may say little about its claim: a claim's ``flag`` names one of these
#: for a verdict, and the book links the flagged reading to the round-2 claim that
#: refines it.
FLAGS = ("premise not met", "rule could not be met")
#: The statistic a claim with a premise reports: 1 where the premise holds, 0 where it
#: fails.
PREMISE = "premise_met"


@dataclass(frozen=True)
class Condition:
    statistic: str
    op: str
    threshold: float
    digits: int
    # "seed": measured on every seed; "pooled": once, over all seeds
    scope: str = "seed"

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def holds_unrounded(self, value: float) -> bool:
        """Round 2's comparison: the unrounded value, one within :data:`ON_THRESHOLD` of
        the threshold counting as on it."""
        if abs(value - self.threshold) <= ON_THRESHOLD:
            value = self.threshold
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
    round: int = 1
    # the verdict the closing chapter's prose was written against
    discussed_as: str | None = None
    refines: str | None = None  # the round-1 claim a round-2 claim refines
    # found after the run (say, an unmet premise); the ledger prints it beside the
    # verdict, which stays as first run
    caveat: str | None = None
    # round 2: what the refinement fixes, or what it adds
    why: str | None = None
    tested_as: str | None = None  # exactly what was tested, in a reader's words
    # verdict -> plain-language reading
    reading: dict[str, str] = field(default_factory=dict)
    # verdict -> the same, as a short clause (a chapter's "In brief" box)
    brief: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)  # verdict -> one of FLAGS

    def holds(self, condition: Condition, value: float) -> bool:
        """Does ``value`` meet ``condition``? Round 1 compares the value as printed
        (rounded); round 2 the unrounded value."""
        if self.round >= 2:
            return condition.holds_unrounded(value)
        return condition.holds(round(value, condition.digits))

    def conditions_in(self, scope: str) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.scope == scope)

    @property
    def anchor(self) -> str:
        """The MyST label above the section that prints this claim's verdict:
        ``claim-c1``."""
        return f"claim-{self.id.lower()}"

    def condition(self, statistic: str) -> Condition:
        """The condition of the rule on ``statistic``."""
        for c in self.conditions:
            if c.statistic == statistic:
                return c
        raise KeyError(f"claim {self.id} has no condition on {statistic!r}")


def _parse_claim(entry: dict) -> Claim:
    required = (
        "id",
        "chapter",
        "round",
        "source",
        "claim",
        "statement",
        "rule",
        "conditions",
    )
    missing = [k for k in required if k not in entry]
    if missing:
        raise ValueError(f"claim {entry.get('id', '?')} lacks {', '.join(missing)}")
    if not re.fullmatch(r"C\d+", str(entry["id"])):
        raise ValueError(f"claim id {entry['id']!r} is not of the form C<n>")
    if (
        isinstance(entry["round"], bool)
        or not isinstance(entry["round"], int)
        or entry["round"] < 1
    ):
        raise ValueError(
            f"claim {entry['id']}: round must be a positive integer, "
            f"got {entry['round']!r}"
        )
    discussed = entry.get("discussed_as")
    if discussed is not None and discussed not in VERDICTS:
        raise ValueError(
            f"claim {entry['id']}: discussed_as must be one of "
            f"{', '.join(VERDICTS)}, got {discussed!r}"
        )
    refines = entry.get("refines")
    if refines is not None and not re.fullmatch(r"C\d+", str(refines)):
        raise ValueError(
            f"claim {entry['id']}: refines must name a claim C<n>, got {refines!r}"
        )
    for key in ("caveat", "why"):
        text = entry.get(key)
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise ValueError(
                f"claim {entry['id']}: {key} must be a non-empty string, got {text!r}"
            )
    caveat, why = entry.get("caveat"), entry.get("why")
    tested_as, reading, brief, flags = _reading(entry)
    conditions = []
    for c in entry["conditions"]:
        if c.get("op") not in OPS:
            raise ValueError(f"claim {entry['id']}: unknown operator {c.get('op')!r}")
        scope = c.get("scope", "seed")
        if scope not in SCOPES:
            raise ValueError(
                f"claim {entry['id']}: unknown scope {scope!r}, expected one of "
                f"{', '.join(SCOPES)}"
            )
        if scope == "pooled" and entry["round"] < 2:
            raise ValueError(
                f"claim {entry['id']}: pooled conditions are a round-2 rule"
            )
        conditions.append(
            Condition(
                str(c["statistic"]),
                c["op"],
                float(c["threshold"]),
                int(c.get("digits", 3)),
                scope,
            )
        )
    if not conditions:
        raise ValueError(f"claim {entry['id']} has no conditions")
    return Claim(
        id=entry["id"],
        chapter=int(entry["chapter"]),
        source=str(entry["source"]),
        cite=entry.get("cite"),
        claim=entry["claim"].strip(),
        statement=" ".join(entry["statement"].split()),
        rule=entry["rule"],
        conditions=tuple(conditions),
        round=entry["round"],
        discussed_as=discussed,
        refines=refines,
        caveat=" ".join(caveat.split()) if caveat else None,
        why=" ".join(why.split()) if why else None,
        tested_as=tested_as,
        reading=reading,
        brief=brief,
        flags=flags,
    )


def _reading(
    entry: dict,
) -> tuple[str | None, dict[str, str], dict[str, str], dict[str, str]]:
    """A claim entry's ``tested_as``, ``reading`` and ``brief`` (a text per verdict) and
    ``flag`` (a verdict's :data:`FLAGS` entry), checked."""
    cid = entry["id"]
    tested_as = entry.get("tested_as")
    if tested_as is not None and (
        not isinstance(tested_as, str) or not tested_as.strip()
    ):
        raise ValueError(
            f"claim {cid}: tested_as must be a non-empty string, got {tested_as!r}"
        )
    found = {}
    for key, allowed in (("reading", None), ("brief", None), ("flag", FLAGS)):
        given = entry.get(key) or {}
        if not isinstance(given, dict):
            raise ValueError(
                f"claim {cid}: {key} must map verdicts to texts, got {given!r}"
            )
        unknown = [v for v in given if v not in VERDICTS]
        if unknown:
            raise ValueError(
                f"claim {cid}: {key} names unknown verdict(s) {unknown}; "
                f"expected {', '.join(VERDICTS)}"
            )
        for verdict_, text in given.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(
                    f"claim {cid}: {key} of {verdict_} must be a non-empty "
                    f"string, got {text!r}"
                )
            if allowed and text not in allowed:
                raise ValueError(
                    f"claim {cid}: flag of {verdict_} must be one of "
                    f"{', '.join(map(repr, allowed))}, got {text!r}"
                )
        found[key] = {v: " ".join(t.split()) for v, t in given.items()}
    return (
        (" ".join(tested_as.split()) if tested_as else None),
        found["reading"],
        found["brief"],
        found["flag"],
    )


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


def load_questions(path: Path | str | None = None) -> dict[int, str]:
    """The question each chapter asks (``chapters:`` of ``data/claims.yaml``), by
    number."""
    path = Path(path) if path is not None else project_root() / "data" / "claims.yaml"
    entries = yaml.safe_load(path.read_text()).get("chapters") or []
    questions = {}
    for entry in entries:
        number, question = entry.get("number"), entry.get("question")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(
                f"{path}: a chapter number must be a positive integer, got {number!r}"
            )
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"{path}: chapter {number} has no question")
        if number in questions:
            raise ValueError(f"{path}: chapter {number} appears twice")
        questions[number] = " ".join(question.split())
    return questions


def load_answer(path: Path | str | None = None) -> str:
    """The book's answer in brief (``answer:`` of ``data/claims.yaml``), written against
    the verdicts registered as ``discussed_as``."""
    path = Path(path) if path is not None else project_root() / "data" / "claims.yaml"
    answer = yaml.safe_load(path.read_text()).get("answer")
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"{path} has no answer in brief (a top-level 'answer:' text)")
    return " ".join(answer.split())


def claims_for_chapter(
    chapter: int, claims: dict[str, Claim] | None = None
) -> list[Claim]:
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


def _outcome(claim: Claim, conditions, stats: dict, what: str) -> str:
    """``pass``, ``fail`` or ``undecided`` for ``stats`` measured on ``conditions``: a
    failed premise (``premise_met = 0``) or an interval straddling a threshold is
    undecided."""
    missing = [c.statistic for c in conditions if c.statistic not in stats]
    if missing:
        raise KeyError(
            f"claim {claim.id} needs statistic(s) {', '.join(missing)} ({what})"
        )
    if PREMISE in stats and not float(stats[PREMISE]):
        return "undecided"
    outcomes = []
    for c in conditions:
        value, low, high = _split(stats[c.statistic])
        point = claim.holds(c, value)
        if low is not None and (
            claim.holds(c, low) != point or claim.holds(c, high) != point
        ):
            outcomes.append("undecided")
        else:
            outcomes.append("pass" if point else "fail")
    if claim.round >= 2 and "undecided" in outcomes:
        return "undecided"  # round 2: a seed fails only where no interval straddles
    if "fail" in outcomes:
        return "fail"
    return "undecided" if "undecided" in outcomes else "pass"


def seed_outcome(claim: Claim, stats: dict) -> str:
    """``pass``, ``fail`` or ``undecided`` for one seed's statistics (its per-seed
    conditions; ``pass`` when the rule has none)."""
    return _outcome(claim, claim.conditions_in("seed"), stats, "per-seed")


def pooled_outcome(claim: Claim, pooled: dict | None) -> str | None:
    """The outcome of the rule's pooled conditions (None when it has none)."""
    conditions = claim.conditions_in("pooled")
    if not conditions:
        if pooled:
            raise ValueError(
                f"claim {claim.id} has no pooled conditions, yet pooled "
                f"statistics were given: {', '.join(pooled)}"
            )
        return None
    return _outcome(claim, conditions, dict(pooled or {}), "pooled")


def _both(seed: str, joint: str) -> str:
    """The outcome of a rule on one seed from its per-seed and its pooled outcome."""
    if "undecided" in (seed, joint):
        return "undecided"
    return "pass" if seed == joint == "pass" else "fail"


def verdict(claim: Claim, per_seed: list[dict], pooled: dict | None = None) -> str:
    """Apply the claim's rule to the statistics of every seed (and to the pooled
    ones)."""
    if not per_seed:
        raise ValueError(f"claim {claim.id}: no seeds evaluated")
    # the rule is the conjunction of its conditions: on each seed, it holds where the
    # seed's conditions and the pooled ones hold, fails where either fails (and nothing
    # is undecided), and is undecided otherwise; a rule of pooled conditions only is
    # decided by them alone
    seeds = (
        [seed_outcome(claim, s) for s in per_seed]
        if claim.conditions_in("seed")
        else ["pass"]
    )
    joint = pooled_outcome(claim, pooled) or "pass"
    outcomes = {_both(outcome, joint) for outcome in seeds}
    if outcomes == {"pass"}:
        return "SUPPORTED"
    if outcomes == {"fail"}:
        return "REFUTED"
    return "INCONCLUSIVE"


def format_value(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` decimals, without a minus sign on zero."""
    text = f"{round(value, digits):.{digits}f}"
    return text.lstrip("-") if text.strip("-0.") == "" else text


def printed_values(
    claim: Claim, per_seed: list[dict], pooled: dict | None = None
) -> dict[str, tuple[str, ...]]:
    """Each statistic of the rule as the verdict line prints it: one text per seed, or
    for a pooled statistic one text ``value [low, high]``."""
    out = {}
    for c in claim.conditions:
        if c.scope == "pooled":
            value, low, high = _split((pooled or {})[c.statistic])
            text = format_value(value, c.digits) + (
                ""
                if low is None
                else f" [{format_value(low, c.digits)}, {format_value(high, c.digits)}]"
            )
            out[c.statistic] = (text,)
        else:
            out[c.statistic] = tuple(
                format_value(_split(s[c.statistic])[0], c.digits) for s in per_seed
            )
    return out


def verdict_line(claim: Claim, per_seed: list[dict], pooled: dict | None = None) -> str:
    values = ", ".join(
        f"{name} = " + "/".join(texts)
        for name, texts in printed_values(claim, per_seed, pooled).items()
    )
    seeds = f" [{len(per_seed)} seeds]" if claim.round >= 2 else ""
    return (
        f"CLAIM {claim.id}: {verdict(claim, per_seed, pooled)} - {values}{seeds} "
        f"(rule: {claim.rule})"
    )


def parse_verdict_lines(text: str) -> dict[str, str]:
    """Verdict lines found in printed ``text``: ``{claim id: full verdict line}`` (for
    tests of what the chapters print; the ledger reads records, not printed text)."""
    found = {}
    for raw in text.splitlines():
        m = LINE.match(raw.strip())
        if m:
            if m.group(1) in found:
                raise ValueError(f"claim {m.group(1)} has more than one verdict line")
            found[m.group(1)] = raw.strip()
    return found


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One claim's verdict as a chapter reported it, as written to ``<claim id>.json``.

    ``statistics`` names the statistics of the rule, in the rule's order; ``seeds``
    holds each seed's values of them, as ``{"value": v}`` or, with an uncertainty
    interval, ``{"value": v, "low": l, "high": h}``; ``printed`` the same statistics as
    the verdict line prints them (one text per seed, in the rule's order); ``outcomes``
    each seed's ``pass``, ``fail`` or ``undecided``; ``extra`` named values the chapter
    recorded beside the verdict for the closing chapter's prose; ``document`` the
    chapter's file stem (None if no file under ``chapters/`` has the claim's chapter
    number) and ``anchor`` the label of the section that printed the line.
    """

    claim: str
    round: int
    chapter: int
    document: str | None
    anchor: str
    rule: str
    verdict: str
    line: str
    statistics: tuple[str, ...]
    seeds: tuple[dict, ...]
    printed: dict[str, tuple[str, ...]]
    outcomes: tuple[str, ...]
    extra: dict[str, float] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    # pooled statistic -> {"value", "low", "high"}
    pooled: dict = field(default_factory=dict)
    refines: str | None = None

    @property
    def measured(self) -> str:
        """The measured part of the verdict line: ``a = 0.002/0.001, b =
        -0.67/-0.66``."""
        return ", ".join(
            f"{name} = " + "/".join(self.printed[name]) for name in self.statistics
        )

    def to_json(self) -> str:
        """The record as JSON: sorted keys, no time stamps, the same text for the same
        run."""
        data = {"format": RECORD_FORMAT, **asdict(self)}
        return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            raise ValueError(f"not a verdict record of format {RECORD_FORMAT}")
        names = [f for f in cls.__dataclass_fields__]
        data.setdefault("pooled", {})
        data.setdefault("refines", None)
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"verdict record lacks {', '.join(missing)}")
        if data["verdict"] not in VERDICTS:
            raise ValueError(
                f"verdict record of {data['claim']}: unknown verdict "
                f"{data['verdict']!r}"
            )
        data["statistics"] = tuple(data["statistics"])
        if set(data["printed"]) != set(data["statistics"]):
            raise ValueError(
                f"verdict record of {data['claim']}: its printed statistics are not "
                "its rule's"
            )
        # JSON keeps the keys sorted: the rule's order comes back from ``statistics``
        data["printed"] = {s: tuple(data["printed"][s]) for s in data["statistics"]}
        data["seeds"] = tuple(data["seeds"])
        data["outcomes"] = tuple(data["outcomes"])
        return cls(**{n: data[n] for n in names})


def chapter_document(chapter: int, root: Path | str | None = None) -> str | None:
    """The stem of the chapter file numbered ``chapter`` under ``<root>/chapters`` (None
    if there is none)."""
    root = Path(root) if root is not None else project_root()
    found = [
        p.stem
        for p in sorted((root / "chapters").glob("[0-9]*_*.md"))
        if int(p.stem.split("_", 1)[0]) == chapter
    ]
    if len(found) > 1:
        raise ValueError(
            f"more than one chapter is numbered {chapter}: {', '.join(found)}"
        )
    return found[0] if found else None


def _extra_values(claim: Claim, extra: Mapping | None) -> dict[str, float]:
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise TypeError(
            f"claim {claim.id}: extra must be a mapping of names to numbers"
        )
    values = {}
    for name, value in extra.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(
                f"claim {claim.id}: extra value name {name!r} is not a "
                "lower-case identifier"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            and not hasattr(value, "__float__")
        ):
            raise TypeError(
                f"claim {claim.id}: extra value {name} must be a number, got {value!r}"
            )
        if not math.isfinite(float(value)):
            raise ValueError(
                f"claim {claim.id}: extra value {name} is not finite: {value!r}"
            )
        values[name] = float(value)
    return dict(sorted(values.items()))


def _stored(measured) -> dict:
    value, low, high = _split(measured)
    return (
        {"value": value} if low is None else {"value": value, "low": low, "high": high}
    )


def make_record(
    claim: Claim,
    per_seed: list[dict],
    extra: Mapping | None = None,
    root: Path | str | None = None,
    pooled: dict | None = None,
) -> Record:
    """The record of ``claim``'s verdict on ``per_seed`` (the document looked up under
    ``root``, by default the book's root; the settings read from the environment)."""
    seeds = [
        {c.statistic: _stored(stats[c.statistic]) for c in claim.conditions_in("seed")}
        for stats in per_seed
    ]
    joint = {
        c.statistic: _stored((pooled or {})[c.statistic])
        for c in claim.conditions_in("pooled")
    }
    return Record(
        claim=claim.id,
        round=claim.round,
        chapter=claim.chapter,
        document=chapter_document(claim.chapter, root),
        anchor=claim.anchor,
        rule=claim.rule,
        verdict=verdict(claim, per_seed, pooled),
        line=verdict_line(claim, per_seed, pooled),
        statistics=tuple(c.statistic for c in claim.conditions),
        seeds=tuple(seeds),
        printed=printed_values(claim, per_seed, pooled),
        outcomes=tuple(seed_outcome(claim, s) for s in per_seed),
        extra=_extra_values(claim, extra),
        settings=asdict(from_env()),
        pooled=joint,
        refines=claim.refines,
    )


def records_folder(root: Path | str | None = None) -> Path | None:
    """The folder named by ``ESSAY_RECORDS`` (a relative path is taken from the book's
    root, as a kernel runs in its chapter's folder), or None when it is unset or
    empty."""
    name = os.environ.get(RECORDS_ENV, "")
    if not name:
        return None
    folder = Path(name)
    if not folder.is_absolute():
        folder = (Path(root) if root is not None else project_root()) / folder
    return folder


def write_record(record: Record, folder: Path | str) -> Path:
    """Write ``record`` to ``<folder>/<claim id>.json`` (replacing one there, never
    leaving a half-written file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record.claim}.json"
    partial = folder / f".{record.claim}.json.partial"
    partial.write_text(record.to_json(), encoding="utf8")
    os.replace(partial, path)
    return path


#: The records :func:`report` made in this process, by claim id (see :func:`reported`).
_REPORTED: dict[str, Record] = {}


def reported() -> dict[str, Record]:
    """The records of the verdicts :func:`report` printed in this process (a chapter's
    kernel), recorded to a folder or not, keyed by claim id in claim order: what a
    chapter's "Verdict" section and "In brief" box are built from."""
    return {cid: _REPORTED[cid] for cid in sorted(_REPORTED, key=lambda c: int(c[1:]))}


def report(
    claim_id: str,
    per_seed: list[dict],
    claims: dict[str, Claim] | None = None,
    extra: Mapping | None = None,
    pooled: Mapping | None = None,
) -> None:
    """Print the verdict line of ``claim_id`` for the per-seed statistics, and record
    it.

    With ``ESSAY_RECORDS`` set, the verdict is also written as a :class:`Record`,
    carrying ``extra`` (named numbers that the closing chapter's prose quotes beside the
    verdict; they take no part in the rule). Returns nothing, so that a chapter's
    verdict cell shows the printed line and only that.
    """
    claims = claims if claims is not None else load_claims()
    if claim_id not in claims:
        raise KeyError(f"unknown claim {claim_id!r}; known: {', '.join(claims)}")
    claim = claims[claim_id]
    folder = records_folder()
    pooled = dict(pooled) if pooled is not None else None
    record = make_record(claim, per_seed, extra, pooled=pooled)
    print(record.line)
    _REPORTED[claim.id] = record
    if folder is not None:
        write_record(record, folder)
