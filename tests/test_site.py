#!/usr/bin/env python
"""Offline browser test of the book's static HTML edition (built by `python docs/build.py` into `_site/`).

    python tests/test_site.py [--site DIR] [--all]

1. Without a browser: `docs/build.py`'s notebook preparation on a made-up notebook, and the front page's table of contents lists the chapters of the chapter map in
   `nbs/index.ipynb`, in its order, under each notebook's own title, and covers every numbered notebook.
2. Serves the site with `python -m http.server` on 127.0.0.1 at a free port and opens the front page and
   chapters 00, 10 and 20 in headless Chromium (Debian's `/usr/bin/chromium` driven by Playwright; never
   `playwright install`). Every request that is not to that local server is blocked and counted as a failure,
   as is every failed request or HTTP error. On each page it checks:
   (a) MathJax typeset the math: every `.math` element Sphinx wrote (`.math.notranslate`) became MathJax output, no MathJax error,
       and no raw `$`, `$$`, `\\(` or `\\[` is left in the visible text outside code (MathJax only typesets
       what Sphinx marked as math, so a formula myst did not parse shows up here); inline formulas (in
       paragraphs, lists, tables, headings) sit on the line, not above it: a typeset formula's box reaches below
       the text's baseline (its depth), where one that rides above the line (the theme's `overflow: hidden` on
       MathJax's box) ends on it; a display formula wider than the column scrolls sideways, not cut off;
   (b) every `<img>` loaded (naturalWidth > 0) and has a description (alt text, not its file name), and the chapters show their figures (saved outputs, and committed results figures linked from the text);
   (c) no console error and no uncaught page error;
   (d) no nbdev directive (`#| ...`) or hidden cell shows, and a chapter that exports a module links to its
       API page (which shows the module's docstrings); chapter 20's widgets show their text fallback, no
       empty widget placeholder;
   (e) printed prose wraps at the column's width: no output `docs/build.py` tags `output-wraps` scrolls sideways
       (text tables may).
3. Opens the same pages and an API page on a 390-px phone: none is wider than the screen.
4. Keeps a screenshot of each page in `artifacts/site-<page>.png`.

Prints one line starting with `SITE TEST PASSED` or `SITE TEST FAILED` and exits 0 or 1.
"""
from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs"))
from build import chapter_order, prepare_notebook, title  # noqa: E402  (the same code the build uses)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOST = "127.0.0.1"
PAGES = {"index": "index.html", "00": "00_logit_regression.html", "10": "10_mnist.html", "20": "20_explore.html"}
API_OF = {"00": "api/losses.html", "20": "api/widgets.html"}  # chapter -> the API page it must link to
MIN_FIGURES = {"00": 1, "10": 5, "20": 2}  # figures each chapter must show (it has more)

T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def check_toc(site: Path) -> list[str]:
    "The front page's 'Chapters' toctree against the chapter map of nbs/index.ipynb and the notebooks in nbs/."
    nbs = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted((REPO / "nbs").glob("*.ipynb"))}
    numbered = [s for s in nbs if re.match(r"^\d", s)]
    want = chapter_order(nbs["index"], numbered)
    errs = []
    if sorted(want) != sorted(numbered):
        errs.append(f"chapter map of index.ipynb covers {want}, nbs/ holds {numbered}")
    html = (site / "index.html").read_text(encoding="utf-8")
    tocs = re.findall(r'<p [^>]*class="caption"[^>]*>\s*<span class="caption-text">Chapters</span>\s*</p>\s*<ul[^>]*>(.*?)</ul>',
                      html, re.S)  # the page's own toctree and the sidebar's
    if not tocs:
        return errs + ["index.html has no 'Chapters' table of contents"]
    for toc in tocs:
        links = re.findall(r'<a class="reference internal" href="([^"#]+)\.html">(.*?)</a>', toc, re.S)
        got = [h for h, _ in links]
        if got != want:
            errs.append(f"site's chapter order {got} != chapter map's {want}")
        for (stem, text) in links:
            plain = re.sub(r"<[^>]+>", "", text)
            for a, b in (("&#8217;", "’"), ("&#x27;", "'"), ("&#39;", "'"), ("&amp;", "&")):
                plain = plain.replace(a, b)
            if stem in nbs and title(nbs[stem]) not in plain:
                errs.append(f"toc entry {plain!r} lacks the title of {stem}: {title(nbs[stem])!r}")
    return errs


