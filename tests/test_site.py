"""The rendered site, as a reader's browser sees it, with no network.

A session fixture renders the book from the reference notebooks that nbval checks in the same
test run, without executing them again: it fills a fresh jupyter-cache with the executed
reference notebooks (``tests/references/*.ipynb``, whose code ``tests/test_references.py``
keeps equal to the chapters'), then builds with ``jupyter-book build --all -W --keep-going
--path-output _build/site .`` at the quick scale, so that every chapter's outputs come from that
cache and only the verdict chapter (``execution_mode: force``, a few seconds) runs; the ledger
reads the blessed records, ``tests/references/records``.  A chapter that the build executes
anyway - its reference does not match it - fails the test.  The build is skipped when
``_build/site/_build/html`` comes from a successful build that started after the last change to
any source, references included.  ``make book`` (``_build/html``, executing every chapter) is a
separate build.  The built site is then served from a thread on 127.0.0.1 and every HTML page of it is
opened in headless Chromium (Debian's ``/usr/bin/chromium``, driven by playwright; playwright's
own browsers are never downloaded): one test per page of the table of contents (plus the index
and search pages), one more for the generated rest (module source pages).  For each page it
checks that

- no request leaves localhost (every other request is aborted and recorded: the site works
  offline, MathJax and fonts included),
- nothing the page loads from the site is missing (no HTTP error),
- the console shows no error and the page throws no exception,
- every image, figures included, has loaded,
- math is typeset by MathJax, with no MathJax error and no raw ``$...$`` or ``\\(`` left over,
- every internal link reaches an existing file, and its ``#anchor`` an existing id there,
- no cell output is a traceback, stderr or an exception message,

and then, at 1280 px and at 390 px wide, in the light and in the dark colour mode, that

- no element runs past the article's column unless it sits in a scroll box of its own inside
  the column (a wide table, a code block), and the page never scrolls sideways,
- every figure image is SVG or has at least twice the pixels it is drawn with,
- every caption's text has a WCAG AA contrast (4.5:1) with its background,
- the footer names the package's version and the commit the site was built from;

and saves full-page screenshots to ``_build/screenshots/<page>.png`` (1280 px, light),
``<page>-390px.png`` (390 px, light) and ``<page>-dark.png`` (1280 px, dark); sub-folders of
``_build/screenshots`` are left alone.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

pytestmark = pytest.mark.book  # renders the whole book: make test-fast skips it

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "site"              # the browser test's build: --path-output
HTML = SITE / "_build" / "html"
CACHE = SITE / "_build" / ".jupyter_cache"   # where myst-nb looks for this build's outputs
REFERENCES = ROOT / "tests" / "references"
SCREENSHOTS = ROOT / "_build" / "screenshots"
BUILD_LOG = ROOT / "_build" / "site-build.log"
# Written (with the build's start time as its mtime) only after a successful -W build.
STAMP = HTML / ".build-ok"
CHROMIUM = Path("/usr/bin/chromium")
INSTALL_CHROMIUM = ("the browser test needs Debian's chromium at /usr/bin/chromium: install "
                    "Debian's chromium package (apt-get install chromium), or run `make test`, "
                    "which installs it where it runs as root with apt-get")
# The Makefile's QUICK: the scale, seed and threads the book is built with.
QUICK = {"ESSAY_SCALE": "quick", "ESSAY_SEED": "0", "ESSAY_THREADS": "2",
         "ESSAY_DTYPE": "float32", "PYTHONHASHSEED": "0"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
    # Belt and braces to the request interception below: no host name but localhost resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
# Directories of a repository checkout that are not inputs of the book.
NOT_SOURCES = {".git", ".venv", "_build", "tests", "benchmarks", ".ci", "__pycache__",
               ".pytest_cache", ".hypothesis", ".ipynb_checkpoints", ".jupyter_cache"}


def toc_pages() -> list[str]:
    """The HTML pages the book must have: every file of _toc.yml, the index and the search."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    pages = [str(Path(f).with_suffix("")) + ".html" for f in files]
    return pages + ["genindex.html", "search.html"]


PAGES = toc_pages()


# --- building -----------------------------------------------------------------------------

