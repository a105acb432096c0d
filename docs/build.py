#!/usr/bin/env python
"""Build the static HTML edition of the book:  `python docs/build.py`  ->  `_site/index.html`.

Nothing is executed: the committed notebooks are read with their saved outputs. Steps:

1. copy `nbs/*.ipynb` into `build/site-src/` (git-ignored), prepared for Sphinx (`prepare_notebook`):
   cells flagged `#| hide` are dropped, every other `#| ...` directive line is stripped (`#| echo: false` and
   `#| output: false` become myst-nb's remove-input / remove-output tags, and a cell collapsed in JupyterLab
   (`jupyter.source_hidden`) gets the hide-input tag: folded, a click away; a cell whose printed output is prose,
   not a text table, gets the output-wraps tag: its long lines wrap instead of scrolling), the widget state is
   removed (the site loads no widget JavaScript), and each chapter that exports a module gets a link to that
   module's API page under its title;
2. write the front page's table of contents from the chapter map in `nbs/index.ipynb` (`chapter_order`), so
   the site's order and titles cannot drift from it, and one API page per exported module (`automodule`);
3. run `sphinx-build -b html` with `docs/conf.py` into `build/site-html/` (myst-nb writes the figures beside it,
   in `build/jupyter_execute/`; MathJax is copied in by conf.py), then copy the finished site to `_site/`.

Options: `--out DIR` (default `_site`), `--src DIR` (default `build/site-src`), `-q` for a quiet Sphinx.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NBS = REPO / "nbs"
DIRECTIVE = re.compile(r"^\s*#\|\s*(\S+)")
TABLE_ROW = re.compile(r"^\|.*$", re.M)        # a row of a Markdown table
WORD_UNDERSCORE = re.compile(r"(?<=\w)_(?=\w)")  # an underscore inside a name (never emphasis there)
FIG_ALT = re.compile(r"^\s*#\|\s*fig-alt:\s*(.+)$")


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def directives(cell: dict) -> list[str]:
    "The nbdev directives (`hide`, `export`, `default_exp`, ...) of a code cell, from its leading `#|` lines."
    out = []
    for line in _src(cell).splitlines():
        m = DIRECTIVE.match(line)
        if m:
            out.append(m.group(1).rstrip(":"))
        elif line.strip():
            break
    return out


def _first(nb: dict, cell_type: str, pattern: str) -> str | None:
    "The first group of `pattern` (multi-line) in the first `cell_type` cell where it matches, or None."
    for cell in nb["cells"]:
        if cell["cell_type"] == cell_type and (m := re.search(pattern, _src(cell), re.M)):
            return m.group(1)
    return None


def default_exp(nb: dict) -> str | None:
    "The module a notebook exports to (`#| default_exp NAME`), or None."
    return _first(nb, "code", r"^\s*#\|\s*default_exp\s+(\S+)")


def title(nb: dict) -> str:
    "A notebook's first level-1 heading."
    t = _first(nb, "markdown", r"^#\s+(.+?)\s*$")
    if t is None: raise ValueError("notebook has no '# title' heading")
    return t


def number(stem: str, order: list[str]) -> str:
    "A chapter's number as the front page's chapter map gives it: `00_checks`, `00_logit_regression` are 00a and 00b."
    same = [s for s in order if s.split("_")[0] == stem.split("_")[0]]
    return stem.split("_")[0] + ("abcdefghij"[same.index(stem)] if len(same) > 1 else "")


def chapter_order(index_nb: dict, available: list[str]) -> list[str]:
    """Notebook stems in the order of the chapter map table in `index.ipynb` ("## The chapters").

    A row names its notebook (`` `00_logit_regression.ipynb` ``) or a range of chapter numbers in its first
    column (`10–13`), which stands for every notebook in `available` whose number lies in the range."""
    text = next(_src(c) for c in index_nb["cells"] if c["cell_type"] == "markdown" and "## The chapters" in _src(c))
    order = []
    for line in text.splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) < 2 or not re.match(r"^\d", cols[0]):
            continue  # header, separator or prose
        named = re.findall(r"`(\d\d_[^`]+)\.ipynb`", line)
        if named:
            stems = named
        else:
            m = re.match(r"^(\d+)\s*[–-]\s*(\d+)$", cols[0])
            if not m:
                raise ValueError(f"chapter map row names no notebook: {line!r}")
            lo, hi = int(m.group(1)), int(m.group(2))
            stems = sorted(s for s in available if re.match(r"^\d+_", s) and lo <= int(s.split("_")[0]) <= hi)
        for s in stems:
            if s not in available:
                raise ValueError(f"chapter map names {s}.ipynb, which is not in nbs/")
            if s not in order:
                order.append(s)
    if not order:
        raise ValueError("no chapters found in the chapter map of index.ipynb")
    return order


def prepare_notebook(nb: dict, api_link: str | None = None) -> dict:
    """A copy of `nb` for the site: `#| hide` cells dropped, directive lines stripped (a `#| fig-alt:` line, Quarto's
    description of a cell's figure, becomes the alt text of its images), code cells left empty without outputs
    dropped, the spaces around ± in Markdown outputs made non-breaking (a table cell's "4.10 ± 1.93" is one number) and
    a table's arm names given break points after their underscores (`noisy_sigma0.4_alpha0.15` may end a line at each
    `_`, never mid-token), a `#| slow` cell's code headed by a comment saying its output is a real run's (the site shows
    no directive), widget state removed, and (if given) `api_link` markdown put under the title."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            if "hide" in directives(cell):
                continue
            flags = {re.sub(r"\s+", "", l.split("|", 1)[1]) for l in _src(cell).splitlines() if DIRECTIVE.match(l)}
            tags = [t for f, t in (("echo:false", "remove-input"), ("output:false", "remove-output")) if f in flags]
            if cell.get("metadata", {}).get("jupyter", {}).get("source_hidden") and not tags:
                tags = ["hide-input"]  # collapsed in JupyterLab: folded on the site, a click away
            if output_wraps(cell):
                tags.append("output-wraps")
            if tags:  # nbdev's "show only the output" / "only the code", as myst-nb cell tags
                cell.setdefault("metadata", {}).setdefault("tags", []).extend(tags)
            for out in cell.get("outputs", []):  # a results table's "mean ± sd" stays on one line in a narrow column
                if "text/markdown" in out.get("data", {}):
                    md = "".join(out["data"]["text/markdown"]).replace(" ± ", "\u00a0±\u00a0")
                    out["data"]["text/markdown"] = TABLE_ROW.sub(lambda m: WORD_UNDERSCORE.sub("_<wbr>", m[0]), md)
            alt = next((m.group(1).strip() for m in map(FIG_ALT.match, _src(cell).splitlines()) if m), None)
            if alt:  # read aloud and shown in place of the figure, instead of the image file's hash
                cell.setdefault("metadata", {}).setdefault("mystnb", {}).setdefault("image", {})["alt"] = alt
            lines = [l for l in _src(cell).splitlines() if not DIRECTIVE.match(l)]
            if "slow" in flags:                # the reader sees which outputs came from a real run, not a tiny test
                lines.insert(0, "# slow: nbdev_test skips this cell; its output below was saved from a real run")
            cell["source"] = "\n".join(lines).strip("\n")
            if not cell["source"].strip() and not cell.get("outputs"):
                continue
        cells.append(cell)
    if api_link:
        at = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and re.search(r"^#\s", _src(c), re.M)), -1)
        cells.insert(at + 1, {"cell_type": "markdown", "id": "site-api-link", "metadata": {}, "source": api_link})
    nb["cells"] = cells
    nb.setdefault("metadata", {}).pop("widgets", None)
    return nb


