"""Sphinx configuration of the book's static HTML edition; build it with `python docs/build.py`.

Why Sphinx + myst-nb + sphinx-book-theme: nbdev's own site generator needs Quarto, a binary that does not come
from a package registry; Sphinx + myst-nb install with pip alongside our nbdev pins (`pip check` stays clean),
read `.ipynb` files with their saved outputs without executing them (`nb_execution_mode = "off"`), parse the
notebooks' `$…$` / `$$…$$` math (myst's dollarmath), and document the library from its docstrings with
`sphinx.ext.autodoc`, all offline. MathJax 2 comes from the `jupyter-server-mathjax` wheel (the copy Jupyter
itself serves) and is copied into `_static/mathjax/`, so no page asks a CDN for anything.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # autodoc imports this checkout's noisy_teachers

project = "noisy-teachers"
author = "noisy-teachers developers"
copyright = "2026 onwards, noisy-teachers developers"
root_doc = "index"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# --- notebooks: saved outputs only, never executed -------------------------------------------------------------
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "myst"  # a cell's Markdown output (the results tables of chapter 10) as MyST: with tables
# the live widgets need a kernel: the site shows their text fallback ("... a live widget; run the notebook ...")
# under the static figure the chapter saves beside each one, and loads no widget JavaScript (it would be a CDN)
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.jupyter.widget-state+json", None)]

# --- math: $…$ and $$…$$ in markdown (also $$ inside a paragraph), typeset by a local MathJax 2 -----------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_dmath_double_inline = True
myst_update_mathjax = False  # myst would write a MathJax 3 config; ours is MathJax 2
myst_heading_anchors = 3
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"  # relative: under _static/
mathjax2_config = {
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web", "imageFont": None,
                 "linebreaks": {"automatic": True},  # a formula wider than its column breaks at an operator (phones)
                 # MathJax 2 measures fonts against a blank font at url(about:blank), which Chromium refuses with
                 # a console error; a local() name that does not exist behaves the same, silently
                 "styles": {"@font-face": {"font-family": "MathJax_Blank", "src": "local('MathJax_Blank_none')"}}},
    "SVG": {"font": "STIX-Web"},
    "MathMenu": {"showFontMenu": False},
    "fast-preview": {"disabled": True},
    # the hidden MathML copy for screen readers would ask for MathJax's TeX fonts, which the wheel does not ship
    "AssistiveMML": {"disabled": True},
    "menuSettings": {"assistiveMML": False},
    "messageStyle": "none",
    # typeset only what Sphinx marked as math (span/div.math, \(…\) and \[…\]): a $ or $$ that myst did not parse
    # stays visible, so the site test catches it, and a dollar in prose or output is never taken for TeX
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]], "processEscapes": False,
                "ignoreClass": ".*", "processClass": "math"},
}


def _copy_mathjax(app, exception):
    "Ship MathJax with the site: the files of the `jupyter-server-mathjax` wheel into `_static/mathjax/`."
    if exception is None and app.builder.format == "html":
        import jupyter_server_mathjax
        src = Path(jupyter_server_mathjax.__file__).parent / "static"
        shutil.copytree(src, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _markdown_docstring(app, what, name, obj, options, lines):
    "The library's docstrings are Markdown-ish: `code` becomes ``code``, a lone * a literal star (for reST)."
    parts = re.split(r"(?<!`)(`[^`\n]+`)(?!`)", "\n".join(lines))
    for i, p in enumerate(parts):
        if i % 2:
            nxt = parts[i + 1][:1] if i + 1 < len(parts) else ""
            parts[i] = f"``{p[1:-1]}``" + ("\\ " if nxt.isalnum() else "")
        else:  # keep *emphasis* pairs, escape every other lone star (`*args`, `a * b`)
            bits = re.split(r"((?<![\w*])\*(?=[^\s*])[^*\n]*?(?<=[^\s*])\*(?![\w*]))", p)
            parts[i] = "".join(b if j % 2 else re.sub(r"(?<![*\\])\*(?!\*)", r"\*", b) for j, b in enumerate(bits))
    lines[:] = "".join(parts).split("\n")


def setup(app):
    app.connect("build-finished", _copy_mathjax)
    app.connect("autodoc-process-docstring", _markdown_docstring)


# --- API pages ----------------------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"undoc-members": False}

# --- theme ----------------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "Distilling Knowledge from Noisy Teachers"
html_theme_options = {"show_toc_level": 2, "use_download_button": False, "use_fullscreen_button": False}
html_static_path = ["_static"]
html_css_files = ["site.css"]
html_js_files = ["site.js"]
html_context = {"default_mode": "light"}  # else the theme logs "invalid theme mode" to the console
html_show_sourcelink = False
html_copy_source = False  # the notebooks are in the repository; no second copy in _sources/
html_favicon = "favicon.svg"  # also spares the browser a request for /favicon.ico (a 404)
