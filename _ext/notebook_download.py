"""This build's executed notebooks: downloadable, with their outputs.

MyST-NB writes every notebook page it reads to ``_build/jupyter_execute/<page>.ipynb``.
When a page is executed during the build that file carries its outputs; when its outputs
come from the execution cache (jupyter-cache: the page's code is unchanged since an
earlier build), MyST-NB renders the cached outputs but writes the notebook *without*
them, and a reader who downloads it would get a notebook without results.  Two hooks fix
that:

* ``doctree-read`` (right after MyST-NB has read a page): if the page's outputs came
  from the cache, rewrite its notebook in ``jupyter_execute`` with those outputs merged
  in, exactly as the cache holds them (the book's one merge from jupyter-cache: nothing
  else reads these notebooks; the ledger reads the verdict records the chapters write);
* ``html-page-context`` (before sphinx-book-theme builds its header buttons): copy the
  page's executed notebook to ``_build/html/_sources/<page>.ipynb``, with the outputs
  that ``glue`` recorded for the prose (figures, mainly) made displayable again, and set
  ``ipynb_source``, which the theme turns into a ``.ipynb`` entry of its download menu
  beside the ``.md`` source.

Pages that are not notebooks are left alone.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

# sphinx-book-theme adds its header buttons at priority 501; this must run before.
PRIORITY = 400
GLUE_PREFIX = "application/papermill.record/"


def displayable(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip MyST-NB's bookkeeping and turn glued outputs back into ordinary
    displays."""
    nb.metadata.pop("source_map", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if any(key.startswith(GLUE_PREFIX) for key in data):
                output["data"] = {
                    key.removeprefix(GLUE_PREFIX): value for key, value in data.items()
                }
                output.get("metadata", {}).pop("scrapbook", None)
    return nb


def executed_path(app, docname: str) -> Path | None:
    """Where MyST-NB writes ``docname``'s notebook (None outside a MyST-NB build)."""
    nb_config = getattr(app.env, "mystnb_config", None)
    if nb_config is None:
        return None
    return Path(nb_config.output_folder, *f"{docname}.ipynb".split("/"))


def cached_notebook(app, docname: str) -> nbformat.NotebookNode | None:
    """``docname`` read as MyST-NB reads it, with its outputs merged from the execution
    cache; None if it is not a notebook, is not executed through the cache, or has no
    cached match."""
    from jupyter_cache import get_cache
    from myst_nb.core.read import create_nb_reader

    env = app.env
    nb_config = env.mystnb_config
    path = Path(env.doc2path(docname))
    text = path.read_text(encoding="utf8")
    reader = create_nb_reader(str(path), env.myst_config, nb_config, text)
    if reader is None:
        return None
    nb = reader.read(text)
    overrides = nb.metadata.get(nb_config.metadata_key, {})
    mode = overrides.get("execution_mode", nb_config.execution_mode)
    if mode != "cache" or not nb_config.execution_cache_path:
        return None
    try:
        _, merged = get_cache(nb_config.execution_cache_path).merge_match_into_notebook(
            nb
        )
    except KeyError:
        return None
    return merged


def complete_executed_notebook(app, doctree) -> None:
    """After a page is read: give its notebook in ``jupyter_execute`` its cached
    outputs."""
    docname = app.env.docname
    target = executed_path(app, docname)
    if target is None or not target.is_file():
        return
    merged = cached_notebook(app, docname)
    if merged is not None:
        nbformat.write(merged, target)


def add_notebook_download(app, pagename, templatename, context, doctree) -> None:
    """Copy the page's executed notebook into ``_sources`` and point the download menu
    at it."""
    if doctree is None or pagename not in app.env.all_docs:
        return
    source = executed_path(app, pagename)
    if source is None or not source.is_file():
        return
    target = Path(app.outdir, "_sources", *f"{pagename}.ipynb".split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(displayable(nbformat.read(source, as_version=4)), target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    app.connect("doctree-read", complete_executed_notebook)
    app.connect("html-page-context", add_notebook_download, priority=PRIORITY)
    return {"version": "1.1", "parallel_read_safe": True, "parallel_write_safe": True}