def check_prepare() -> list[str]:
    "The notebook preparation on a made-up notebook: hidden cells dropped, directives stripped, map ranges expanded."
    def code(src, outputs=()):
        return {"cell_type": "code", "id": src[:8], "metadata": {}, "source": src, "outputs": list(outputs),
                "execution_count": None}
    nb = {"metadata": {"widgets": {"state": {}}}, "nbformat": 4, "nbformat_minor": 5, "cells": [
        code("#| default_exp losses"), code("#| hide\nfrom nbdev.showdoc import *"),
        {"cell_type": "markdown", "id": "t", "metadata": {}, "source": "# Title\n\n> summary"},
        code("#| export\ndef f(x): return x"), code("#|slow\n#| eval: false\nrun()", [{"output_type": "stream"}]),
        code("#| echo: false\nshow()"), dict(code("check()"), metadata={"jupyter": {"source_hidden": True}}),
        code("#| slow\n#| fig-alt: a curve: falling\nplot()", [{"output_type": "display_data"}]),
        code("say()", [{"output_type": "stream", "text": ["one long line of prose, one space apart\n"]}]),
        code("table()", [{"output_type": "execute_result", "data": {"text/plain": ["arm   error\n", "l2    1.2"]}}]),
        code("gap()", [{"output_type": "stream", "text": ["|w| = 0.6;  K = 20: a line with one double space\n"]}]),
        code("warn()", [{"output_type": "stream", "text": ["!" * 78 + "\n", "the teacher is weak\n"]}]),
        code("dump()", [{"output_type": "stream", "text": ["record:\n", "        metrics: {}\n"]}]),
        code("rows()", [{"output_type": "display_data", "data": {"text/markdown": ["| l2 | 1.07 ± 0.06 |\n",
                                                                                   "| noisy_sigma0.1 | *best_noisy* |\n", "a_b\n"]}}])]}
    out = prepare_notebook(nb, "API LINK")
    got = [(c["cell_type"], c["source"]) for c in out["cells"]]
    slow = "# slow: nbdev_test skips this cell; its output below was saved from a real run\n"
    want = [("markdown", "# Title\n\n> summary"), ("markdown", "API LINK"), ("code", "def f(x): return x"),
            ("code", slow + "run()"), ("code", "show()"), ("code", "check()"), ("code", slow + "plot()"), ("code", "say()"),
            ("code", "table()"), ("code", "gap()"), ("code", "warn()"), ("code", "dump()"), ("code", "rows()")]
    errs = [] if got == want else [f"prepare_notebook gave {got}, want {want}"]
    tags = [c["metadata"].get("tags") for c in out["cells"]]
    want_tags = [["remove-input"], ["hide-input"], None, ["output-wraps"], None, ["output-wraps"], None, None]
    if tags[-9:-1] != want_tags:
        errs.append(f"tags of cells 5 to 12 {tags[-9:-1]}: want echo: false -> remove-input, collapsed -> hide-input, "
                    "prose output -> output-wraps (one double space included); a text table, a banner, an indented "
                    "listing -> none")
    if out["cells"][-7]["metadata"].get("mystnb") != {"image": {"alt": "a curve: falling"}}:
        errs.append(f"#| fig-alt gave metadata {out['cells'][-7]['metadata']}")
    if out["cells"][-1]["outputs"][0]["data"]["text/markdown"] != ("| l2 | 1.07\u00a0±\u00a00.06 |\n"
                                                                  "| noisy_<wbr>sigma0.1 | *best_<wbr>noisy* |\na_b\n"):
        errs.append(f"a Markdown output's ± kept breakable spaces, or a table's names got no break points after their "
                    f"underscores (or text outside tables did): {out['cells'][-1]['outputs'][0]['data']}")
    if "widgets" in out["metadata"] or len(nb["cells"]) != 14 or "\u00a0" in str(nb):
        errs.append("prepare_notebook kept the widget state or changed its input")
    index = {"cells": [{"cell_type": "markdown", "source": "## The chapters\n\n| # | notebook |\n|---|---|\n"
                        "| 01 | `01_b.ipynb` |\n| 00 | `00_a.ipynb` |\n| 10–11 | benchmarks |\n"}]}
    order = chapter_order(index, ["00_a", "01_b", "10_c", "11_d", "20_e"])
    if order != ["01_b", "00_a", "10_c", "11_d"]:
        errs.append(f"chapter_order gave {order}")
    return errs


