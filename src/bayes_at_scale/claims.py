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
from collections.abc import Sequence
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

    def condition(self, statistic: str) -> Condition:
        """The condition of the rule on ``statistic``."""
        for c in self.conditions:
            if c.statistic == statistic:
                return c
        raise KeyError(f"claim {self.id} has no condition on {statistic!r}")


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
    nb = read_executed(path)
    return "\n".join(_cell_stdout(cell) for cell in nb.get("cells", [])
                     if cell.get("cell_type") == "code")


def read_executed(path: Path | str) -> dict:
    """An executed notebook, as JSON - with its outputs, even where the book build cached them.

    myst-nb writes every page it executes to ``_build/jupyter_execute``, but a page whose
    execution it takes from the jupyter-cache (``execute_notebooks: cache``) is written there
    *without* outputs; the outputs are in the cache, ``_build/.jupyter_cache``. For a notebook
    under a ``jupyter_execute`` folder whose code cells have no output at all, the outputs of the
    matching cached execution are merged back in. Any other notebook is read as it is.
    """
    path = Path(path)
    nb = json.loads(path.read_text())
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    built = next((p for p in path.parents if p.name == "jupyter_execute"), None)
    if not code or any(c.get("outputs") for c in code) or built is None:
        return nb
    cache = built.parent / ".jupyter_cache"
    if not cache.is_dir():
        return nb
    try:
        import nbformat
        from jupyter_cache import get_cache
    except ImportError:  # pragma: no cover - the book's environment has both
        return nb
    try:
        _, merged = get_cache(cache).merge_match_into_notebook(nbformat.from_dict(nb))
    except KeyError:  # not in the cache: the notebook really has no outputs
        return nb
    return json.loads(nbformat.writes(merged))


def _cell_stdout(cell: dict) -> str:
    """The stdout text one executed code cell printed, its stream messages joined."""
    text = ""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            chunk = out.get("text", "")
            text += "".join(chunk) if isinstance(chunk, list) else chunk
    return text


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


BUILD_COMMANDS = ("jupyter-book", "jb", "sphinx-build")
BUILD_MODULES = ("jupyter_book", "sphinx")


