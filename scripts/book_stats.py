"""How heavy are the library and the book? The measures of a lean book, printed from the working tree.

    python scripts/book_stats.py            # from any folder: it reads the tree it is in

- the library: lines of each module of `noisy_teachers/` (`wc -l`; `_modidx.py`, nbdev's index, left out), and the
  lines that are neither blank nor comments (nbdev writes a `# %% notebook #cell` comment and a blank line per cell);
- the export cells: how many, and the median and largest number of lines;
- the notebooks: bytes in all, and what they hold: markdown, code, images and text outputs (base64 and text as stored),
  the rest being nbformat's JSON.
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
root = Path(__file__).resolve().parent.parent
if not (root / "settings.ini").is_file(): sys.exit(f"book_stats.py: no settings.ini in {root}")

modules = sorted(p for p in (root / "noisy_teachers").glob("*.py") if p.name != "_modidx.py")
total = code = 0
print(f"{'module':<18}{'lines':>7}{'code':>7}")
for p in modules:
    lines = p.read_text().splitlines()
    n_code = sum(1 for l in lines if l.strip() and not l.lstrip().startswith("#"))
    total, code = total + len(lines), code + n_code
    print(f"{p.name:<18}{len(lines):>7}{n_code:>7}")
print(f"{'library':<18}{total:>7}{code:>7}\n")

export_lines, kinds = [], dict(markdown=0, code=0, images=0, text=0)
notebooks = sorted((root / "nbs").glob("*.ipynb"))
for nb_path in notebooks:
    for cell in json.loads(nb_path.read_text())["cells"]:
        source = "".join(cell["source"])
        kinds["markdown" if cell["cell_type"] == "markdown" else "code"] += len(source.encode())
        if cell["cell_type"] == "code" and source.startswith("#| export"): export_lines.append(len(source.splitlines()))
        for out in cell.get("outputs", []):
            for mime, value in out.get("data", {}).items():
                kinds["images" if mime.startswith("image/") else "text"] += len("".join(value).encode())
            kinds["text"] += len("".join(out.get("text", "")).encode())
print(f"export cells: {len(export_lines)}, median {statistics.median(export_lines):g} lines, largest {max(export_lines)}")
size = sum(p.stat().st_size for p in notebooks)
print(f"notebooks: {len(notebooks)}, {size:,} bytes: " + ", ".join(f"{k} {v:,}" for k, v in kinds.items())
      + f", JSON {size - sum(kinds.values()):,}")