PAGE_STATE_JS = r"""
() => {
  const visible = document.querySelector('main') || document.body;
  const clone = visible.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, .MathJax_Preview').forEach(e => e.remove());
  const text = clone.textContent;
  const imgs = [...document.images].map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0,
                                               alt: i.getAttribute('alt') || ''}));
  const code = [...document.querySelectorAll('.cell_input pre')].map(p => p.textContent);
  return {
    mathSource: document.querySelectorAll('.math.notranslate').length,
    mathScripts: document.querySelectorAll('script[type^="math/tex"]').length,
    mathRendered: document.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_SVG, .MathJax_CHTML, mjx-container').length,
    mathErrors: document.querySelectorAll('.MathJax_Error, merror, .merror, [data-mjx-error]').length,
    rawDisplay: (text.match(/\$/g) || []).length,
    rawParen: (text.match(/\\\(|\\\[/g) || []).length,
    imgs,
    figures: document.querySelectorAll('.bd-article img').length,
    directiveLines: code.filter(t => /^\s*#\|/m.test(t)).length,
    hiddenCell: code.some(t => t.includes('from nbdev.showdoc import')),
    apiLinks: [...document.querySelectorAll('a')].map(a => a.getAttribute('href') || '').filter(h => h.includes('api/')),
    widgetPlaceholders: document.querySelectorAll('.jupyter-widgets, .widget-area, script[type*="widget"]').length,
    widgetFallback: [...document.querySelectorAll('.cell_output')].filter(o => o.textContent.includes('a live widget')).length,
    inlineMath: [...document.querySelectorAll('span.math.notranslate')].filter(m => !m.closest('div.math')).map(m => {
      const mark = document.createElement('span');            // a zero-size box: its bottom is the line's baseline
      mark.style.cssText = 'display:inline-block;width:0;height:0';
      m.parentNode.insertBefore(mark, m);
      const base = mark.getBoundingClientRect().bottom; mark.remove();
      const box = m.querySelector('.MathJax span.math');
      return box && box.getBoundingClientRect().height > 0 ? box.getBoundingClientRect().bottom - base : null;
    }).filter(x => x !== null),
    cutMath: [...document.querySelectorAll('div.math')].filter(d => {     // wider than the column, and not scrollable
      const box = d.querySelector('.MathJax span.math');
      const wide = box && box.getBoundingClientRect().right > d.getBoundingClientRect().right + 1;
      return wide && !(d.scrollWidth > d.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(d).overflowX));
    }).map(d => d.textContent.trim().slice(0, 40)),
    scrollingProse: [...document.querySelectorAll('.tag_output-wraps .cell_output pre')]
      .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 60)),
    wideTables: [...document.querySelectorAll('div.cell_output table')].filter(t =>
      t.scrollWidth > (t.closest('.pst-scrollable-table-container') || t.parentElement).clientWidth + 1)
      .map(t => t.rows[0].innerText.replace(/\s+/g, ' ').slice(0, 50)),
  };
}
"""


def typeset(page) -> bool:
    "Whether the page has math; if so, once MathJax 2 (which typesets asynchronously) has run its queue."
    has_math = page.evaluate("() => document.querySelectorAll('.math.notranslate').length") > 0
    if has_math:
        page.wait_for_function("() => window.MathJax && window.MathJax.Hub", timeout=20_000)
        page.evaluate("() => new Promise(r => MathJax.Hub.Queue(() => r(true)))")
    return has_math


