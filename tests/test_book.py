"""Static checks of the book's apparatus: table of contents, figures, citations, glossary terms,
citation metadata, API reference and cross-references.

None of these executes a chapter; each catches in a second what would otherwise fail a
several-minute book build (or, for the citation metadata, not fail anything at all).
"""

from __future__ import annotations

import datetime
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import bayes_at_scale

ROOT = Path(__file__).resolve().parents[1]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))

CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
TERM = re.compile(r"\{term\}`([^`]+)`")
FENCE = re.compile(r"^(`{3,}|:{3,})\{([\w:-]+)\}[ \t]*(.*?)\n(.*?)^\1[ \t]*$", re.S | re.M)
MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
BIB_KEY = re.compile(r"^@\w+\{\s*([^,\s]+)\s*,", re.M)


def toc_files(node=TOC) -> list[str]:
    """Every ``root`` and ``file`` entry of the table of contents, in order."""
    found = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                found.append(node[key])
        for value in node.values():
            if isinstance(value, (dict, list)):
                found += toc_files(value)
    elif isinstance(node, list):
        for item in node:
            found += toc_files(item)
    return found


def source_of(entry: str) -> Path | None:
    for suffix in (".md", ".ipynb"):
        if (ROOT / f"{entry}{suffix}").is_file():
            return ROOT / f"{entry}{suffix}"
    return None


def book_pages() -> list[Path]:
    """The toc's pages, plus every chapter on disk (a chapter may not be in the toc yet)."""
    pages = [p for p in (source_of(e) for e in toc_files()) if p is not None and p.suffix == ".md"]
    return sorted(set(pages) | set(CHAPTERS))


def prose(text: str) -> str:
    """``text`` without its code cells: roles in code are not roles."""
    return re.sub(r"^```\{code-cell\}.*?^```[ \t]*$", "", text, flags=re.S | re.M)


def glue_figures(text: str) -> list[tuple[str, str]]:
    """(glued name, body) of every ``{glue:figure}`` directive."""
    return [(m.group(3).strip(), m.group(4)) for m in FENCE.finditer(text)
            if m.group(2) == "glue:figure"]


def directive_options(body: str) -> dict[str, str]:
    return dict(re.findall(r"^:([\w-]+):[ \t]*(.*)$", body, flags=re.M))


def glossary_terms() -> dict[str, str]:
    """Term (lower-cased, as Sphinx resolves it) -> definition, from glossary.md."""
    text = (ROOT / "glossary.md").read_text()
    blocks = [m.group(4) for m in FENCE.finditer(text) if m.group(2) == "glossary"]
    assert len(blocks) == 1, "glossary.md must hold exactly one {glossary} directive"
    terms, current = {}, None
    for line in blocks[0].splitlines():
        if not line.strip() or re.match(r"^:[\w-]+:", line):
            continue
        if not line[0].isspace():
            current = line.strip().lower()
            assert current not in terms, f"glossary term defined twice: {line.strip()!r}"
            terms[current] = ""
        else:
            assert current is not None, f"a definition line before any term: {line!r}"
            terms[current] += line.strip() + " "
    return terms


def term_target(role_text: str) -> str:
    """The glossary entry a ``{term}`` role points to: ``text <target>`` or ``target``."""
    explicit = re.match(r"^(.*?)\s*<([^<>]+)>$", role_text, flags=re.S)
    target = explicit.group(2) if explicit else role_text
    return " ".join(target.split()).lower()


# --- table of contents -----------------------------------------------------------------------

def test_every_toc_entry_exists():
    entries = toc_files()
    assert entries[0] == TOC["root"] == "index"
    missing = [e for e in entries if source_of(e) is None]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"
    assert len(entries) == len(set(entries)), "a page is listed twice in _toc.yml"


def test_back_matter_lists_the_apparatus():
    parts = {part["caption"]: [c["file"] for c in part["chapters"]] for part in TOC["parts"]}
    back = parts.get("Back matter", [])
    for page in ("glossary", "appendix/reproducibility", "appendix/api", "appendix/citing",
                 "bibliography"):
        assert page in back, f"{page} is missing from the toc's back matter"


# --- figures ---------------------------------------------------------------------------------

