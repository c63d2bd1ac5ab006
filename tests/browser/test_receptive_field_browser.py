"""ReceptiveFieldExplorer in the browser with no Python kernel and no network.

Two routes, as for the other widgets: a harness page that runs receptive_field.js with an in-page
model (its fields and reaches against torch autograd, its table against the Python side, keyboard,
mouse, editing, redraw time), and the built chapter 5 page (offline, embedded widget state, keyboard).
"""

import pathlib
import re
import sys

import numpy as np
import pytest
import torch

from conv_course.widgets import ReceptiveFieldExplorer
from conv_course.widgets.receptive_field import StackNet
from harness import mount, screenshot_on_failure, widget_state
from lab_server import open_notebook, run_cell

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "widgets"))
from test_receptive_field import conv, random_stack, torch_field, torch_reach  # noqa: E402

CHAPTER = "book/05-pooling/pooling.html"


@pytest.fixture(scope="module")
def harness_url(widget_harness):
    return widget_harness("receptive_field")


def _mount(offline_page, harness_url, widget, width=1000):
    return mount(offline_page.page, harness_url, widget.get_state(), width=width)


def _trained_widget():
    torch.manual_seed(0)
    return ReceptiveFieldExplorer(network=StackNet(), digits=np.random.default_rng(0).random((8, 1, 28, 28)))


def test_js_field_and_reach_equal_torch_gradient_support(offline_page, harness_url):
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(120):
        layers, n = random_stack(rng)
        sizes = ReceptiveFieldExplorer(layers, input_size=n).sizes
        m = int(rng.integers(1, len(layers) + 1))
        row, col = (int(v) for v in rng.integers(0, sizes[m], size=2))
        pixel = [int(v) for v in rng.integers(0, n, size=2)]
        cases.append({"layers": layers, "n": n, "unit": [m, row, col], "pixel": pixel})
    page = _mount(offline_page, harness_url, ReceptiveFieldExplorer())
    got = page.evaluate("""cases => cases.map(({layers, n, unit: [m, row, col], pixel: [y, x]}) => {
        const lib = window.lib, sizes = lib.sizesOf(n, layers);
        const field = [lib.fieldAxis(layers, sizes, m, row), lib.fieldAxis(layers, sizes, m, col)];
        const reach = layers.map((_, t) => [lib.reachAxis(layers, sizes, 0, y, t + 1), lib.reachAxis(layers, sizes, 0, x, t + 1)]);
        return {sizes, field, reach, problem: lib.problemOf(n, layers, window.model.get('limits'))};
    })""", cases)
    units = 0
    for case, out in zip(cases, got):
        layers, n, (m, row, col) = case["layers"], case["n"], case["unit"]
        assert out["problem"] is None and out["sizes"] == ReceptiveFieldExplorer(layers, input_size=n).sizes
        rows, cols, support = torch_field(layers, n, m, row, col)
        js_rows, js_cols = out["field"]
        js_support = np.zeros((n, n), dtype=bool)
        js_support[np.ix_(js_rows, js_cols)] = True
        assert (js_support == support).all(), case           # the exact set, gaps and clipping included
        for t, (r_js, c_js) in enumerate(out["reach"], start=1):
            *_, moved = torch_reach(layers, n, *case["pixel"], t)
            js_moved = np.zeros_like(moved)
            js_moved[np.ix_(r_js, c_js)] = True
            assert (js_moved == moved).all(), (case, t)
            units += 1
    print(f"\n{len(cases)} random stacks: JS field of one unit each and the reach of one pixel in "
          f"{units} maps equal the support of torch autograd exactly (max |difference| = 0)")
    assert offline_page.console_errors == [] and offline_page.blocked == []


def test_js_refuses_the_stacks_python_refuses(offline_page, harness_url):
    bad = [[conv(5), conv(5)], [dict(kind="pool", kernel=2, stride=2, dilation=1, padding=2)], [conv(3, d=4)]]
    page = _mount(offline_page, harness_url, ReceptiveFieldExplorer())
    said = page.evaluate("stacks => stacks.map(l => window.lib.problemOf(8, l, window.model.get('limits')))", bad)
    for layers, text in zip(bad, said):
        with pytest.raises(ValueError) as err:
            ReceptiveFieldExplorer(layers, input_size=8)
        assert text is not None, layers
        if "leaves no output" in text:
            assert text.split("leaves no output: ")[1].replace("\u00d7", "x") in str(err.value)