def check_page(page, base: str, key: str, path: str, problems: list[str], shot: Path) -> str:
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(f"uncaught: {e}"))
    page.goto(f"{base}/{path}", wait_until="load", timeout=60_000)
    try:
        has_math = typeset(page)
    except Exception as e:  # noqa: BLE001  (only a page with math waits for MathJax)
        has_math = True
        problems.append(f"{key}: MathJax did not load or run ({type(e).__name__}: {str(e)[:200]})")
    page.evaluate("async () => { for (let y = 0; y < document.body.scrollHeight; y += 800) {"
                  " window.scrollTo(0, y); await new Promise(r => setTimeout(r, 20)); } window.scrollTo(0, 0); }")
    page.wait_for_load_state("networkidle", timeout=30_000)
    st = page.evaluate(PAGE_STATE_JS)
    p = []
    if has_math and (st["mathScripts"] < st["mathSource"] or st["mathRendered"] < st["mathSource"]):
        p.append(f"math not typeset: {st['mathSource']} math elements, {st['mathScripts']} parsed, "
                 f"{st['mathRendered']} rendered by MathJax")
    if st["mathErrors"]:
        p.append(f"{st['mathErrors']} MathJax errors")
    if st["cutMath"]:
        p.append(f"{len(st['cutMath'])} display formulas cut off at the column's edge (wider, and not scrollable): {st['cutMath'][:2]}")
    raised = [d for d in st["inlineMath"] if d <= 0.5]
    if len(raised) > 0.1 * len(st["inlineMath"]):
        p.append(f"{len(raised)} of {len(st['inlineMath'])} inline formulas ride above the line (their box ends on the baseline)")
    if st["rawDisplay"] or st["rawParen"]:
        p.append(f"raw TeX left in the text: {st['rawDisplay']} '$', {st['rawParen']} '\\(' or '\\['")
    bad = [i["src"] for i in st["imgs"] if not i["ok"]]
    if bad:
        p.append(f"{len(bad)} of {len(st['imgs'])} images did not load: {bad[:3]}")
    unsaid = [i["src"] for i in st["imgs"] if not i["alt"].strip() or i["alt"] == i["src"] or i["alt"].startswith("_images/")]
    if unsaid:
        p.append(f"{len(unsaid)} images without a description (alt text; a `#| fig-alt:` line for a cell's figure): {unsaid[:3]}")
    if st["figures"] < MIN_FIGURES.get(key, 0):
        p.append(f"only {st['figures']} figures shown, expected at least {MIN_FIGURES[key]}")
    if st["directiveLines"] or st["hiddenCell"]:
        p.append(f"nbdev directives in {st['directiveLines']} code cells; hidden cell shown: {st['hiddenCell']}")
    if key in API_OF and not any(h.endswith(API_OF[key]) for h in st["apiLinks"]):
        p.append(f"no link to {API_OF[key]} (links: {st['apiLinks'][:5]})")
    if key == "20" and (st["widgetPlaceholders"] or st["widgetFallback"] < 2):
        p.append(f"widgets: {st['widgetPlaceholders']} placeholders, {st['widgetFallback']} text fallbacks (want 0, 2)")
    if st["scrollingProse"]:
        p.append(f"{len(st['scrollingProse'])} prose outputs scroll sideways instead of wrapping: {st['scrollingProse'][:2]}")
    if st["wideTables"]:                   # a verdict column off-screen, a scrollbar under a 2,000-px table
        p.append(f"{len(st['wideTables'])} results tables wider than the column: {st['wideTables'][:2]}")
    if console:
        p.append(f"{len(console)} console errors: {console[:3]}")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    problems += [f"{key}: {x}" for x in p]
    return (f"{key}: {st['mathScripts']}/{st['mathSource']} formulas typeset, {len(st['imgs']) - len(bad)}/{len(st['imgs'])} images loaded, {st['figures']} figures, "
            f"{len(console)} console errors" + ("" if not p else f" -- {len(p)} PROBLEMS"))


def check_phone(page, base: str, path: str, problems: list[str]) -> str:
    """One page on a 390-px phone: nothing makes the page wider than the screen (a long inline formula, inline code,
    an API signature); tables, code and outputs scroll inside their own boxes."""
    page.goto(f"{base}/{path}", wait_until="load", timeout=60_000)
    typeset(page)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > 391:
        wide = page.evaluate("""() => [...document.querySelectorAll('.bd-article *')].filter(e =>
            e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('pre, table, div.math, .cell_output, .highlight'))
            .slice(-1).map(e => e.tagName + ': ' + e.textContent.trim().slice(0, 50))""")
        problems.append(f"phone {path}: the page is {width} px wide on a 390-px screen ({wide})")
    page.close()
    return f"phone {path.removesuffix('.html')} {width} px"


