"""Emit each inline <script> of a page once (a fix for Sphinx 7.4, which Jupyter Book 1
pins).

An extension that calls ``app.add_js_file(None, body=...)`` after the builder is
initialised (as sphinx-thebe and sphinx-togglebutton do) gets its script registered
twice: once on the builder with the file name ``None``, once more from the registry with
the file name ``''`` when the builder prepares to write. The two compare unequal, so
every page carried both copies, and the second ``const THEBE_JS_URL = ...`` threw
"Identifier 'THEBE_JS_URL' has already been declared" in the reader's browser
(tests/test_site.py fails on any such page error).
"""

from __future__ import annotations


def _key(script) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = tuple(sorted(getattr(script, "attributes", {}).items()))
    return filename, attributes


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # In place: the builder restores its own list after each page.
    scripts[:] = unique


def setup(app):
    # After the other extensions' html-page-context handlers (default priority 500) have
    # added theirs.
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