@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_glued_figure_has_name_alt_text_and_caption(chapter):
    for glued, body in glue_figures(chapter.read_text()):
        options = directive_options(body)
        assert options.get("name"), f"{chapter.name}: figure {glued} has no :name:"
        assert len(options.get("alt", "")) >= 20, f"{chapter.name}: figure {glued} has no :alt: text"
        caption = [line for line in body.splitlines() if line.strip()
                   and not re.match(r"^:[\w-]+:", line)]
        assert caption, f"{chapter.name}: figure {glued} has no caption"


def test_figure_names_are_unique_across_the_book():
    names = [directive_options(body).get("name") for chapter in CHAPTERS
             for _, body in glue_figures(chapter.read_text())]
    assert names, "no glued figures found: has the directive syntax changed?"
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"figure names used twice: {duplicates}"


def test_figures_are_numbered():
    assert CONFIG["sphinx"]["config"].get("numfig") is True


def test_the_directive_parser_sees_figures():
    sample = "```{glue:figure} fig_x\n:name: fig-x\n:alt: An alternative text, long enough.\n\nA caption.\n```\n"
    ((glued, body),) = glue_figures(sample)
    assert glued == "fig_x" and directive_options(body) == {
        "name": "fig-x", "alt": "An alternative text, long enough."}


# --- citations -------------------------------------------------------------------------------

def test_every_cited_key_is_in_the_bibliography():
    keys = set(BIB_KEY.findall((ROOT / "references.bib").read_text()))
    assert keys, "no entries parsed from references.bib"
    missing = {}
    for page in book_pages():
        for group in CITE.findall(prose(page.read_text())):
            for key in (k.strip() for k in group.split(",")):
                if key not in keys:
                    missing.setdefault(page.relative_to(ROOT).as_posix(), []).append(key)
    assert not missing, f"cited keys missing from references.bib: {missing}"


def test_the_bibliography_keys_are_unique():
    keys = BIB_KEY.findall((ROOT / "references.bib").read_text())
    assert len(keys) == len(set(keys)), sorted({k for k in keys if keys.count(k) > 1})


# --- glossary --------------------------------------------------------------------------------

def test_glossary_terms_have_definitions():
    terms = glossary_terms()
    assert len(terms) >= 20
    empty = [t for t, d in terms.items() if len(d.strip()) < 20]
    assert not empty, f"glossary terms without a definition: {empty}"


def test_every_term_used_is_defined_in_the_glossary():
    terms = glossary_terms()
    undefined = {}
    for page in book_pages():
        for role in TERM.findall(prose(page.read_text())):
            if term_target(role) not in terms:
                undefined.setdefault(page.relative_to(ROOT).as_posix(), []).append(role)
    assert not undefined, f"{{term}} roles with no glossary entry: {undefined}"


def test_chapters_link_to_the_glossary():
    linked = [c.name for c in CHAPTERS if TERM.search(prose(c.read_text()))]
    assert len(linked) >= min(len(CHAPTERS), 6), f"only {linked} use {{term}} roles"


def test_term_targets_are_parsed_as_sphinx_resolves_them():
    assert term_target("MAP estimate") == "map estimate"
    assert term_target("TV distance <total variation distance>") == "total variation distance"
    assert term_target("flavours <Laplace\n  flavour>") == "laplace flavour"


# --- citation metadata -----------------------------------------------------------------------

def citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_cff_has_the_required_keys():
    cff = citation()
    for key in ("cff-version", "message", "title", "authors", "version", "date-released",
                "license"):
        assert cff.get(key), f"CITATION.cff lacks {key}"
    assert cff["cff-version"] == "1.2.0"
    assert cff["license"] == "MIT"
    assert cff["authors"] and all(a.get("name") or a.get("family-names") for a in cff["authors"])
    released = cff["date-released"]
    released = released if isinstance(released, str) else released.isoformat()
    datetime.date.fromisoformat(released)
    for reference in cff.get("references", []):
        assert {"type", "title", "authors"} <= set(reference), reference.get("title")


def test_every_version_agrees_with_pyproject():
    version = PYPROJECT["project"]["version"]
    assert str(citation()["version"]) == version
    assert bayes_at_scale.__version__ == version
    assert f"Version {version}" in (ROOT / "appendix" / "citing.md").read_text()
    assert f"Version {version}" in (ROOT / "index.md").read_text()


