#!/usr/bin/env python
"""The chapters as nbdev's documentation build runs them.

    python tests/test_docs_cells.py

`nbdev_docs` (which needs Quarto) does not run a notebook: in every chapter that exports a module it runs only the
export cells, the cells that import something and the `show_doc` cells (nbdev's `exec_show_docs` processor), and skips
the rest. A cell that mixes imports with other code then runs without the cells before it: a `NameError` that stops
the documentation build, and nbdev warns "Found cells containing imports and other code".

This runs nbdev's own processors (front matter, language, `show_doc` cells, `exec_show_docs`) over every notebook in
`nbs/`, each in the notebook's folder, and fails on any error or any such warning. Prints one line starting with
`DOCS CELLS PASSED` or `DOCS CELLS FAILED` and exits 0 or 1.
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

from nbdev.process import NBProcessor
from nbdev.processors import FrontmatterProc, add_show_docs, exec_show_docs, populate_language

NBS = Path(__file__).resolve().parent.parent / "nbs"


def check(nb: Path) -> list[str]:
    "The problems of notebook `nb` under nbdev's documentation pass: an error, or cells mixing imports and code."
    here = Path.cwd()
    os.chdir(nb.parent)                       # as nbdev runs it (a chapter may change the working folder)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                NBProcessor(nb, procs=[FrontmatterProc, populate_language, add_show_docs, exec_show_docs]).process()
                problems = []
            except Exception as e:            # nbdev's "Error in cell N" with the cell's source, caused by the real error
                problems = [f"{str(e).splitlines()[0]} {e.__cause__!r}"]
    finally:
        os.chdir(here)
    mixed = [str(w.message).split("---")[1].strip().splitlines()[0] for w in caught
             if "imports and other code" in str(w.message)]
    return problems + [f"a cell mixes imports and other code (put the imports in the import cell): {m!r} ..."
                       for m in mixed]


def collapsed(nb: Path) -> list[str]:
    "A cell collapsed in JupyterLab (folded on the site) may hold a test, never exported code or prose a reader needs."
    cells = json.loads(nb.read_text())["cells"]
    return [f"cell {c.get('id')} is collapsed but is {'exported code' if c['cell_type'] == 'code' else 'markdown'}"
            for c in cells if c.get("metadata", {}).get("jupyter", {}).get("source_hidden")
            and (c["cell_type"] != "code" or "#| export" in "".join(c["source"]))]


def main() -> int:
    failed = 0
    for nb in sorted(NBS.glob("*.ipynb")):
        problems = check(nb) + collapsed(nb)
        print(f"{nb.name}: {'ok' if not problems else ''}", flush=True)
        for p in problems: print(f"    {p}", flush=True)
        failed += bool(problems)
    print(f"DOCS CELLS {'PASSED' if not failed else 'FAILED'}: {failed} notebook(s) with problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