def sources() -> list[Path]:
    """Every file that may go into the book: chapters, config, bibliography, the package, data...

    The repository's files (tracked, or untracked and not ignored) where git can list them,
    else every file under the root; either way less NOT_SOURCES and the README."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=ROOT, capture_output=True)
    except OSError:  # no git
        listed = None
    if listed is not None and listed.returncode == 0:
        names = [name for name in listed.stdout.decode().split("\0") if name]
    else:
        names = []
        for folder, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in NOT_SOURCES]
            names += [str((Path(folder) / f).relative_to(ROOT)) for f in files]
    inputs = [ROOT / name for name in names
              if not NOT_SOURCES.intersection(Path(name).parts) and name != "README.md"
              and not name.endswith(".pyc") and (ROOT / name).is_file()]
    # the site's outputs come from the reference notebooks and their records
    return inputs + sorted(REFERENCES.glob("*.ipynb")) + sorted(REFERENCES.glob("records/*"))


def seed_cache() -> list[str]:
    """A fresh jupyter-cache holding every executed reference notebook, keyed as myst-nb keys a
    chapter (its code cells), so the build takes each chapter's outputs from its reference.
    Returns the chapters cached."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    shutil.rmtree(CACHE, ignore_errors=True)
    cache = get_cache(CACHE)
    cached = []
    for reference in sorted(REFERENCES.glob("[0-9]*.ipynb")):
        nb = nbformat.read(reference, as_version=4)
        for cell in nb.cells:
            cell.metadata.pop("execution", None)  # nbclient's timings are not part of the key
        chapter = ROOT / "chapters" / f"{reference.stem}.md"
        cache.cache_notebook_bundle(CacheBundleIn(nb, str(chapter)), check_validity=False,
                                    overwrite=True)
        cached.append(reference.stem)
    return cached


def stale_reason() -> str | None:
    """Why _build/html must be rebuilt, or None when it is up to date."""
    if not STAMP.exists():
        return f"{STAMP.relative_to(ROOT)} is missing (no successful build recorded)"
    built = STAMP.stat().st_mtime
    newer = [p for p in sources() if p.stat().st_mtime > built]
    if newer:
        return f"{newer[0].relative_to(ROOT)} changed after the last build"
    missing = [p for p in PAGES if not (HTML / p).exists()]
    if missing:
        return f"{missing[0]} was never built"
    return None


@pytest.fixture(scope="session")
def site() -> Path:
    """The site rendered from the reference notebooks, unless an up-to-date build exists."""
    reason = stale_reason()
    if reason is not None:
        started = time.time()
        # A fresh output folder: pages of chapters since removed must not linger in the site.
        shutil.rmtree(HTML, ignore_errors=True)
        BUILD_LOG.parent.mkdir(exist_ok=True)
        cached = seed_cache()
        jupyter_book = Path(sys.executable).with_name("jupyter-book")
        env = {k: v for k, v in os.environ.items() if k != "ESSAY_RECORDS"}
        with BUILD_LOG.open("w") as log:
            print(f"building the site from the reference notebooks: {reason}", file=log,
                  flush=True)
            done = subprocess.run(
                [str(jupyter_book), "build", "--all", "-W", "--keep-going",
                 "--path-output", str(SITE.relative_to(ROOT)), "."],
                cwd=ROOT, env={**env, **QUICK}, stdout=log, stderr=subprocess.STDOUT)
        text = BUILD_LOG.read_text()
        if done.returncode != 0:
            tail = "".join(text.splitlines(keepends=True)[-40:])
            pytest.fail(f"jupyter-book build failed (exit {done.returncode}); full log in "
                        f"{BUILD_LOG.relative_to(ROOT)}:\n{tail}", pytrace=False)
        # every chapter's outputs come from its reference, but for the pages that always execute
        # (`execution_mode: force`: the verdict chapter, which reads the blessed records)
        forced = {stem for stem in cached
                  if "execution_mode: force" in (ROOT / "chapters" / f"{stem}.md").read_text()}
        executed = [stem for stem in cached if stem not in forced and re.search(
            rf"{re.escape(stem)}[^\n]*Executing notebook", text)]
        if executed:
            pytest.fail(f"the site build executed {executed} instead of rendering their "
                        f"reference notebooks: a reference no longer matches its chapter "
                        f"(see {BUILD_LOG.relative_to(ROOT)})", pytrace=False)
        STAMP.touch()
        os.utime(STAMP, (started, started))
    return HTML