def test_table_shows_the_recurrence(offline_page, harness_url):
    w = ReceptiveFieldExplorer([conv(5), dict(kind="pool", kernel=2), conv(3, d=2, p=2), conv(3, s=2)], input_size=32)
    page = _mount(offline_page, harness_url, w)
    cells = page.eval_on_selector_all(".rf-table tbody tr", "rows => rows.map(r => Array.from(r.cells).slice(6, 9)"
                                      ".map(c => c.querySelector('input') ? Number(c.querySelector('input').value) "
                                      ": Number(c.textContent)))")
    assert cells == [[32, 1, 1]] + [[t["n"], t["j"], t["r"]] for t in w.table()]


def test_arrow_keys_move_the_selection_and_the_live_region_says_what_it_sees(offline_page, harness_url):
    w = ReceptiveFieldExplorer()                                  # the trained stack, centre of layer 5 selected
    page = _mount(offline_page, harness_url, w)
    assert page.get_attribute(".rf-status", "aria-live") == "polite"
    page.focus(".rf-map[data-map='5']")
    for key in ["ArrowLeft", "ArrowUp", "ArrowUp", "ArrowUp"]:
        page.keyboard.press(key)
    assert page.evaluate("window.model.get('selection')") == [5, 0, 2]
    rows, cols = w.field(5, 0, 2)
    assert page.inner_text(".rf-status") == (
        f"Output of layer 5 at [0, 2] sees input rows {rows[0]}..{rows[-1]}, columns {cols[0]}..{cols[-1]}: "
        f"{len(rows)} \u00d7 {len(cols)}. The recurrence gives r = 18; the rest of its window falls on padding.")
    page.keyboard.press("PageUp")                                 # to layer 4, the unit under the same place
    assert page.evaluate("window.model.get('selection')[0]") == 4
    assert page.evaluate("document.activeElement.dataset.map") == "4"
    assert page.inner_text(".rf-status").startswith("Output of layer 4 at [0, 2] sees input rows 0..")
    rows, cols = w.reach(0, 2, m=4)[5]
    assert page.inner_text(".rf-status").endswith(f"It is seen by {len(rows) * len(cols)} units of layer 5.")
    page.keyboard.press("Home")
    assert page.evaluate("window.model.get('selection')") == [4, 0, 0]
    page.keyboard.press("End")
    assert page.evaluate("window.model.get('selection')") == [4, 6, 6]
    assert page.evaluate("window.model.saves") > 0


def test_clicking_an_input_pixel_shows_every_unit_it_reaches(offline_page, harness_url):
    w = ReceptiveFieldExplorer()
    page = _mount(offline_page, harness_url, w)
    cell = 224 // 28
    page.locator(".rf-map[data-map='0'] canvas").click(position={"x": 7 * cell + 3, "y": 5 * cell + 3})
    assert page.evaluate("window.model.get('selection')") == [0, 5, 7]
    parts = []
    for t, (rows, cols) in w.reach(5, 7).items():
        parts.append(f"{len(rows) * len(cols)} units of layer {t} (rows {rows[0]}..{rows[-1]}, "
                     f"columns {cols[0]}..{cols[-1]})")
    assert page.inner_text(".rf-status") == f"Input pixel [5, 7] is seen by {'; '.join(parts)}."
    assert page.evaluate("document.activeElement.dataset.map") == "0"
    page.locator(".rf-map[data-map='3'] canvas").hover(position={"x": 2 * 16 + 3, "y": 9 * 16 + 3})
    assert page.evaluate("window.model.get('selection')") == [3, 9, 2]


def test_dilation_gaps_are_announced(offline_page, harness_url):
    page = _mount(offline_page, harness_url, ReceptiveFieldExplorer([conv(3, d=2), conv(3, d=2)], input_size=12,
                                                                    selection=(2, 2, 2)))
    assert page.inner_text(".rf-status") == ("Output of layer 2 at [2, 2] sees input rows 2..10, columns 2..10: 9 \u00d7 9. "
                                             "Only 5 \u00d7 5 of these pixels count: strides and dilation leave gaps.")


