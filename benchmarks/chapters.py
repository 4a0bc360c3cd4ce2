"""Time the execution of every chapter (or the ones named) and print a table.

    make benchmark                                   # all chapters, quick scale
    python benchmarks/chapters.py chapters/01_*.md   # some chapters

Each chapter runs in a fresh kernel in its own folder, exactly as the book build runs it, with
the scale, seed, thread and worker counts of the environment (``ESSAY_*``).  Wall time per
chapter and for its slowest cell go to stdout, each judged against its budget: every chapter
must execute in :data:`CHAPTER_BUDGET` seconds, and all of them together in
:data:`BOOK_BUDGET` seconds (a cold ``make book`` - install, execution and rendering - must
take at most ten minutes on two cores; the install and the rendering take about two of them).
A line over its budget is marked ``OVER``, and the command exits with status 1 if any is.
The same numbers, with the machine, its core count and the settings, are written as JSON to
``_build/benchmarks/chapters.json``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
#: Seconds one chapter may take to execute at the quick scale on two cores.
CHAPTER_BUDGET = 150.0
#: Seconds the chapters may take together: ten minutes for a cold `make book`, less about two
#: for the install and the rendering.
BOOK_BUDGET = 480.0


def run(chapter: Path) -> dict:
    nb = jupytext.read(chapter)
    cell_times = []
    client = NotebookClient(nb, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(chapter.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t0 = time.perf_counter()
            client.execute_cell(cell, index)
            cell_times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {"chapter": chapter.stem, "seconds": round(total, 1),
            "slowest_cell_seconds": round(max(cell_times, default=0.0), 1),
            "code_cells": len(cell_times)}


def verdict(seconds: float, budget: float) -> str:
    """``ok`` within the budget, ``OVER`` beyond it."""
    return "ok" if seconds <= budget else "OVER"


def main(argv: list[str]) -> int:
    chapters = [Path(a).resolve() for a in argv] or sorted((ROOT / "chapters").glob("[0-9]*.md"))
    settings = {k: v for k, v in os.environ.items() if k.startswith("ESSAY_")}
    print(f"{'chapter':<32} {'seconds':>8} {'budget':>7} {'':>4} {'slowest cell':>13}   "
          f"({settings or 'defaults'}, {os.cpu_count()} cores)")
    rows = []
    for chapter in chapters:
        row = run(chapter)
        row["budget"] = CHAPTER_BUDGET
        row["within_budget"] = row["seconds"] <= CHAPTER_BUDGET
        rows.append(row)
        print(f"{row['chapter']:<32} {row['seconds']:>8.1f} {CHAPTER_BUDGET:>7.0f} "
              f"{verdict(row['seconds'], CHAPTER_BUDGET):>4} {row['slowest_cell_seconds']:>13.1f}",
              flush=True)
    total = round(sum(r["seconds"] for r in rows), 1)
    print(f"{'total':<32} {total:>8.1f} {BOOK_BUDGET:>7.0f} {verdict(total, BOOK_BUDGET):>4}")
    over = [r["chapter"] for r in rows if not r["within_budget"]]
    if total > BOOK_BUDGET:
        over.append("total")
    out = ROOT / "_build" / "benchmarks" / "chapters.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": settings, "machine": platform.platform(),
                               "cores": os.cpu_count(), "python": sys.version.split()[0],
                               "chapter_budget": CHAPTER_BUDGET, "book_budget": BOOK_BUDGET,
                               "total_seconds": total, "over_budget": over,
                               "chapters": rows}, indent=2))
    print(f"written {out.relative_to(ROOT)}")
    print("over budget: " + ", ".join(over) if over else "every chapter and the total are within "
          "budget")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
