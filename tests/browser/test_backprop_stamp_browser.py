"""BackpropStampExplorer in the browser with no Python kernel and no network.

Two routes, as for the other widgets: a harness page that runs backprop_stamp.js with an in-page
model (its gradients against `conv_course.ops.conv2d_backward` and torch autograd, its words,
keyboard, mouse, redraw time), the built chapter 7 page (offline, embedded widget state, keyboard)
and JupyterLab (live, synced with Python).
"""

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_course import ops
from conv_course.widgets import BackpropStampExplorer
from conv_course.widgets.backprop_stamp import no_output
from harness import mount, screenshot_on_failure, widget_state
from lab_server import open_notebook, run_cell

CHAPTER = "book/07-backprop/backprop.html"


@pytest.fixture(scope="module")
def harness_url(widget_harness):
    return widget_harness("backprop_stamp")


def _mount(offline_page, harness_url, widget, width=1000):
    return mount(offline_page.page, harness_url, widget.get_state(), width=width)


def reference(cfg):
    """(grad_x, grad_weight) of a settings dict from ops.conv2d_backward and from torch autograd."""
    x, k = np.asarray(cfg["x"], dtype=np.int64), np.asarray(cfg["kernel"], dtype=np.int64)
    g = np.asarray(cfg["grad_out"], dtype=np.int64)
    if not cfg["accumulate"]:
        g = np.zeros_like(g)
        g[tuple(cfg["selection"])] = 1
    args = {name: cfg[name] for name in ("stride", "padding", "dilation")}
    gx, gw, _ = ops.conv2d_backward(g[None, None], x[None, None], k[None, None], **args)
    xt = torch.tensor(x[None, None], dtype=torch.float64, requires_grad=True)
    kt = torch.tensor(k[None, None], dtype=torch.float64, requires_grad=True)
    F.conv2d(xt, kt, **args).backward(torch.tensor(g[None, None], dtype=torch.float64))
    np.testing.assert_array_equal(gx[0, 0], xt.grad[0, 0].numpy())       # the two references agree
    np.testing.assert_array_equal(gw[0, 0], kt.grad[0, 0].numpy())
    return gx[0, 0], gw[0, 0]


