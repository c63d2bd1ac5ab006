"""KernelExplorer live in JupyterLab 4: a real server on 127.0.0.1, a real kernel, headless Chromium.

Drag the window and see the sum and the highlighted output change; the dragged position reaches
Python; a Python-side change of the `kernel` trait updates the view.
"""

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
from harness import screenshot_on_failure

pytestmark = pytest.mark.slow

CELLS = [
    "from conv_course.widgets import KernelExplorer\n"
    "w = KernelExplorer(image='camera', kernel='sobel_x', size=64)\nw",
    "w.kernel = 'laplacian'",
    "print('python sees', tuple(w.position), round(float(w.output[w.position]), 9))",
]


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


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    work = root / "work"
    work.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(work / "explorer.ipynb"))
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


def _wait_ready(page):
    """Wait until the notebook's document and its kernel session are ready (Lab re-renders until then)."""
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=60000)
    page.evaluate("""async () => {
        const nb = window.jupyterapp.shell.currentWidget;
        await nb.context.ready; await nb.sessionContext.ready; await nb.revealed;
    }""")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60000)


def _run_cell(page, index):
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


def _shown(page):
    row, col = map(int, re.fullmatch(r"output\[(\d+), (\d+)\]", page.inner_text(".kx-where")).groups())
    return (row, col), page.inner_text(".kx-sum"), float(page.get_attribute(".kx-sum", "data-value"))


def test_widget_live_in_jupyterlab(offline_page, lab):
    with screenshot_on_failure(offline_page.page, "jupyterlab-kernel-explorer"):
        check_lab(offline_page.page, *lab)


def check_lab(page, url, token):
    page.set_default_timeout(30000)
    page.goto(f"{url}/lab/tree/explorer.ipynb?token={token}")
    _wait_ready(page)
    _run_cell(page, 0)
    page.wait_for_selector(".kx canvas.kx-input, .jp-Dialog", timeout=60000)
    if page.locator(".jp-Dialog").count():                  # a kernel picker: take the notebook's kernel
        page.locator(".jp-Dialog .jp-mod-accept").click()
        page.wait_for_selector(".kx canvas.kx-input", timeout=60000)
    start_pos, start_text, _ = _shown(page)

    canvas = page.locator(".kx-input")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 0.15 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.55 * box["height"], steps=10)
    page.mouse.up()
    moved_pos, moved_text, moved_value = _shown(page)
    assert moved_pos != start_pos and moved_text != start_text

    _run_cell(page, 1)                                       # w.kernel = 'laplacian'
    page.wait_for_function("document.querySelector('.kx-preset').value === 'laplacian'", timeout=30000)
    centre = page.locator(".kx-weight").nth(4).input_value()
    assert centre == "-4"
    assert page.inner_text(".kx-used .kx-cell >> nth=4") == "-4"
    pos, _, value = _shown(page)
    assert pos == moved_pos

    _run_cell(page, 2)                                       # Python reports position and output
    out = page.locator(".jp-OutputArea-output", has_text="python sees")
    out.wait_for(timeout=30000)
    assert f"python sees ({pos[0]}, {pos[1]})" in out.inner_text()
    python_value = float(out.inner_text().split(")")[-1])
    assert python_value == pytest.approx(value, abs=1e-8)