def test_editing_the_stack_updates_the_table_and_refuses_a_stack_without_output(offline_page, harness_url):
    page = _mount(offline_page, harness_url, ReceptiveFieldExplorer())
    page.get_by_label("layer 5 dilation").fill("2")
    layers = page.evaluate("window.model.get('layers')")
    assert layers[4]["dilation"] == 2
    assert page.inner_text(".rf-table tbody tr:nth-child(6) td:nth-child(9)") == str(10 + 2 * 2 * 4)
    assert page.inner_text(".rf-status").startswith("Layer 5: dilation 2. Output of layer 5")
    page.get_by_label("input side").fill("6")                     # 6 -> 6 -> 3 -> 3 -> 1: then 3x3 dilation 2 fails
    assert page.inner_text(".rf-status") == ("Not applied: layer 5 leaves no output: its 1\u00d71 input, padded to "
                                             "3\u00d73, is smaller than its dilated kernel 5\u00d75.")
    assert page.evaluate("window.model.get('input_size')") == 28
    page.get_by_label("input side").blur()
    assert page.get_by_label("input side").input_value() == "28"  # restored on change
    page.get_by_label("layer 2 kind").select_option("conv")
    assert page.evaluate("window.model.get('layers')[1].kind") == "conv"
    page.get_by_role("button", name="remove layer 5").click()
    assert len(page.evaluate("window.model.get('layers')")) == 4
    assert page.evaluate("window.model.get('selection')[0]") == 4   # clamped to the last map
    page.get_by_role("button", name=re.compile("Add a layer")).click()
    page.get_by_role("button", name=re.compile("Add a layer")).click()
    assert len(page.evaluate("window.model.get('layers')")) == 6
    assert page.get_by_role("button", name=re.compile("Add a layer")).is_disabled()
    assert page.locator(".rf-map").count() == 7
    assert offline_page.console_errors == []


def test_every_control_is_labelled_and_reachable_by_tab(offline_page, harness_url):
    page = _mount(offline_page, harness_url, _trained_widget())
    for label in ["input side", "layer 1 kind", "layer 1 kernel", "layer 1 stride", "layer 1 dilation",
                  "layer 1 padding", "remove layer 1"]:
        assert page.get_by_label(label, exact=True).count() == 1, label
    page.get_by_label("layer 1 kernel", exact=True).focus()
    page.keyboard.press("ArrowUp")                                 # number inputs step with arrows
    assert page.evaluate("window.model.get('layers')[0].kernel") == 4
    assert page.evaluate("document.activeElement.name") == "kernel-0"   # focus survives the redraw
    page.get_by_label("input side").focus()
    seen = []
    for _ in range(45):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("""() => { const a = document.activeElement;
            return a.name || (a.dataset.map ? `map ${a.dataset.map}` : a.className); }"""))
    for name in ["kind-0", "kernel-4", "padding-4", "remove-4", "rf-add", "rf-trained"] + [f"map {m}" for m in range(6)]:
        assert name in seen, (name, seen)
    outline = page.evaluate("""() => { const s = document.querySelector('.rf-map'); s.focus();
        return getComputedStyle(s).outlineStyle + ' ' + getComputedStyle(s).outlineWidth; }""")
    assert outline == "solid 3px"


def test_effective_field_panel_matches_python(offline_page, harness_url):
    w = _trained_widget()
    page = _mount(offline_page, harness_url, w)
    assert page.locator(".rf-erf").is_visible()
    assert page.get_attribute(".rf-erf", "data-half") == str(w.half_mass())
    caption = page.inner_text(".rf-erf figcaption")
    assert "unit [3, 3] of its layer 5, averaged over 8 digits" in caption
    assert f"solid: the central {w.half_mass()} \u00d7 {w.half_mass()}" in caption
    page.get_by_label("layer 1 kernel", exact=True).fill("5")
    assert "not the one above" in page.inner_text(".rf-erf .rf-note")
    page.get_by_role("button", name="Trained network\u2019s layers").click()
    assert page.evaluate("window.model.get('layers')") == w.layers
    assert "not the one above" not in page.inner_text(".rf-erf .rf-note")


def test_fits_a_360px_phone_screen(offline_page, harness_url):
    page = _mount(offline_page, harness_url, _trained_widget(), width=360)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


