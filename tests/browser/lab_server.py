"""A real JupyterLab 4 for the widgets' live tests: a server on 127.0.0.1 (one per test session),
notebooks put into it through its REST API, and cells run as a reader runs them (Shift+Enter)."""

import contextlib
import json
import os
import pathlib
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest
from playwright.sync_api import expect


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quiet_settings(settings_dir):
    """No news or update checks (network, pop-ups), no kernel picker: start the notebook's kernel."""
    settings = {"apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                "notebook-extension/tracker": {"autoStartDefaultKernel": True}}
    for name, values in settings.items():
        path = settings_dir / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@contextlib.contextmanager
def serve(root):
    """Run JupyterLab with its settings and files under `root`; yields (url, token)."""
    root = pathlib.Path(root)
    work = root / "work"
    work.mkdir()
    _quiet_settings(root / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(root / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(root / "ws"),
               IPYTHONDIR=str(root / "ipython"), PYDEVD_DISABLE_FILE_VALIDATION="1")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=", "--LabServerApp.extension_manager=readonly", "--allow-root",
           "--KernelSpecManager.allowed_kernelspecs=python3"]
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(work))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + pathlib.Path(log.name).read_text()[-3000:])
                time.sleep(0.5)
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def wait_ready(page):
    """Wait until the notebook's document and its kernel session are ready (Lab re-renders until then)."""
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=60000)
    page.evaluate("""async () => {
        const nb = window.jupyterapp.shell.currentWidget;
        await nb.context.ready; await nb.sessionContext.ready; await nb.revealed;
    }""")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60000)


def run_cell(page, index):
    """Click into cell `index` and press Shift+Enter, as a reader would; retry if Lab dropped it."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            expect(prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=15000)
            return
        except AssertionError:  # the notebook was re-rendered under the click
            continue
    pytest.fail(f"cell {index} did not start running after three Shift+Enter")


def open_notebook(page, lab, name, cells):
    """Put a notebook of `cells` (code) into the server as `name`, open it in Lab and wait for its kernel."""
    url, token = lab
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    response = page.request.put(f"{url}/api/contents/{name}?token={token}",
                                data=json.dumps({"type": "notebook", "format": "json", "content": nb}))
    assert response.ok, response.text()
    stem = name.rsplit(".", 1)[0]                            # a workspace of its own: only this notebook open
    page.goto(f"{url}/lab/workspaces/{stem}/tree/{name}?reset&token={token}")
    wait_ready(page)
