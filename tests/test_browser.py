#!/usr/bin/env python
"""Real-browser test of the interactive chapter `nbs/20_explore.ipynb` (not run by `nbdev_test`).

Run it from anywhere with the project's virtual environment:

    python tests/test_browser.py

What it does, in at most about three minutes:

1. copies `nbs/20_explore.ipynb` into a fresh temporary folder, with its saved outputs cleared and the
   cells flagged `#| slow` left out (as `nbdev_test` does), so the test never touches the repository's notebook;
2. starts `jupyter lab --no-browser` on 127.0.0.1 at a free port, with token authentication and fresh
   runtime / config / data / settings / workspace folders (the virtual environment's `share/jupyter`, where the
   ipywidgets lab extension lives, stays visible); the kernel finds the package through PYTHONPATH and runs
   with IN_TEST=1, the small configuration;
3. opens the notebook in headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright's Python API,
   never `playwright install`), runs every cell with the menu Run > Run All Cells and checks no cell failed;
4. waits for the noise explorer to render, moves its sigma slider with the keyboard (focus the handle, press
   ArrowRight; a mouse drag is the fallback) and checks that the kernel answered: the text readout shows the
   new sigma and the heat-map image was redrawn;
5. saves a screenshot of the explorer to `artifacts/browser-explore.png` (and to `$OUT` when that is set);
6. presses the live student's Train button and waits for the run to be reported and the button to come back;
7. always stops the browser, the kernel and the server (try/finally; process group, then lingering pids).

It prints one line starting with `BROWSER TEST PASSED` or `BROWSER TEST FAILED` and exits 0 or 1.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "nbs" / "20_explore.ipynb"
ARTIFACT = REPO / "artifacts" / "browser-explore.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
HOST = "127.0.0.1"  # the test only ever talks to the loopback interface
TOTAL_BUDGET_S = 180  # hard bound on the whole test
SIGMA_STEP = 0.05  # the explorer's sigma slider step (see noisy_teachers.widgets.SIGMA_STEP)
PRESSES = 4  # ArrowRight presses: sigma goes up by PRESSES * SIGMA_STEP

T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Failure(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def is_slow(cell: dict) -> bool:
    src = cell.get("source", "")
    src = "".join(src) if isinstance(src, list) else src
    for line in src.splitlines():
        if line.strip():
            return bool(re.match(r"#\|\s*slow\b", line.strip()))
    return False


def prepare_notebook(dst: Path) -> None:
    """Copy the chapter to `dst`: outputs cleared, `#| slow` cells dropped (what `nbdev_test` runs), folded cells
    unfolded (a folded cell's prompt shows no execution count, which is how the test sees that a cell has run)."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            if is_slow(cell):
                continue
            cell["outputs"], cell["execution_count"] = [], None
            cell.get("metadata", {}).get("jupyter", {}).pop("source_hidden", None)
        cells.append(cell)
    nb["cells"] = cells
    nb.setdefault("metadata", {})["kernelspec"] = {"display_name": "python3", "language": "python",
                                                   "name": "python3"}
    dst.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def write_lab_settings(settings_dir: Path) -> None:
    "User-settings overrides: no news / update toasts, and every cell kept in the DOM."
    def put(plugin: str, name: str, value: dict) -> None:
        p = settings_dir / plugin / f"{name}.jupyterlab-settings"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(value), encoding="utf-8")
    put("@jupyterlab/apputils-extension", "notification", {"fetchNews": "false", "checkForUpdates": False})
    put("@jupyterlab/notebook-extension", "tracker", {"windowingMode": "none"})


def http_json(url: str, method: str = "GET", timeout: float = 5.0):
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback only)
        body = r.read()
        return json.loads(body) if body else None


def kernels(base: str, token: str) -> list:
    "The server's kernels; [] while it answers 5xx (seen while a slow kernel is still starting): poll again."
    try:
        return http_json(f"{base}/api/kernels?token={token}") or []
    except urllib.error.HTTPError as e:
        if e.code >= 500: return []
        raise


