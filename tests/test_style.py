"""Code a reader can read in the book's column: every line of the package (``src/``), of the
tests, of the book's extensions and of the chapters' code cells is at most 88 characters long
(:data:`LIMIT`, black's and ruff's default), so that code blocks do not run past the page."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 88
PYTHON = sorted([*ROOT.glob("src/**/*.py"), *ROOT.glob("_ext/*.py")])
PAGES = sorted([*ROOT.glob("chapters/*.md"), ROOT / "index.md"])


def long_lines(text: str, limit: int = LIMIT) -> list[tuple[int, int]]:
    """``(line number, length)`` of every line of ``text`` longer than ``limit``."""
    return [(i, len(line)) for i, line in enumerate(text.splitlines(), 1) if len(line) > limit]


def test_long_lines_are_found():
    assert long_lines("short\n" + "x" * 89 + "\n" + "y" * 88) == [(2, 89)]


@pytest.mark.parametrize("path", PYTHON, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_lines_fit(path):
    found = long_lines(path.read_text(encoding="utf8"))
    assert not found, f"{path.relative_to(ROOT)}: lines longer than {LIMIT}: {found}"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_cells_fit(path):
    notebook = jupytext.read(path)
    found = [(n, i, length) for n, cell in enumerate(notebook.cells)
             if cell.cell_type == "code"
             for i, length in long_lines(cell.source)]
    assert not found, (f"{path.relative_to(ROOT)}: code lines longer than {LIMIT} "
                       f"(cell, line, length): {found}")