def check_api_names(site: Path) -> list[str]:
    "Every public name of each module (its `__all__`, constants included) has an entry on the module's API page."
    import importlib
    errs, pages = [], sorted((site / "api").glob("*.html"))
    if not pages:
        return [f"no API pages in {site / 'api'}"]
    for page in pages:
        mod = importlib.import_module(f"noisy_teachers.{page.stem}")
        ids = set(re.findall(r'id="(noisy_teachers\.[\w.]+)"', page.read_text(encoding="utf-8")))
        if missing := [n for n in getattr(mod, "__all__", []) if f"{mod.__name__}.{n}" not in ids]:
            errs.append(f"api/{page.name} has no entry for {', '.join(missing)}")
    return errs


def check_api_page(page, base: str, problems: list[str]) -> None:
    page.goto(f"{base}/api/losses.html", wait_until="load")
    names = page.evaluate("() => [...document.querySelectorAll('dl.py.function > dt')].map(d => d.id)")
    if "noisy_teachers.losses.logit_regression_loss" not in names:
        problems.append(f"api/losses.html does not document logit_regression_loss (found {names[:5]})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="offline browser test of the built site")
    ap.add_argument("--site", default=str(REPO / "_site"))
    ap.add_argument("--all", action="store_true", help="every chapter, not just the front page and 00, 10, 20")
    a = ap.parse_args(argv)
    pages = dict(PAGES)
    if a.all:
        pages.update({p.stem.split("_")[0]: p.name for p in sorted(Path(a.site).glob("[0-9][0-9]_*.html"))})
    site = Path(a.site).resolve()
    if not (site / "index.html").exists():
        print(f"SITE TEST FAILED: {site}/index.html not found (build it: python docs/build.py)", flush=True)
        return 1
    if not Path(CHROMIUM).exists():
        print(f"SITE TEST FAILED: {CHROMIUM} not found (apt-get install -y chromium)", flush=True)
        return 1
    problems = check_prepare()
    log(f"notebook preparation (hide, directives, widget state, chapter map): {'ok' if not problems else problems}")
    problems += check_toc(site)
    log(f"table of contents checked against nbs/index.ipynb: {'ok' if not problems else problems}")
    problems += check_api_names(site)
    log(f"every public name on its module's API page: {'ok' if not problems else problems}")
    port = free_port()
    base = f"http://{HOST}:{port}"
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", HOST, "--directory", str(site)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    results = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/index.html", timeout=1).close()  # noqa: S310 (loopback)
                break
            except OSError:
                time.sleep(0.1)
        log(f"serving {site} on {base}")
        from playwright.sync_api import sync_playwright
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                ctx = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
                outside: list[str] = []
                http_errors: list[str] = []

                def route(r):
                    if r.request.url.startswith(base + "/"):
                        return r.continue_()
                    outside.append(r.request.url)
                    return r.abort("blockedbyclient")
                def watch(context):  # every request off the local server blocked, every failed one counted
                    context.route("**/*", route)
                    context.on("requestfailed", lambda r: http_errors.append(f"{r.url} ({r.failure})")
                               if r.url.startswith(base) else None)
                    context.on("response", lambda r: http_errors.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
                watch(ctx)
                for key, path in pages.items():
                    page = ctx.new_page()
                    page.set_default_timeout(30_000)
                    try:
                        results.append(check_page(page, base, key, path, problems, REPO / "artifacts" / f"site-{key}.png"))
                    except Exception as e:  # noqa: BLE001
                        problems.append(f"{key}: {type(e).__name__}: {str(e)[:300]}")
                    log(results[-1] if results and results[-1].startswith(key) else f"{key}: failed")
                    page.close()
                page = ctx.new_page()
                check_api_page(page, base, problems)
                phone = browser.new_context(viewport={"width": 390, "height": 844}, service_workers="block")
                watch(phone)
                for path in [*pages.values(), "api/experiments.html"]:
                    results.append(check_phone(phone.new_page(), base, path, problems))
                log(f"on a 390-px phone: {', '.join(r for r in results if r.startswith('phone'))}")
                phone.close()
                if outside:
                    problems.append(f"{len(outside)} requests left the local server (blocked): {sorted(set(outside))[:5]}")
                if http_errors:
                    problems.append(f"{len(http_errors)} failed requests: {http_errors[:5]}")
            finally:
                browser.close()
    except Exception as e:  # noqa: BLE001
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    took = time.monotonic() - T0
    if problems:
        print(f"SITE TEST FAILED after {took:.0f}s:\n  " + "\n  ".join(problems), flush=True)
        return 1
    print(f"SITE TEST PASSED in {took:.0f}s: " + "; ".join(results) + "; no request left 127.0.0.1", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
