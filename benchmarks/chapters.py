"""Time the execution of every chapter (or the ones named) and print a table.

    make benchmark                                   # all chapters, quick scale
    python benchmarks/chapters.py chapters/01_*.md   # some chapters

Each chapter runs in a fresh kernel in its own folder, exactly as the book build runs it, with
the scale, seed and thread count of the environment (``ESSAY_*``).  Wall time per chapter and for
its slowest cell go to stdout; the same numbers, with the machine and settings, are written as
JSON to ``_build/benchmarks/chapters.json``.
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


def main(argv: list[str]) -> None:
    chapters = [Path(a).resolve() for a in argv] or sorted((ROOT / "chapters").glob("[0-9]*.md"))
    settings = {k: v for k, v in os.environ.items() if k.startswith("ESSAY_")}
    print(f"{'chapter':<32} {'seconds':>8} {'slowest cell':>13}   ({settings or 'defaults'}, "
          f"{os.cpu_count()} cores)")
    rows = []
    for chapter in chapters:
        row = run(chapter)
        rows.append(row)
        print(f"{row['chapter']:<32} {row['seconds']:>8.1f} {row['slowest_cell_seconds']:>13.1f}",
              flush=True)
    print(f"{'total':<32} {sum(r['seconds'] for r in rows):>8.1f}")
    out = ROOT / "_build" / "benchmarks" / "chapters.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": settings, "machine": platform.platform(),
                               "cores": os.cpu_count(), "python": sys.version.split()[0],
                               "chapters": rows}, indent=2))
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