def test_the_changelog_and_the_citing_pages_carry_this_edition():
    version = PYPROJECT["project"]["version"]
    released = citation()["date-released"]
    released = released if isinstance(released, str) else released.isoformat()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    entries = re.findall(r"^## (\d+\.\d+\.\d+) - (\d{4}-\d{2}-\d{2})\b", changelog, flags=re.M)
    assert entries and entries[0] == (version, released), \
        f"CHANGELOG.md's newest entry {entries[:1]} is not {version} of {released}"
    assert f"released {released}" in (ROOT / "appendix" / "citing.md").read_text()
    assert f"Version {version}, released {released}" in (ROOT / "index.md").read_text()


def test_the_license_agrees_with_pyproject():
    assert PYPROJECT["project"]["license"]["text"] == citation()["license"]


# --- API reference ---------------------------------------------------------------------------

def test_api_reference_documents_every_module():
    api = (ROOT / "appendix" / "api.md").read_text()
    documented = set(re.findall(r"^\.\. automodule:: bayes_at_scale\.([\w.]+)$", api, flags=re.M))
    package = ROOT / "src" / "bayes_at_scale"
    modules = {".".join(p.relative_to(package).with_suffix("").parts)
               for p in package.rglob("*.py") if not p.stem.startswith("_")}
    assert modules - documented == set(), f"modules missing from the API reference: {modules - documented}"
    assert documented - modules == set(), f"the API reference names unknown modules: {documented - modules}"
    assert "sphinx.ext.autodoc" in CONFIG["sphinx"]["extra_extensions"]


# --- cross-references and downloads ----------------------------------------------------------

def test_relative_links_point_to_existing_files():
    broken = []
    for page in book_pages():
        for target in MD_LINK.findall(prose(page.read_text())):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT).as_posix()} -> {target}")
    assert not broken, f"links to missing files: {broken}"


def test_notebook_download_extension_is_configured_and_restores_glued_outputs():
    assert CONFIG["sphinx"]["local_extensions"].get("notebook_download") == "_ext/"
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import notebook_download
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook(metadata={"source_map": [1, 2]})
    glued = nbformat.v4.new_output(
        "display_data", data={"application/papermill.record/image/png": "iVBOR",
                              "application/papermill.record/text/plain": "<Figure>"},
        metadata={"scrapbook": {"name": "fig_x"}})
    printed = nbformat.v4.new_output("stream", name="stdout", text="CLAIM C1: SUPPORTED\n")
    nb.cells = [nbformat.v4.new_code_cell("glue('fig_x', fig)", outputs=[glued, printed])]
    out = notebook_download.displayable(nb)
    assert "source_map" not in out.metadata
    assert out.cells[0].outputs[0]["data"] == {"image/png": "iVBOR", "text/plain": "<Figure>"}
    assert "scrapbook" not in out.cells[0].outputs[0]["metadata"]
    assert out.cells[0].outputs[1]["text"] == "CLAIM C1: SUPPORTED\n"
    nbformat.validate(out)


def test_notebook_download_extension_hooks_the_read_and_the_page():
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import notebook_download
    finally:
        sys.path.remove(str(ROOT / "_ext"))

    class App:
        def __init__(self):
            self.hooks = {}

        def connect(self, event, handler, priority=500):
            self.hooks[event] = (handler, priority)

    app = App()
    metadata = notebook_download.setup(app)
    assert metadata["parallel_read_safe"] and metadata["parallel_write_safe"]
    # the cached outputs must be back in jupyter_execute before the next page (the verdict
    # chapter, the ledger) reads them, and the download entry must exist before the theme's
    # header buttons (priority 501) are built
    assert app.hooks["doctree-read"][0] is notebook_download.complete_executed_notebook
    handler, priority = app.hooks["html-page-context"]
    assert handler is notebook_download.add_notebook_download and priority < 501


def test_the_site_has_no_live_code_or_launch_settings():
    """Jupyter Book's default extensions, less thebe (the book offers no live code), and no
    launch buttons; the bibliography's extension is kept."""
    from jupyter_book.config import get_final_config

    config, _ = get_final_config(user_yaml=ROOT / "_config.yml",
                                 cli_config={"latex_individualpages": False},
                                 sourcedir=ROOT)
    assert "sphinx_thebe" not in config["extensions"]
    for needed in ("myst_nb", "sphinx_book_theme", "sphinxcontrib.bibtex", "edition_footer",
                   "sphinx_design", "sphinx.ext.viewcode"):
        assert needed in config["extensions"], needed
    options = config["html_theme_options"]
    assert not {"launch_buttons", "repository_url", "analytics"} & set(options), options
    assert "launch_buttons" not in yaml.safe_load((ROOT / "_config.yml").read_text())