def test_redraw_time_over_200_moves(offline_page, harness_url):
    """Median time of one arrow-key move on the 28x28 input (every map redrawn, layout included)."""
    page = _mount(offline_page, harness_url, ReceptiveFieldExplorer(selection=(0, 14, 0)))
    times = page.evaluate("""() => {
        const map = document.querySelector(".rf-map[data-map='0']"), times = [];
        const key = (k) => map.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}));
        for (let i = 0; i < 200; i++) {
            const t0 = performance.now();
            key(i % 27 === 26 ? 'Home' : 'ArrowRight');
            void document.body.offsetHeight;               // force style and layout
            times.push(performance.now() - t0);
        }
        return times;
    }""")
    assert len(times) == 200 and page.evaluate("window.model.get('selection')[0]") == 0
    median = float(np.median(times))
    print(f"\nReceptiveFieldExplorer move on the trained stack (28x28 input, 6 maps): median {median:.2f} ms, "
          f"p90 {np.percentile(times, 90):.2f} ms over 200 moves")
    assert median < 50


# -- the built book --------------------------------------------------------------------------

def test_chapter_widget_works_offline(offline_page, book_server):
    page = offline_page.page
    with screenshot_on_failure(page, "chapter5-receptive-field"):
        page.goto(f"{book_server}/{CHAPTER}", wait_until="networkidle")
        page.wait_for_selector(".rf .rf-map", timeout=20000)
        state = widget_state(page, "ReceptiveFieldExplorer")
        w = ReceptiveFieldExplorer(state["layers"], input_size=state["input_size"], selection=tuple(state["selection"]))
        assert state["effective"]["map"] and page.locator(".rf-erf").is_visible()
        before = page.inner_text(".rf-status")
        last = len(state["layers"])
        page.locator(f".rf-map[data-map='{last}']").scroll_into_view_if_needed()
        page.focus(f".rf-map[data-map='{last}']")
        page.keyboard.press("ArrowRight")
        after = page.inner_text(".rf-status")
        assert after != before
        m, row, col = _selection(after)
        rows, cols = w.field(m, row, col)
        assert f"sees input rows {rows[0]}..{rows[-1]}, columns {cols[0]}..{cols[-1]}" in after
        assert page.locator("mjx-container").count() > 0, "MathJax rendered nothing"
        assert offline_page.console_errors == [], offline_page.console_errors
        assert offline_page.failed == [] and offline_page.blocked == [], (offline_page.failed, offline_page.blocked)


def _selection(status):
    m, row, col = re.match(r"Output of layer (\d+) at \[(\d+), (\d+)\]", status).groups()
    return int(m), int(row), int(col)


# -- JupyterLab, live --------------------------------------------------------------------------

LAB_CELLS = [
    "import numpy as np, torch\n"
    "from conv_course.widgets import ReceptiveFieldExplorer\n"
    "from conv_course.widgets.receptive_field import StackNet\n"
    "torch.manual_seed(0)\n"
    "w = ReceptiveFieldExplorer(network=StackNet(), digits=np.random.default_rng(0).random((4, 1, 28, 28)))\nw",
    "w.layers = w.layers[:3]",
    "print('python sees', tuple(w.selection), w.effective['layer'], w.effective['row'], w.effective['col'])",
]


@pytest.mark.slow
def test_widget_live_in_jupyterlab(offline_page, lab):
    """Keys move the selection, Python sees it and recomputes the effective field; a Python-side change redraws."""
    page = offline_page.page
    page.set_default_timeout(30000)
    with screenshot_on_failure(page, "jupyterlab-receptive-field"):
        open_notebook(page, lab, "receptive.ipynb", LAB_CELLS)
        run_cell(page, 0)
        page.wait_for_selector(".rf .rf-map[data-map='5']", timeout=60000)
        page.focus(".rf-map[data-map='5']")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("document.querySelector('.rf-erf figcaption').textContent.includes('unit [3, 4]')",
                               timeout=30000)                  # recomputed by Python for the new unit
        run_cell(page, 1)                                       # w.layers = w.layers[:3], from Python
        page.wait_for_function("document.querySelectorAll('.rf-map').length === 4", timeout=30000)
        assert page.inner_text(".rf-status").startswith("Output of layer 3 at [")
        run_cell(page, 2)
        out = page.locator(".jp-OutputArea-output", has_text="python sees")
        out.wait_for(timeout=30000)
        assert "python sees (3, 3, 4) 5 3 4" in out.inner_text()