def random_settings(rng, accumulate):
    while True:
        h, w = rng.integers(1, 9, size=2)
        kh, kw = rng.integers(1, 6, size=2)
        p, s, d = int(rng.integers(0, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if no_output((h, w), (kh, kw), p, d) is None:
            break
    ho, wo = ((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k in ((h, kh), (w, kw)))
    return {"x": rng.integers(-9, 10, size=(h, w)).tolist(), "kernel": rng.integers(-5, 6, size=(kh, kw)).tolist(),
            "grad_out": rng.integers(-9, 10, size=(ho, wo)).tolist(), "padding": p, "stride": s, "dilation": d,
            "selection": [int(rng.integers(0, ho)), int(rng.integers(0, wo))], "accumulate": accumulate}


@pytest.mark.parametrize("accumulate", [False, True], ids=["one-hot", "all-of-G"])
def test_js_gradients_equal_ops_and_autograd_on_random_settings(offline_page, harness_url, accumulate):
    rng = np.random.default_rng(7 + accumulate)
    configs = [random_settings(rng, accumulate) for _ in range(200)]
    page = _mount(offline_page, harness_url, BackpropStampExplorer())
    got = page.evaluate("""configs => configs.map(cfg => {
        for (const [k, v] of Object.entries(cfg)) window.model.set(k, v);
        const bs = document.querySelector('.bs').bs;
        return {gx: bs.gradInput, gw: bs.gradWeight, full: bs.fullCorrelation};
    })""", configs)
    worst = 0
    for cfg, out in zip(configs, got):
        gx, gw = reference(cfg)
        assert np.shape(out["gx"]) == gx.shape and np.shape(out["gw"]) == gw.shape, cfg
        worst = max(worst, int(np.abs(np.asarray(out["gx"]) - gx).max()), int(np.abs(np.asarray(out["gw"]) - gw).max()))
        if accumulate:                                   # the stamps' sum, read as one full correlation
            np.testing.assert_array_equal(out["full"], gx)
        else:
            assert out["full"] is None
    assert worst == 0
    print(f"\n{'all of G' if accumulate else 'one-hot G'}: {len(configs)} random settings, "
          f"max |JS - ops.conv2d_backward| = max |JS - torch autograd| = {worst}")
    assert offline_page.console_errors == [] and offline_page.blocked == []


def test_arrow_keys_move_the_stamp_and_live_region_announces(offline_page, harness_url):
    w = BackpropStampExplorer()
    page = _mount(offline_page, harness_url, w)
    page.focus(".bs-stage")
    for key in ["ArrowRight", "ArrowRight", "ArrowDown"]:
        page.keyboard.press(key)
    assert page.evaluate("window.model.get('selection')") == [1, 2]
    assert page.inner_text(".bs-status") == ("G[1, 2] = 1 stamps K onto grad_x rows 1..3, columns 2..4 and adds "
                                             "x rows 1..3, columns 2..4 to grad_weight.")
    assert page.get_attribute(".bs-status", "aria-live") == "polite"
    w.selection = (1, 2)
    # marked by a border and by text: the kernel index on x, the amount added on grad_x and grad_weight
    assert page.eval_on_selector_all(".bs-x .bs-tap", "cs => cs.map(c => c.dataset.w)") == \
        [f"{a},{b}" for a in range(3) for b in range(3)]
    assert page.eval_on_selector_all(".bs-gx .bs-tap", "cs => cs.map(c => c.dataset.w)") == \
        [f"+{v}" for v in w.kernel.ravel()]
    assert page.eval_on_selector_all(".bs-gw-grid .bs-tap", "cs => cs.map(c => c.dataset.w)") == \
        [f"+{v}" for v in w.grad_weight.ravel()]
    assert page.inner_text(".bs-gout .bs-current") == "1"
    shown = page.eval_on_selector_all(".bs-gx .bs-cell", "cs => cs.map(c => Number(c.textContent))")
    np.testing.assert_array_equal(np.reshape(shown, (7, 7)), w.grad_input)
    page.keyboard.press("End")
    assert page.evaluate("window.model.get('selection')") == [4, 4]
    page.keyboard.press("Home")
    assert page.inner_text(".bs-status").startswith("G[0, 0] = 1 stamps K onto grad_x rows 0..2")
    assert page.evaluate("window.model.saves") > 0


def test_click_on_a_g_cell_selects_it(offline_page, harness_url):
    page = _mount(offline_page, harness_url, BackpropStampExplorer(stride=2))       # G is 3x3
    page.click(".bs-gout .bs-cell >> nth=7")                                        # row 2, column 1
    assert page.evaluate("window.model.get('selection')") == [2, 1]
    assert page.evaluate("document.activeElement.classList.contains('bs-stage')")
    assert page.inner_text(".bs-status").startswith("G[2, 1] = 1 stamps K onto grad_x rows 4..6, columns 2..4")
    assert page.inner_text(".bs-note").endswith("the stamps of neighbouring G pixels share cells, where they add up.")
    page.get_by_label("stride S").fill("3")                                         # taps 0..2, then 3..5
    assert page.inner_text(".bs-note").endswith("do not overlap.")
    page.get_by_label("dilation D").fill("2")                                       # taps 0, 2, 4, then 3, 5, 7
    assert page.inner_text(".bs-note").endswith("interleave without sharing a cell.")


def test_accumulate_shows_every_stamp_and_the_flipped_kernel_check(offline_page, harness_url):
    w = BackpropStampExplorer(stride=2, padding=1, dilation=2, selection=(0, 1))
    page = _mount(offline_page, harness_url, w)
    page.check("input[value=all]")
    assert page.evaluate("window.model.get('accumulate')") is True
    w.accumulate = True
    shown = page.eval_on_selector_all(".bs-gx .bs-in", "cs => cs.map(c => Number(c.textContent))")
    np.testing.assert_array_equal(np.reshape(shown, (7, 7)), w.grad_input)
    gw = page.eval_on_selector_all(".bs-gw-grid .bs-cell", "cs => cs.map(c => Number(c.textContent))")
    np.testing.assert_array_equal(np.reshape(gw, (3, 3)), w.grad_weight)
    g = w.grad_out[0, 1]
    assert page.inner_text(".bs-status") == (
        f"G[0, 1] = {g} stamps {g}·K onto grad_x rows −1, 1, 3, columns 1, 3, 5 and adds {g}·x rows −1, 1, 3, "
        f"columns 1, 3, 5 to grad_weight; the taps on row −1 fall on the zero padding: their gradient is dropped "
        f"and they add 0. All 9 stamps summed: grad_x equals the full correlation with the flipped kernel.")
    assert page.inner_text(".bs-check").endswith("largest difference 0.")
    assert page.locator(".bs-gx .bs-tap.bs-pad").count() == 3                        # the top row of the stamp
    page.check("input[value=one]")
    assert page.inner_text(".bs-check") == "" and page.evaluate("window.model.get('accumulate')") is False


def test_settings_resize_g_and_refuse_a_kernel_that_does_not_fit(offline_page, harness_url):
    w = BackpropStampExplorer(np.ones((6, 6), dtype=int), selection=(3, 3))
    page = _mount(offline_page, harness_url, w)
    page.fill("input[name=stride]", "2")
    w.stride = 2
    assert page.evaluate("window.model.get('grad_out')") == w.grad_out.tolist()
    assert page.evaluate("window.model.get('selection')") == list(w.selection) == [1, 1]
    assert page.locator(".bs-gout .bs-cell").count() == 4
    page.get_by_label("dilation D").focus()
    page.keyboard.press("ArrowUp")                                                  # 2: fits
    page.keyboard.press("ArrowUp")                                                  # 3: spans 7 > 6, refused
    assert page.evaluate("window.model.get('dilation')") == 2
    assert page.input_value("input[name=dilation]") == "2"
    assert page.inner_text(".bs-status") == ("dilation D = 3 leaves no output: the dilated kernel spans 7 rows, "
                                             "the padded input has only 6; it stays 2.")
    page.get_by_label("padding P").fill("1")
    page.get_by_label("dilation D").fill("3")                                       # 6 + 2 = 8: now it fits
    assert page.evaluate("[window.model.get('padding'), window.model.get('dilation')]") == [1, 3]
    assert offline_page.console_errors == []


def test_every_control_is_labelled_and_reachable_by_tab(offline_page, harness_url):
    page = _mount(offline_page, harness_url, BackpropStampExplorer())
    for label in ["stride S", "padding P", "dilation D", "one-hot at the selected pixel",
                  "all of G: accumulate every stamp"]:
        assert page.get_by_label(label, exact=False).count() == 1, label
    page.focus("input[name=stride]")
    seen = []
    for _ in range(6):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("() => document.activeElement.name || document.activeElement.className"))
    for name in ["padding", "dilation", "bs-stage"]:
        assert name in seen, (name, seen)
    assert any(s.startswith("bs-mode-") for s in seen), seen
    outline = page.evaluate("""() => { const s = document.querySelector('.bs-stage'); s.focus();
        return getComputedStyle(s).outlineStyle + ' ' + getComputedStyle(s).outlineWidth; }""")
    assert outline == "solid 3px"


def test_fits_a_360px_phone_screen(offline_page, harness_url):
    page = _mount(offline_page, harness_url, BackpropStampExplorer(padding=2), width=360)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


@pytest.mark.parametrize("accumulate", [False, True], ids=["one-hot", "all-of-G"])
def test_redraw_time_over_200_selections(offline_page, harness_url, accumulate):
    """Median time of one arrow-key move, layout included (printed; only a generous bound is asserted)."""
    widget = BackpropStampExplorer(np.arange(64).reshape(8, 8), padding=1, accumulate=accumulate)   # G 8x8
    page = _mount(offline_page, harness_url, widget)
    times = page.evaluate("""() => {
        const stage = document.querySelector('.bs-stage'), times = [];
        const key = (k) => stage.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}));
        for (let i = 0; i < 200; i++) {
            const t0 = performance.now();
            key(i % 8 === 7 ? (i % 64 === 63 ? 'Home' : 'ArrowDown') : 'ArrowRight');
            void document.body.offsetHeight;               // force style and layout
            times.push(performance.now() - t0);
        }
        return times;
    }""")
    assert len(times) == 200 and page.evaluate("window.model.get('selection')") != [0, 0]
    print(f"\nBackpropStampExplorer move ({'all of G' if accumulate else 'one-hot'}, 8x8 x, P = 1): "
          f"median {np.median(times):.2f} ms, p90 {np.percentile(times, 90):.2f} ms over 200 moves")
    assert np.median(times) < 50


# -- the built book --------------------------------------------------------------------------

def test_chapter_widget_works_offline(offline_page, book_server):
    page = offline_page.page
    with screenshot_on_failure(page, "chapter7-backprop-stamp"):
        page.goto(f"{book_server}/{CHAPTER}", wait_until="networkidle")
        page.wait_for_selector(".bs .bs-stage", timeout=60000)       # generous: a loaded CI machine
        state = widget_state(page, "BackpropStampExplorer")
        before = page.inner_text(".bs-status")
        page.locator(".bs-stage").scroll_into_view_if_needed()
        page.focus(".bs-stage")
        page.keyboard.press("ArrowRight")
        after = page.inner_text(".bs-status")
        assert after != before
        i, j = map(int, re.search(r"G\[(\d+), (\d+)\]", after).groups())
        cfg = {**state, "selection": [i, j], "accumulate": False}
        gx, gw = reference(cfg)
        shown = page.eval_on_selector_all(".bs-gx .bs-in", "cs => cs.map(c => Number(c.textContent))")
        np.testing.assert_array_equal(np.reshape(shown, gx.shape), gx)
        page.check("input[value=all]")
        gx, gw = reference({**cfg, "accumulate": True})
        shown = page.eval_on_selector_all(".bs-gw-grid .bs-cell", "cs => cs.map(c => Number(c.textContent))")
        np.testing.assert_array_equal(np.reshape(shown, gw.shape), gw)
        assert page.inner_text(".bs-check").endswith("largest difference 0.")
        assert offline_page.console_errors == [], offline_page.console_errors
        assert offline_page.failed == [] and offline_page.blocked == [], (offline_page.failed, offline_page.blocked)


# -- JupyterLab, live --------------------------------------------------------------------------

LAB_CELLS = [
    "from conv_course.widgets import BackpropStampExplorer\n"
    "w = BackpropStampExplorer()\nw",
    "w.stride = 2",
    "print('python sees', tuple(w.selection), w.accumulate, w.grad_weight.tolist())",
]


@pytest.mark.slow
def test_widget_live_in_jupyterlab(offline_page, lab):
    """Keys move the selection and Python sees it; a Python-side change of stride redraws the view."""

    page = offline_page.page
    page.set_default_timeout(30000)
    with screenshot_on_failure(page, "jupyterlab-backprop-stamp"):
        open_notebook(page, lab, "backprop_stamp.ipynb", LAB_CELLS)
        run_cell(page, 0)
        page.wait_for_selector(".bs .bs-stage", timeout=60000)
        page.focus(".bs-stage")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowRight")
        assert page.inner_text(".bs-status").startswith("G[1, 1] = 1 stamps K onto grad_x rows 1..3")
        run_cell(page, 1)                                   # w.stride = 2, from Python
        page.wait_for_function("document.querySelectorAll('.bs-gout .bs-cell').length === 9", timeout=30000)
        assert page.inner_text(".bs-status").startswith("G[1, 1] = 1 stamps K onto grad_x rows 2..4, columns 2..4")
        page.check("input[value=all]")
        run_cell(page, 2)
        out = page.locator(".jp-OutputArea-output", has_text="python sees")
        out.wait_for(timeout=30000)
        want = BackpropStampExplorer(stride=2, selection=(1, 1), accumulate=True)
        assert f"python sees (1, 1) True {want.grad_weight.tolist()}" in out.inner_text()