# --- serving and browsing -----------------------------------------------------------------

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def server(site):
    """The built site on http://127.0.0.1:<free port>/, served from a thread."""
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(INSTALL_CHROMIUM, pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder of this run's screenshots (earlier ones removed; sub-folders, say of
    screenshots taken before a change, are kept)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS


class Ids(HTMLParser):
    """Every id (and <a name>) of an HTML file: the anchors a link may point at."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (tag == "a" and key == "name"):
                self.ids.add(value or "")


@functools.cache
def ids_of(path: Path) -> frozenset[str]:
    parser = Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.ids)


# Run in the page once it has loaded: wait for images and MathJax, then report what is there.
INSPECT = r"""
async () => {
  const TIMEOUT = "timed out";
  const within = (promise, ms) => Promise.race(
      [promise, new Promise(done => setTimeout(() => done(TIMEOUT), ms))]);
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = "eager"; });
  await within(Promise.all(images.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); }))),
      15000);
  const mathCount = document.querySelectorAll(".math").length;
  let mathjax = "absent";
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    const typeset = await within(window.MathJax.startup.promise.then(() => "done"), 20000);
    mathjax = typeset === TIMEOUT ? TIMEOUT : (window.MathJax.version || "loaded");
  }
  const skip = "script, style, noscript, pre, code, textarea, mjx-container, .highlight";
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.closest(skip)) texts.push(node.nodeValue);
  }
  return {
    mathCount, mathjax,
    mjx: document.querySelectorAll("mjx-container").length,
    // TeX errors (merror) and undefined macros (which MathJax's noundefined shows in red).
    mathErrors: Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
        .map(e => e.getAttribute("data-mjx-error") || e.textContent)
        .concat(mathjax === "absent" || mathjax === TIMEOUT ? [] :
            Array.from(window.MathJax.startup.document.math)
                .map(item => window.MathJax.startup.toMML(item.root))
                .filter(mml => /<merror|mathcolor="red"/.test(mml))
                .map(mml => mml.replace(/\s+/g, " ").slice(0, 300))),
    brokenImages: images.filter(img => !(img.complete && img.naturalWidth > 0))
        .map(img => img.getAttribute("src")),
    links: Array.from(document.querySelectorAll("a[href]")).map(a => [a.getAttribute("href"), a.href]),
    text: texts.join(" "),
    badOutputs: Array.from(document.querySelectorAll(
        ".output.traceback, .output.stderr, .output.error, .system-message, .problematic"))
        .map(e => e.className + ": " + e.textContent.trim().slice(0, 200)),
    outputs: Array.from(document.querySelectorAll(".cell_output")).map(e => e.textContent),
  };
}
"""
#: The widths, in CSS pixels, a page is checked at: a laptop and a phone.
WIDTHS = (1280, 390)
#: WCAG 2 AA: the least contrast ratio of normal-size text with its background.
AA_CONTRAST = 4.5
# Layout as a reader meets it (run once per width and colour mode): elements that run past
# the article's column without a scroll box of their own (only the outermost of them), page-
# wide sideways scrolling, figure images drawn at less than twice their pixels (blurred on a
# high-resolution screen; SVG is exempt), caption text whose contrast with its background is
# below AA, and the footer's text.
LAYOUT = r"""
() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const column = article.getBoundingClientRect();
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (el.classList.length ? "." + Array.from(el.classList).slice(0, 3).join(".") : "");
  const path = el => {
    const parts = [];
    for (let a = el; a && a !== article && parts.length < 4; a = a.parentElement) parts.unshift(name(a));
    return parts.join(" > ");
  };
  const boxes = el => /(auto|scroll|hidden|clip)/.test(getComputedStyle(el).overflowX);
  const inColumn = r => r.left >= column.left - 1 && r.right <= column.right + 1;
  const scrolled = el => {
    for (let a = el.parentElement; a && a !== article.parentElement; a = a.parentElement) {
      if (boxes(a) && inColumn(a.getBoundingClientRect())) return true;
    }
    return false;
  };
  const hidden = "mjx-assistive-mml, .visually-hidden, .sr-only, script, style";
  const offenders = new Set();
  for (const el of article.querySelectorAll("*")) {
    if (el.closest(hidden)) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === "hidden") continue;
    if (!inColumn(r) && !scrolled(el)) offenders.add(el);
  }
  const overflow = Array.from(offenders).filter(el => !offenders.has(el.parentElement)).map(el => {
    const r = el.getBoundingClientRect();
    return `${path(el)} spans ${Math.round(r.left)}-${Math.round(r.right)} px, the column ` +
        `${Math.round(column.left)}-${Math.round(column.right)} px: ` +
        JSON.stringify(el.textContent.trim().slice(0, 80));
  });
  const pageScroll = document.documentElement.scrollWidth > window.innerWidth + 1 ?
      [`the page scrolls sideways: ${document.documentElement.scrollWidth} px wide in a ` +
       `${window.innerWidth} px window`] : [];
  const blurred = Array.from(article.querySelectorAll("figure img, .cell_output img"))
      .filter(img => !/\.svg(\?|$)/i.test(img.currentSrc || img.src))
      .filter(img => img.getBoundingClientRect().width > 0 &&
                     img.naturalWidth < 2 * img.getBoundingClientRect().width - 1)
      .map(img => `${img.getAttribute("src")}: ${img.naturalWidth} px drawn at ` +
                  `${Math.round(img.getBoundingClientRect().width)} px`);
  const rgba = text => {
    const m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const v = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
  };
  const background = el => {
    for (let a = el; a; a = a.parentElement) {
      const c = rgba(getComputedStyle(a).backgroundColor);
      if (c && c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const luminance = c => {
    const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
  };
  const contrast = el => {
    const bg = background(el);
    let fg = rgba(getComputedStyle(el).color);
    fg = fg.slice(0, 3).map((v, i) => fg[3] * v + (1 - fg[3]) * bg[i]);
    const [a, b] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  const captions = [];
  // the caption's text (its "#" permalink, which the theme shows on hover, aside)
  for (const el of article.querySelectorAll("figcaption, figcaption *")) {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.nodeValue.trim());
    if (own && !el.closest(hidden + ", .headerlink")) {
      captions.push([el.textContent.trim().slice(0, 60), Math.round(contrast(el) * 100) / 100]);
    }
  }
  const footer = document.querySelector(".edition-footer");
  return {overflow: overflow.concat(pageScroll), blurred, captions,
          footer: footer ? footer.textContent.trim() : null,
          theme: document.documentElement.dataset.theme || ""};
}
"""
#: Switches the theme's colour mode (pydata-sphinx-theme reads ``data-theme`` on <html>).
SET_THEME = """mode => { document.documentElement.dataset.theme = mode;
                        document.documentElement.dataset.mode = mode; }"""
RAW_DOLLAR = re.compile(r"\$\$|\$(?=\S)([^$\n]{1,200}?)(?<=\S)\$")
RAW_TEX = re.compile(r"\\[(\[]|\\begin\{")
EXCEPTION = re.compile(r"Traceback \(most recent call last\)|^\s*(?:[A-Z]\w*)?(?:Error|Exception)\b(?::|$)",
                       re.M)


def raw_math(text: str) -> list[str]:
    """Math the reader sees as source: $$, $...$ with TeX in it, or \\( \\[ \\begin{."""
    found = [m.group(0) for m in RAW_DOLLAR.finditer(text)
             if m.group(0) == "$$" or re.search(r"[\\^_{}]", m.group(1))
             or re.fullmatch(r"[A-Za-z]", m.group(1))]
    found += [text[max(0, m.start() - 20):m.end() + 40] for m in RAW_TEX.finditer(text)]
    return found


#: A matplotlib figure's text repr, which a page shows when a figure was not rendered as an image.
FIGURE_REPR = re.compile(r"<Figure size [\d.]+x[\d.]+ with \d+ Axes>")


def screenshot_name(page: str, variant: str = "") -> str:
    """``chapters__01_frequentist_limit.png`` (1280 px, light), ``...-390px.png``,
    ``...-dark.png``."""
    return page.removesuffix(".html").replace("/", "__") + (f"-{variant}" if variant
                                                             else "") + ".png"


def edition() -> tuple[str, str]:
    """The package's version and the sources' commit (10 hex digits), as the footer
    names them."""
    sys.path.insert(0, str(ROOT / "src"))
    try:
        from bayes_at_scale import __version__
    finally:
        sys.path.pop(0)
    head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    return __version__, head


def layout_failures(seen: dict, where: str, version: str, commit: str) -> list[str]:
    """What :data:`LAYOUT` found wrong at one width and colour mode."""
    failures = [f"{where}: runs past the column: {item}" for item in seen["overflow"]]
    failures += [f"{where}: figure image below 2x: {item}" for item in seen["blurred"]]
    failures += [f"{where}: caption contrast {ratio} < {AA_CONTRAST}: {text!r}"
                 for text, ratio in seen["captions"] if ratio < AA_CONTRAST]
    footer = seen["footer"] or ""
    if f"Edition {version}" not in footer or f"commit {commit}" not in footer:
        failures.append(f"{where}: the footer does not name version {version} and commit "
                        f"{commit}: {footer!r}")
    return failures


def built_pages(site: Path) -> list[str]:
    """Every HTML page of the built site (theme templates under _static excluded)."""
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] not in ("_static", "_sources", "_images"))


def check_page(page: str, site: Path, server: str, browser, screenshots: Path) -> list[str]:
    """Open one page of the site in Chromium; return what is wrong with it (empty: nothing)."""
    failures: list[str] = []
    external: list[str] = []

    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  service_workers="block")

    def route(request_route):
        url = request_route.request.url
        if is_local(url):
            request_route.continue_()
        else:
            external.append(url)
            request_route.abort()

    context.route("**/*", route)
    tab = context.new_page()
    # Anything that left the page without passing the route (none should) counts too.
    tab.on("request", lambda r: None if is_local(r.url) else external.append(r.url))
    tab.on("console", lambda m: failures.append(f"console {m.type}: {m.text}")
           if m.type == "error" else None)
    tab.on("pageerror", lambda e: failures.append(f"page error: {e}"))
    tab.on("response", lambda r: failures.append(f"HTTP {r.status}: {r.url}")
           if r.status >= 400 else None)
    tab.on("requestfailed", lambda r: failures.append(f"request failed ({r.failure}): {r.url}")
           if is_local(r.url) else None)
    version, commit = edition()
    shots = []
    try:
        tab.goto(server + page, wait_until="load", timeout=30_000)
        seen = tab.evaluate(INSPECT)
        tab.wait_for_load_state("networkidle", timeout=15_000)
        # each width in the light and the dark colour mode; a screenshot of each width
        # (light) and of the widest (dark)
        for width in WIDTHS:
            tab.set_viewport_size({"width": width, "height": 900})
            for mode in ("light", "dark"):
                tab.evaluate(SET_THEME, mode)
                tab.wait_for_timeout(50)
                failures += layout_failures(tab.evaluate(LAYOUT), f"{width} px, {mode}",
                                            version, commit)
                variant = "" if (width, mode) == (WIDTHS[0], "light") else \
                    f"{width}px" if mode == "light" else \
                    "dark" if width == WIDTHS[0] else None
                if variant is not None:
                    shots.append(screenshots / screenshot_name(page, variant))
                    tab.screenshot(path=str(shots[-1]), full_page=True)
    finally:
        context.close()

    if external:
        failures.append(f"loads from outside the site (not offline): {sorted(set(external))}")
    failures += [f"no screenshot {shot}" for shot in shots
                 if not shot.is_file() or shot.stat().st_size == 0]
    if len(shots) != 3:
        failures.append(f"{len(shots)} screenshots taken, not 3")
    if seen["brokenImages"]:
        failures.append(f"images that did not load: {seen['brokenImages']}")

    # Math: typeset by the site's own MathJax, nothing left as source, no MathJax error.
    if seen["mathCount"] and seen["mathjax"] in ("absent", "timed out"):
        failures.append(f"{seen['mathCount']} math elements but MathJax {seen['mathjax']}")
    elif seen["mjx"] < seen["mathCount"]:
        failures.append(f"{seen['mathCount']} math elements, only {seen['mjx']} typeset")
    if seen["mathErrors"]:
        failures.append(f"MathJax errors: {seen['mathErrors']}")
    if raw := raw_math(seen["text"]):
        failures.append(f"unrendered math: {raw}")

    # Figures: drawn as images, never shown as their text repr ("<Figure size ... Axes>").
    if figures := FIGURE_REPR.findall(seen["text"]):
        failures.append(f"figures shown as text, not drawn: {figures}")

    # Execution: no traceback, stderr or exception in any output.
    if seen["badOutputs"]:
        failures.append(f"error outputs: {seen['badOutputs']}")
    failures += [f"a cell output shows an error:\n{output.strip()[:1000]}"
                 for output in seen["outputs"] if EXCEPTION.search(output)]

    # Internal links: the file exists, and so does the anchor on it.
    origin = urlsplit(server)
    for raw_href, resolved in seen["links"]:
        target = urlsplit(resolved)
        if target.scheme not in ("http", "https") or target.netloc != origin.netloc:
            continue
        path = site / unquote(target.path).lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            failures.append(f"broken link {raw_href}: no file {path.relative_to(site)}")
        elif target.fragment and path.suffix == ".html":
            if unquote(target.fragment) not in ids_of(path):
                failures.append(f"broken link {raw_href}: no id {target.fragment!r} "
                                f"in {path.relative_to(site)}")
    return failures


@pytest.mark.parametrize("page", PAGES)
def test_page(page, site, server, browser, screenshots):
    """A page of the table of contents (or the index or search page) as a reader sees it."""
    assert (site / page).is_file(), f"{page} was not built"
    failures = check_page(page, site, server, browser, screenshots)
    assert not failures, f"{page}:\n" + "\n".join(failures)


def test_generated_pages(site, server, browser, screenshots):
    """Every other page of the site (generated ones, such as the highlighted module sources)."""
    others = [page for page in built_pages(site) if page not in PAGES]
    failures = {page: problems for page in others
                if (problems := check_page(page, site, server, browser, screenshots))}
    assert not failures, "\n".join(f"{page}:\n  " + "\n  ".join(problems)
                                   for page, problems in failures.items())


class Loads(HTMLParser):
    """The URLs an HTML file makes the browser fetch by itself (not the links a reader follows)."""

    LOADING_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon",
                    "apple-touch-icon", "manifest"}

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and self.LOADING_RELS.intersection((attrs.get("rel") or "").lower().split()):
            self.urls.append(attrs.get("href") or "")
        if tag == "object" and attrs.get("data"):
            self.urls.append(attrs["data"])


CSS_LOAD = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*['"]?\s*((?:https?:)?//[^'")\s]+)""")


def test_site_has_math_and_figures_and_loads_nothing_external(site):
    """The essay has math and figures (so the checks above are exercised), MathJax is served
    from the site, and no HTML or CSS file of the site names an external resource to load."""
    pages = [p for p in site.rglob("*.html") if p.relative_to(site).parts[0] != "_static"]
    html = {p: p.read_text(encoding="utf-8") for p in pages}
    assert any('class="math' in text for text in html.values())
    assert any("<img" in text for text in html.values())
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    external = []
    for path, text in html.items():
        parser = Loads()
        parser.feed(text)
        external += [f"{path.relative_to(site)}: {url}" for url in parser.urls
                     if url.startswith(("http:", "https:", "//"))]
    for css in site.rglob("*.css"):
        text = re.sub(r"/\*.*?\*/", "", css.read_text(encoding="utf-8", errors="replace"), flags=re.S)
        external += [f"{css.relative_to(site)}: {url}" for url in CSS_LOAD.findall(text)]
    assert not external, f"external resources: {external}"


def test_raw_math_detector():
    """The unrendered-math check catches source and lets prose with dollars through."""
    assert raw_math(r"the rate $n^{-1/2}$ holds")
    assert raw_math(r"a rate \(n\) left")
    assert raw_math("$$ x $$")
    assert raw_math("for $n$ draws")
    assert not raw_math("it costs $5 and then $10 more")
    assert not raw_math("no math at all")
