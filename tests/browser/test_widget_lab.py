"""KernelExplorer live in JupyterLab 4: a real server on 127.0.0.1, a real kernel, headless Chromium.

Drag the window and see the sum and the highlighted output change; the dragged position reaches
Python; a Python-side change of the `kernel` trait updates the view.
"""

import re

import pytest
from harness import screenshot_on_failure
from lab_server import open_notebook, run_cell

pytestmark = pytest.mark.slow

CELLS = [
    "from conv_course.widgets import KernelExplorer\n"
    "w = KernelExplorer(image='camera', kernel='sobel_x', size=64)\nw",
    "w.kernel = 'laplacian'",
    "print('python sees', tuple(w.position), round(float(w.output[w.position]), 9))",
]


def _shown(page):
    row, col = map(int, re.fullmatch(r"output\[(\d+), (\d+)\]", page.inner_text(".kx-where")).groups())
    return (row, col), page.inner_text(".kx-sum"), float(page.get_attribute(".kx-sum", "data-value"))


def test_widget_live_in_jupyterlab(offline_page, lab):
    with screenshot_on_failure(offline_page.page, "jupyterlab-kernel-explorer"):
        check_lab(offline_page.page, lab)


def check_lab(page, lab):
    page.set_default_timeout(30000)
    open_notebook(page, lab, "explorer.ipynb", CELLS)
    run_cell(page, 0)
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

    run_cell(page, 1)                                       # w.kernel = 'laplacian'
    page.wait_for_function("document.querySelector('.kx-preset').value === 'laplacian'", timeout=30000)
    centre = page.locator(".kx-weight").nth(4).input_value()
    assert centre == "-4"
    assert page.inner_text(".kx-used .kx-cell >> nth=4") == "-4"
    pos, _, value = _shown(page)
    assert pos == moved_pos

    run_cell(page, 2)                                       # Python reports position and output
    out = page.locator(".jp-OutputArea-output", has_text="python sees")
    out.wait_for(timeout=30000)
    assert f"python sees ({pos[0]}, {pos[1]})" in out.inner_text()
    python_value = float(out.inner_text().split(")")[-1])
    assert python_value == pytest.approx(value, abs=1e-8)