def descendants(pid: int) -> list[int]:
    "Pids of all processes below `pid` (Linux /proc), children first found, by walking ppid links."
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(d.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_server(proc: subprocess.Popen, base: str, token: str) -> None:
    "Shut the kernels down through the API, then stop the server's process group, then any leftover child."
    kids = descendants(proc.pid)
    try:
        for k in http_json(f"{base}/api/kernels?token={token}") or []:
            try:
                http_json(f"{base}/api/kernels/{k['id']}?token={token}", method="DELETE", timeout=10)
            except Exception:
                pass
    except Exception:
        pass
    kids = sorted(set(kids) | set(descendants(proc.pid)))
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    for pid in kids:  # kernels run in their own session: stop them by pid if still there
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


def parse_readout(text: str) -> dict:
    "The explorer's readout: 'σ = 0.30 · α = … · chosen 5/32 · flipped 2 · E_R = …'."
    out = {}
    for key, pat in (("sigma", r"σ\s*=\s*(-?[0-9.]+)"), ("chosen", r"chosen\s+(\d+)\s*/\s*(\d+)"),
                     ("flipped", r"flipped\s+(\d+)"), ("E_R", r"E_R\s*=\s*(-?[0-9.eE+-]+)")):
        m = re.search(pat, text)
        if m:
            out[key] = m.group(1) if key != "chosen" else f"{m.group(1)}/{m.group(2)}"
    return out


def wait_until(pred, timeout: float, what: str, interval: float = 0.25):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise Failure(f"timed out after {timeout:.0f}s waiting for {what}")


def remaining() -> float:
    return TOTAL_BUDGET_S - (time.monotonic() - T0)


def run_browser(base: str, token: str, shots: list[Path]) -> str:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            saved = []
            try:
                return drive_notebook(page, base, token, lambda: saved.append(screenshot(page, shots)))
            finally:
                if not saved:  # a failure: keep a picture of where it stopped
                    screenshot(page, shots)
        finally:
            browser.close()


def screenshot(page, shots: list[Path]) -> None:
    try:
        for shot in shots:
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot))
        log(f"screenshot saved: {', '.join(map(str, shots))}")
    except Exception as e:  # a screenshot must never hide the real result
        log(f"screenshot failed: {e}")


def drive_notebook(page, base: str, token: str, snap) -> str:
    url = f"{base}/lab/tree/20_explore.ipynb?token={token}"
    log(f"opening {base}/lab/tree/20_explore.ipynb")
    page.goto(url, wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # the kernel must be up before Run All, else the run is queued behind a "select kernel" state
    wait_until(lambda: any(k.get("execution_state") == "idle" for k in kernels(base, token)),
               min(60, remaining() - 60), "the kernel to start")
    n_code = page.locator(".jp-Notebook .jp-CodeCell").count()
    log(f"notebook open, kernel idle, {n_code} code cells; Run > Run All Cells")

    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).first.click()
    page.locator(".lm-Menu-item:visible", has_text=re.compile(r"^\s*Run All Cells")).first.click()

    # all cells done: no prompt shows [*] and every code cell has an execution count
    def all_done():
        prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()
        if page.locator(".jp-Notebook [data-mime-type='application/vnd.jupyter.error']").count():
            return "error"
        return len(prompts) == n_code and all(re.search(r"\[\d+\]", p) for p in prompts) and "done"
    state = wait_until(all_done, max(10, remaining() - 50), "all cells to finish", interval=0.5)
    errors = page.locator(".jp-Notebook [data-mime-type='application/vnd.jupyter.error']")
    if state == "error" or errors.count():
        raise Failure("a cell raised an error:\n" + errors.first.inner_text()[-2000:])
    log("all cells ran without error")

    readout = page.locator(".nt-explore-readout").first
    image = page.locator("img.nt-explore-image").first
    readout.wait_for(state="visible", timeout=20_000)
    image.wait_for(state="visible", timeout=20_000)
    readout.scroll_into_view_if_needed()
    text0, src0 = readout.inner_text(), image.get_attribute("src") or ""
    before = parse_readout(text0)
    if "sigma" not in before or "flipped" not in before or "E_R" not in before:
        raise Failure(f"explorer readout not as expected: {text0!r}")
    if not src0.startswith("blob:") and not src0.startswith("data:"):
        raise Failure(f"explorer image has no picture: src={src0[:60]!r}")
    sigma0 = float(before["sigma"])
    target = round(sigma0 + PRESSES * SIGMA_STEP, 2)
    log(f"explorer rendered: {text0.strip()[:120]}")

    handle = page.locator(".nt-sigma .noUi-handle").first
    slider_readout = page.locator(".nt-sigma .widget-readout").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(PRESSES):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(150)
    how = "keyboard (ArrowRight on the slider handle)"

    def moved():
        return parse_readout(readout.inner_text()).get("sigma") == f"{target:.2f}"
    try:
        wait_until(moved, 20, f"the readout to show sigma = {target:.2f}")
    except Failure:
        # fallback: drag the handle to the right with the mouse
        log("keyboard did not move the slider; dragging the handle instead")
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        how = "mouse drag of the slider handle"
        wait_until(lambda: parse_readout(readout.inner_text()).get("sigma") not in (None, before["sigma"]),
                   20, "the readout to show a new sigma")

    # the kernel redraws the figure after the readout; wait for the picture too
    wait_until(lambda: (image.get_attribute("src") or "") != src0, 20, "the heat-map image to change")
    page.wait_for_timeout(500)
    text1 = readout.inner_text()
    after = parse_readout(text1)
    slider_value = slider_readout.inner_text().strip()
    if float(after["sigma"]) == sigma0:
        raise Failure(f"sigma did not change: {text1!r}")
    if abs(float(slider_value) - float(after["sigma"])) > 1e-9:
        raise Failure(f"slider shows {slider_value} but the kernel's readout says sigma = {after['sigma']}")
    if after.get("E_R") == before.get("E_R"):
        raise Failure(f"E_R did not change with sigma: {text0!r} -> {text1!r}")
    log(f"after {how}: {text1.strip()[:120]}")
    page.evaluate("el => el.scrollIntoView({block: 'start'})", page.locator(".nt-explore").first.element_handle())
    page.wait_for_timeout(300)
    snap()
    explorer = (f"sigma {before['sigma']} -> {after['sigma']} by {how}; flipped {before['flipped']} -> "
                f"{after['flipped']}; E_R {before['E_R']} -> {after['E_R']}; heat-map image redrawn")

    # the live student: press Train, wait for the run to be reported and the button to come back
    button = page.locator("button.nt-train").first
    sreadout = page.locator(".nt-student-readout").first
    button.scroll_into_view_if_needed()
    if button.is_disabled():
        raise Failure("the Train button is disabled before any run")
    button.click()
    wait_until(lambda: "runs so far 1" in sreadout.inner_text(), min(60, max(5, remaining() - 20)),
               "the live student's first run to be reported")
    wait_until(lambda: button.is_enabled(), 10, "the Train button to be enabled again")
    stext = sreadout.inner_text().strip()
    if not re.search(r"test error [0-9.]+ %", stext):
        raise Failure(f"live student readout not as expected: {stext!r}")
    log(f"live student trained: {stext[:120]}")
    return explorer + f"; Train button ran a student ({re.search(r'test error [0-9.]+ %', stext).group(0)})"