def inside_book_build() -> bool:
    """True when this process runs under a book build.

    A book build executes each notebook in a kernel that is a descendant of the
    ``jupyter-book`` (or ``sphinx-build``) process, so one of its ancestors runs that command.
    A kernel started by ``jupytext --execute`` or by nbval is not, and neither is a stale
    ``_build`` folder left by an earlier build.
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with ipykernel
        return False
    try:
        for process in psutil.Process().parents():
            args = process.cmdline()
            if any(Path(a).name in BUILD_COMMANDS for a in args[:2]):
                return True
            for flag, module in zip(args, args[1:]):
                if flag == "-m" and module.split(".")[0] in BUILD_MODULES:
                    return True
    except psutil.Error:
        return False
    return False


def executed_chapters(root: Path | str | None = None,
                      in_build: bool | None = None) -> tuple[list[Path], str]:
    """The executed chapter notebooks to read verdicts from, and where they came from.

    Inside a book build (``in_build``; by default :func:`inside_book_build`) these are the
    notebooks the build has just executed (``_build/jupyter_execute/chapters``); outside one,
    the committed reference notebooks (``tests/references``), which the test suite keeps equal
    to a fresh execution.
    """
    root = Path(root) if root is not None else project_root()
    in_build = inside_book_build() if in_build is None else in_build
    built = sorted((root / "_build" / "jupyter_execute" / "chapters").glob("[0-9]*.ipynb"))
    if in_build and built:
        return built, "this build's executed chapters"
    references = sorted((root / "tests" / "references").glob("[0-9]*.ipynb"))
    return references, "the committed reference notebooks"


# --- the evidence: where each verdict was printed ----------------------------------------

#: Heading levels that get an anchor; equal to ``myst_heading_anchors`` in ``_config.yml``.
ANCHOR_LEVELS = 3
#: Sources that ``data/claims.yaml`` names in words, and the reference each stands for.
SOURCE_KEYS = {"blog": "blog2024large", "position paper": "papamarkou2024position",
               "GPT-4 report": "openai2023gpt4"}
NOT_TESTED = "not yet tested"

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}|:{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_MEASURED = re.compile(r"([a-z][a-z0-9_]*) = ([^,]+)")


@dataclass(frozen=True)
class Evidence:
    """Where a verdict line was printed: the notebook, and the section above the cell."""

    line: str
    document: str  # the notebook's stem, which is its chapter's
    title: str  # the notebook's first heading
    section: str  # the last anchored heading above the cell that printed the line
    anchor: str  # that heading's anchor ("" if the cell precedes every heading)


def heading_slug(title: str) -> str:
    """The anchor MyST gives a heading under ``myst_heading_anchors`` (GitHub's scheme).

    As in MyST only the heading's text and inline code count: roles and inline maths are
    dropped and a link keeps its text; the rest is lower-cased, spaces become hyphens and
    punctuation goes.
    """
    text = re.sub(r"\{[^}\s]+\}`[^`]*`", "", title.strip())  # roles
    text = re.sub(r"\$[^$]+\$", "", text)  # inline maths
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    return re.sub(r"[^\w\u4e00-\u9fff\- ]", "", text.lower().replace(" ", "-"))


def markdown_headings(markdown: str) -> list[tuple[int, str]]:
    """The ATX headings of a markdown text, outside fenced blocks: ``(level, title)``."""
    found, fence = [], ""
    for line in markdown.splitlines():
        m = _FENCE.match(line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip()[len(m.group(1)):].strip():
                fence = ""
            continue
        if m:
            fence = m.group(1)
            continue
        h = _HEADING.match(line)
        if h:
            found.append((len(h.group(1)), h.group(2)))
    return found


def _unique_slug(slug: str, taken: set[str]) -> str:
    """MyST's rule for a repeated anchor: ``slug``, then ``slug-1``, ``slug-2``..."""
    unique, i = slug, 1
    while unique in taken:
        unique, i = f"{slug}-{i}", i + 1
    taken.add(unique)
    return unique


def verdict_evidence(paths, anchor_levels: int = ANCHOR_LEVELS) -> dict[str, Evidence]:
    """For every verdict line printed by a set of executed notebooks, where it was printed."""
    found: dict[str, Evidence] = {}
    for path in paths:
        nb = read_executed(path)
        taken: set[str] = set()
        title = section = anchor = ""
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "markdown":
                source = cell.get("source", "")
                source = "".join(source) if isinstance(source, list) else source
                for level, text in markdown_headings(source):
                    if level <= anchor_levels:
                        title = title or text
                        section, anchor = text, _unique_slug(heading_slug(text), taken)
            elif cell.get("cell_type") == "code":
                for cid, line in parse_verdict_lines(_cell_stdout(cell)).items():
                    if cid in found:
                        raise ValueError(f"claim {cid} has more than one verdict line "
                                         f"({found[cid].document}, {Path(path).stem})")
                    found[cid] = Evidence(line, Path(path).stem, title, section, anchor)
    return found


def parse_measured(measured: str) -> dict[str, list[str]]:
    """The statistics of a verdict line's measured part, each as its printed per-seed values.

    ``"a = 0.002/0.001, b = -0.67/-0.66"`` gives ``{"a": ["0.002", "0.001"], "b": [...]}``.
    """
    return {name: values.strip().split("/") for name, values in _MEASURED.findall(measured)}


def evidence_ledger(paths, claims: dict[str, Claim] | None = None) -> pd.DataFrame:
    """:func:`ledger` with its evidence: one row per claim, read from executed notebooks.

    Columns: ``id``, ``claim``, ``source``, ``cite``, ``chapter``, ``rule``, ``verdict``,
    ``measured``, and where the verdict line was printed - ``document`` (the notebook's stem),
    ``title`` (its first heading), ``section`` and ``anchor`` (the heading above the line and
    its anchor). A claim without a verdict line is "not yet tested" and has no evidence.
    """
    claims = claims if claims is not None else load_claims()
    evidence = verdict_evidence(paths)
    table = ledger({cid: e.line for cid, e in evidence.items()}, claims)
    table.insert(3, "cite", [claims[cid].cite or "" for cid in table["id"]])
    table.insert(5, "rule", [claims[cid].rule for cid in table["id"]])
    for column in ("document", "title", "section", "anchor"):
        table[column] = [getattr(evidence[cid], column) if cid in evidence else ""
                         for cid in table["id"]]
    return table


_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen")


def in_words(n: int) -> str:
    """A small count as a word, for prose ("fourteen"); larger ones as digits."""
    return _WORDS[n] if 0 <= n < len(_WORDS) else str(n)


def prose_list(values: Sequence[str]) -> str:
    """Items as prose: "a", "a and b", "a, b and c" (per-seed values, say)."""
    if not values:
        raise ValueError("nothing to list")
    values = list(values)
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _escape(text: str) -> str:
    """``text`` with every character that means something in MyST markdown escaped."""
    return re.sub(r"([\\`*_{}\[\]<>|$#])", r"\\\1", text)


def source_markdown(source: str, cite: str | None) -> str:
    """A claim's source in words, with MyST citations of the references it names.

    The parts of ``source`` (separated by ``;``) that are a kind of source - the blog, the
    position paper - keep their words and gain a parenthetical citation; the part that names
    the claim's ``cite`` by its first author becomes a textual citation of it; ``cite``, if no
    part names it, is cited at the end.
    """
    parts, cited = [], set()
    author = re.match(r"[a-z]+", cite).group(0) if cite else None
    for part in (p.strip() for p in source.split(";")):
        if part in SOURCE_KEYS:
            parts.append(f"{_escape(part)} {{cite:p}}`{SOURCE_KEYS[part]}`")
            cited.add(SOURCE_KEYS[part])
        elif cite and cite not in cited and author in part.lower():
            parts.append(f"{{cite:t}}`{cite}`")
            cited.add(cite)
        else:
            parts.append(_escape(part))
    text = "; ".join(parts)
    if cite and cite not in cited:
        text += f" {{cite:p}}`{cite}`"
    return text


LEDGER_HEADER = ("Claim", "Verdict", "Source", "Rule", "Measured", "Evidence")


def ledger_markdown(table: pd.DataFrame, base: str = "") -> str:
    """The evidence ledger as a MyST markdown table, one row per claim.

    The evidence links to the section of the chapter that printed the verdict line, as
    ``{base}{document}.md#{anchor}``: ``base`` is the path from the page that shows the table to
    the chapters (``""`` from a chapter, ``"chapters/"`` from the front page). The anchors need
    ``myst_heading_anchors`` >= :data:`ANCHOR_LEVELS`, and a strict (``-W``) build fails on a
    link that does not resolve. Render the text with ``render_markdown_format: myst``.
    """
    lines = ["| " + " | ".join(LEDGER_HEADER) + " |", "|" + " --- |" * len(LEDGER_HEADER)]
    for row in table.itertuples(index=False):
        measured = parse_measured(row.measured)
        if row.document:
            number = re.match(r"\d+", row.document)
            where = f"ch. {int(number.group(0))}" if number else row.title
            if row.section not in ("", row.title):
                where += f", \N{SECTION SIGN} {row.section}"
            target = f"{base}{row.document}.md" + (f"#{row.anchor}" if row.anchor else "")
            evidence = f"[{_escape(where)}]({target})"
        else:
            evidence = f"chapter {row.chapter}"
        cells = [
            f"**{row.id}** {_escape(row.claim)}",
            row.verdict if row.verdict in VERDICTS else f"*{row.verdict}*",
            source_markdown(row.source, row.cite or None),
            _escape(row.rule),
            "; ".join(f"`{k}` = {'/'.join(v)}" for k, v in measured.items()) or "-",
            evidence,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def glued_values(path: Path | str) -> dict[str, str]:
    """The plain text of every value an executed notebook glued with myst-nb, by name.

    A glued number's text is its repr; a NumPy scalar's wrapper (``np.float64(0.5)``) and a
    string's quotes are removed, so ``float()`` reads a glued number back.
    """
    found = {}
    for cell in read_executed(path).get("cells", []):
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook")
            if not record:
                continue
            text = out.get("data", {}).get(record["mime_prefix"] + "text/plain")
            if text is None:
                continue
            text = "".join(text) if isinstance(text, list) else text
            text = re.sub(r"^np\.\w+\((.*)\)$", r"\1", text.strip())
            found[record["name"]] = re.sub(r"^(['\"])(.*)\1$", r"\2", text)
    return found