COLUMNS = re.compile(r"\S {2,}\S")            # words set apart by two spaces or more: a text table's columns
LAID_OUT = re.compile(r"^ {4,}\S|(\S)\1{9,}")  # an indented line (a record's keys, a caret under what it marks) or a rule


def output_wraps(cell: dict) -> bool:
    """Whether a code cell's text output is prose, not laid out: at most one line with words set apart by two spaces or
    more (a table has a header and rows), no line indented by four spaces or more, no rule of ten equal characters.
    Its long lines then wrap on the site (tag `output-wraps`, styled in `_static/site.css`); a text table, a banner or an
    indented listing keeps its layout and scrolls sideways instead."""
    texts = ["".join(o.get("text", "")) for o in cell.get("outputs", [])]
    texts += ["".join(o["data"]["text/plain"]) for o in cell.get("outputs", []) if "text/plain" in o.get("data", {})]
    lines = [l for t in texts for l in t.splitlines()]
    return bool(lines) and sum(bool(COLUMNS.search(l)) for l in lines) < 2 and not any(LAID_OUT.search(l) for l in lines)


RESULTS_LINK = re.compile(r"\]\(\.\./(results/[^)\s]+)\)")


def link_results(nb: dict, src: Path) -> None:
    """The markdown links of `nb` to the repository's `results/` files (`](../results/...)`, how chapters show a
    committed figure): each file copied into the site's sources under `results/`, and the link made local to them."""
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = _src(cell)
        for rel in RESULTS_LINK.findall(text):
            if not (REPO / rel).is_file():
                raise FileNotFoundError(f"{rel}, linked from a chapter, does not exist")
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / rel, src / rel)
        cell["source"] = RESULTS_LINK.sub(r"](\1)", text)


