"""The pages that read the chapters' verdict records are read after every other page.

Each chapter records its verdicts as it executes (``bayes_at_scale.book.claims.report``
writes them to ``ESSAY_RECORDS``, ``_build/records`` in a book build), and the pages
that show the ledger - the verdict chapter and the front page - read those records when
they execute. Sphinx reads (and MyST-NB executes) pages in the order of its ``docnames``
list, sorted by name; the handler of ``env-before-read-docs``, which Sphinx lets reorder
that list in place, moves these readers to its end, so that what they show does not
depend on how their names sort. And when any other page is read again (its source
changed), so are they (``env-get-outdated``), so that an incremental build does not keep
a ledger older than the chapters. ``verdict_readers`` (a ``sphinx.config`` value) names
them.

Sphinx reads pages in parallel only if every extension allows it: this one does not, so
that the order holds under ``-j`` too.
"""

from __future__ import annotations

#: The pages that read the verdict records, in the order they are read last.
READERS = ("chapters/08_verdict", "index")


def read_readers_last(app, env, docnames: list[str]) -> None:
    """Move the pages named in ``verdict_readers`` to the end of ``docnames``, in
    place."""
    readers = [name for name in app.config.verdict_readers if name in docnames]
    docnames[:] = [name for name in docnames if name not in readers] + readers


def reread_readers(
    app, env, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """When another page is read again, read the readers again too (they re-execute)."""
    readers = set(app.config.verdict_readers)
    if (added | changed | removed) - readers:
        return [
            name for name in app.config.verdict_readers if name not in added | changed
        ]
    return []


def setup(app):
    app.add_config_value("verdict_readers", list(READERS), "env")
    app.connect("env-get-outdated", reread_readers)
    app.connect("env-before-read-docs", read_readers_last)
    return {"version": "1.0", "parallel_read_safe": False, "parallel_write_safe": True}
