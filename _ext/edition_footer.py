"""A footer on every page: the edition the site was built from.

It names the package's version, the git commit of the sources (marked when the working
tree had changes that were not committed), the scale and the base seed the chapters were
executed with (``ESSAY_SCALE``, ``ESSAY_SEED``, read as the chapters read them) and the
build date (UTC, or ``SOURCE_DATE_EPOCH`` where set), so that a reader, a screenshot or
a printed page says what it shows.  The text is given to each page as it is written
(``html-page-context``) rather than as a theme option, so that a new commit or date does
not make Sphinx read every page again.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path


def commit(root: Path) -> str:
    """``abc1234`` (``abc1234, with uncommitted changes`` for a modified tree), or
    ``unknown commit`` outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short=10", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown commit"
    return f"{head}, with uncommitted changes" if dirty else head


def build_date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc)
        if epoch
        else dt.datetime.now(dt.timezone.utc)
    )
    return when.date().isoformat()


def footer_text(root: Path) -> str:
    from bayes_at_scale import __version__
    from bayes_at_scale.core.settings import from_env

    settings = from_env()
    return (
        f"Edition {__version__} \N{MIDDLE DOT} commit {commit(root)} \N{MIDDLE DOT} "
        f"{settings.scale} scale, base seed {settings.seed} \N{MIDDLE DOT} "
        f"built {build_date()}"
    )


def setup(app):
    text: dict[str, str] = {}

    def add_footer(app, pagename, templatename, context, doctree):
        if "html" not in text:
            text["html"] = (
                f'<p class="edition-footer">{footer_text(Path(app.srcdir))}</p>'
            )
        context["theme_extra_footer"] = text["html"]

    app.connect("html-page-context", add_footer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
