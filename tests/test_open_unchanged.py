#!/usr/bin/env python
"""Opening a chapter in JupyterLab must not change the tracked file (run by `.ci/run`; not by `nbdev_test`).

When a notebook opens, JupyterLab rewrites its kernelspec's display name ("Python 3 (ipykernel)") and adds the
kernel's `language_info` (with the Python version); its autosave then writes the notebook back. The project ships
`jupyter-config/noisy-teachers.json`, which makes the Jupyter server clean a notebook with nbdev before saving it
(`settings.ini`: `jupyter_hooks = True`), so what lands on disk is what `nbdev_clean` would write: the file as it was.

The test copies `settings.ini` and every chapter into a fresh folder, starts `jupyter server` there with the shipped
config fragment only (fresh config, data and runtime folders), and for each chapter does what JupyterLab does:
reads it through the contents API, changes its metadata as JupyterLab does, saves it back. Every file must come out
byte for byte as it was. Control: with `jupyter_hooks = False` the same save changes the file (so the test can fail).
Prints `OPEN TEST PASSED` or `OPEN TEST FAILED: ...`; exits 0 or 1.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AS_JUPYTERLAB = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py", "mimetype": "text/x-python",
                 "name": "python", "nbconvert_exporter": "python", "pygments_lexer": "ipython3",
                 "version": ".".join(map(str, sys.version_info[:3]))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def api(base: str, token: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(f"{base}/api/contents/{path}", method="GET" if body is None else "PUT",
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r: return json.loads(r.read())


def open_and_save(base: str, token: str, name: str) -> None:
    "What JupyterLab does to a notebook it opens and autosaves: new kernel metadata, then a save."
    model = api(base, token, f"nbs/{name}?content=1&type=notebook")
    model["content"]["metadata"]["kernelspec"] = dict(AS_JUPYTERLAB)
    model["content"]["metadata"]["language_info"] = dict(LANGUAGE_INFO)
    api(base, token, f"nbs/{name}", dict(type="notebook", format="json", content=model["content"]))


def serve(root: Path, config: Path, fresh: Path):
    token, port = secrets.token_hex(16), free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(fresh / "config"), JUPYTER_CONFIG_PATH=str(config),
               JUPYTER_DATA_DIR=str(fresh / "data"), JUPYTER_RUNTIME_DIR=str(fresh / "runtime"))
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(fresh / "server.log", "wb"), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try: api(base, token, ""); return proc, base, token
        except OSError:
            if proc.poll() is not None: break
            time.sleep(0.5)
    proc.kill(); raise RuntimeError(f"jupyter server did not start: {(fresh / 'server.log').read_text()[-2000:]}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="nt-open-") as d:
        d = Path(d); root, config = d / "book", d / "jupyter-config-path"
        (root / "nbs").mkdir(parents=True); (config / "jupyter_server_config.d").mkdir(parents=True)
        shutil.copy(REPO / "settings.ini", root)
        shutil.copy(REPO / "jupyter-config" / "noisy-teachers.json", config / "jupyter_server_config.d")
        chapters = sorted(p.name for p in (REPO / "nbs").glob("*.ipynb"))
        for c in chapters: shutil.copy(REPO / "nbs" / c, root / "nbs" / c)
        proc, base, token = serve(root, config, d)
        try:
            changed, uncleaned = [], []
            for c in chapters:
                open_and_save(base, token, c)
                saved = (root / "nbs" / c).read_bytes()
                if saved != (REPO / "nbs" / c).read_bytes(): changed.append(c)
                if b'"language_info"' in saved: uncleaned.append(c)   # the hook did not run on it at all
            settings = root / "settings.ini"                 # the control: without the hook the save changes the file
            settings.write_text(settings.read_text().replace("jupyter_hooks = True", "jupyter_hooks = False"))
            open_and_save(base, token, chapters[0])
            control = (root / "nbs" / chapters[0]).read_bytes() != (REPO / "nbs" / chapters[0]).read_bytes()
        finally:
            proc.terminate()
            try: proc.wait(10)
            except subprocess.TimeoutExpired: proc.kill()
        log = (d / "server.log").read_text(errors="replace")       # read before the temporary folder goes
    if uncleaned:
        print(f"OPEN TEST FAILED: saving {', '.join(uncleaned)} kept JupyterLab's kernel metadata: the clean-on-save hook "
              "did not run (does settings.ini say jupyter_hooks = True, is noisy_teachers.jupyter importable and named by "
              f"jupyter-config/noisy-teachers.json, is nbdev installed?); the server's log ends:\n{log[-1500:]}"); return 1
    if changed:
        print(f"OPEN TEST FAILED: saving changed {', '.join(changed)} (a notebook not in Jupyter's own JSON layout — lists of "
              "lines, sorted keys — is rewritten by any save; re-save it with nbformat: python -c \"import nbformat, sys; "
              "[nbformat.write(nbformat.read(p, 4), p) for p in sys.argv[1:]]\" nbs/*.ipynb)"); return 1
    if not control: print("OPEN TEST FAILED: the control (no hook) left the file unchanged: the test cannot see a change"); return 1
    print(f"OPEN TEST PASSED: {len(chapters)} chapters opened and saved through the Jupyter server, none changed "
          "(without the hook the first one did)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