def write_sources(src: Path) -> dict:
    "Write the prepared notebooks, the front page's toctree and the API pages into `src`; return the plan."
    if src.exists():
        shutil.rmtree(src)
    (src / "api").mkdir(parents=True)
    nbs = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(NBS.glob("*.ipynb"))}
    order = chapter_order(nbs["index"], [s for s in nbs if s != "index"])
    modules = {s: default_exp(nbs[s]) for s in order if default_exp(nbs[s])}
    for stem in order:
        mod = modules.get(stem)
        link = (f"> **Library API** of this chapter: {{doc}}`noisy_teachers.{mod} <api/{mod}>`" if mod else None)
        out = prepare_notebook(nbs[stem], link)
        link_results(out, src)
        (src / f"{stem}.ipynb").write_text(json.dumps(out, indent=1), encoding="utf-8")
    toc = ["```{toctree}", ":caption: Chapters", ":maxdepth: 1", ""]
    toc += [f"{number(s, order)} · {title(nbs[s])} <{s}>" for s in order]
    toc += ["```", "", "```{toctree}", ":caption: Library API", ":maxdepth: 1", ""]
    toc += [f"noisy_teachers.{m} <api/{m}>" for m in modules.values()] + ["```"]
    index = prepare_notebook(nbs["index"])
    index["cells"].append({"cell_type": "markdown", "id": "site-toctree", "metadata": {}, "source": "\n".join(toc)})
    (src / "index.ipynb").write_text(json.dumps(index, indent=1), encoding="utf-8")
    for stem, mod in modules.items():
        (src / "api" / f"{mod}.md").write_text(
            f"# `noisy_teachers.{mod}`\n\nExported from chapter {{doc}}`{number(stem, order)} · {title(nbs[stem])} "
            f"<../{stem}>`.\n\n```{{eval-rst}}\n.. automodule:: noisy_teachers.{mod}\n   :members:\n```\n", encoding="utf-8")
    return {"order": order, "modules": modules}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "_site"))
    ap.add_argument("--src", default=str(REPO / "build" / "site-src"))
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    src, out = Path(a.src).resolve(), Path(a.out).resolve()
    if out.exists() and any(out.iterdir()) and not (out / ".buildinfo").exists():
        print(f"refusing to replace {out}: it is not empty and not a site this script built", file=sys.stderr)
        return 2
    shutil.rmtree(out, ignore_errors=True)  # a failed build leaves no site behind, never a stale one
    plan = write_sources(src)
    print(f"prepared {len(plan['order'])} chapters + front page and {len(plan['modules'])} API pages in {src}")
    html = src.parent / "site-html"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(REPO / "docs"), "-d", str(src.parent / "site-doctrees"),
           "-E", "--keep-going", "-W", str(src), str(html)] + (["-q"] if a.quiet else [])
    rc = subprocess.call(cmd, cwd=REPO)
    if rc == 0:                               # the theme's page templates, copied as static files, are no pages
        shutil.copytree(html, out, ignore=shutil.ignore_patterns("webpack-macros.html", "sbt-webpack-macros.html"))
    print(f"site {'built' if rc == 0 else 'FAILED'} in {time.monotonic() - t0:.0f} s: open {out / 'index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