def main() -> int:
    if not NOTEBOOK.exists():
        print(f"BROWSER TEST FAILED: {NOTEBOOK} not found", flush=True)
        return 1
    if not Path(CHROMIUM).exists():
        print(f"BROWSER TEST FAILED: {CHROMIUM} not found (apt-get install -y chromium)", flush=True)
        return 1

    def on_alarm(signum, frame):
        raise Failure(f"the whole test ran past {TOTAL_BUDGET_S}s")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TOTAL_BUDGET_S)

    tmp = Path(tempfile.mkdtemp(prefix="nt-browser-"))
    root = tmp / "root"
    root.mkdir()
    prepare_notebook(root / "20_explore.ipynb")
    write_lab_settings(tmp / "lab-settings")
    port, token = free_port(), secrets.token_hex(24)
    base = f"http://{HOST}:{port}"
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),  # user data dir only; <venv>/share/jupyter stays on the path
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "lab-workspaces"),
        IPYTHONDIR=str(tmp / "ipython"),
        PYTHONPATH=os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])),
        IN_TEST="1",
    )
    env.pop("JUPYTER_PATH", None)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.ip={HOST}",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
           "--ServerApp.terminals_enabled=False", "--LabApp.extension_manager=readonly",
           "--ServerApp.shutdown_no_activity_timeout=600"]
    if os.geteuid() == 0:  # CI containers often run as root
        cmd.append("--ServerApp.allow_root=True")
    server_log = tmp / "jupyter.log"
    shots = [ARTIFACT] + ([Path(os.environ["OUT"]) / "browser-explore.png"] if os.environ.get("OUT") else [])
    proc = None
    result, ok = "", False
    try:
        with open(server_log, "wb") as logf:
            proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        log(f"jupyter lab started (pid {proc.pid}) on {base}")

        def up():
            if proc.poll() is not None:
                raise Failure(f"jupyter lab exited with code {proc.returncode}")
            try:
                return http_json(f"{base}/api/status?token={token}", timeout=2) is not None
            except Exception:
                return False
        wait_until(up, 60, "jupyter lab to answer", interval=0.5)
        log("server is up")
        result = run_browser(base, token, shots)
        ok = True
    except Exception as e:  # noqa: BLE001 — report any failure as a failed test
        result = f"{type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
        if proc is not None:
            stop_server(proc, base, token)
            log("jupyter lab stopped")
        if not ok and server_log.exists():
            tail = server_log.read_text(errors="replace").splitlines()[-30:]
            print("---- jupyter log (tail) ----\n" + "\n".join(tail) + "\n----", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - T0
    if ok:
        print(f"BROWSER TEST PASSED in {took:.0f}s: {result}", flush=True)
        return 0
    print(f"BROWSER TEST FAILED after {took:.0f}s: {result}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
