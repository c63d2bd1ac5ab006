"""ChannelsExplorer in the browser with no Python kernel and no network.

Two routes, as for the other widgets: a harness page that runs channels.js with an in-page model
(its per-channel maps, sum and output against `conv_course.ops`, its words against the Python
side, keyboard, mouse, redraw time), and the built chapter 3 page (offline, embedded widget
state, keyboard).
"""


import numpy as np
import pytest

from conv_course import ops
from conv_course.widgets import ChannelsExplorer
from conv_course.widgets.kernel_explorer import _image_from_json
from harness import mount, screenshot_on_failure, widget_state
from lab_server import open_notebook, run_cell

CHAPTER = "book/03-channels/channels.html"


@pytest.fixture(scope="module")
def harness_url(widget_harness):
    return widget_harness("channels")


def _mount(offline_page, harness_url, widget, width=1000):
    return mount(offline_page.page, harness_url, widget.get_state(), width=width)


def expected(state):
    """(partials (3, H_out, W_out), output (H_out, W_out)) of a synced state, from ops.conv2d."""
    x = _image_from_json(state["image"], None).transpose(2, 0, 1)[None]
    k = np.asarray(state["kernel"], dtype=np.float64)
    partials = ops.conv2d(x, k[:, None], padding=state["padding"], groups=3)[0]
    output = ops.conv2d(x, k[None], bias=np.array([state["bias"]]), padding=state["padding"])[0, 0]
    return partials, output


def _js_maps(page):
    return page.evaluate("""() => { const cx = document.querySelector('.cx').cx;
        return {partials: cx.partials, sum: cx.sum, output: cx.output}; }""")


def _as_array(m):
    return np.reshape(m["data"], (m["h"], m["w"]))


def random_state(rng):
    h, w = rng.integers(3, 20, size=2)
    kh, kw = rng.integers(1, 6, size=2)
    padding = int(rng.integers(0, 3))
    if min(h, w) + 2 * padding < max(kh, kw):
        padding = 2
    widget = ChannelsExplorer(rng.random((h, w, 3)), rng.normal(size=(3, kh, kw)), bias=float(rng.normal()),
                              padding=padding)
    return {name: widget.get_state()[name] for name in ("image", "kernel", "bias", "padding", "position")}


def test_js_maps_sum_and_output_equal_ops_on_random_settings(offline_page, harness_url):
    rng = np.random.default_rng(3)
    states = [ChannelsExplorer(image=name, kernel=preset, bias=0.25).get_state()
              for name, preset in [("chelsea", "luminance edge"), ("coffee", "red minus green"), ("astronaut", "blur")]]
    states = [{k: s[k] for k in ("image", "kernel", "bias", "padding", "position")} for s in states]
    states += [random_state(rng) for _ in range(60)]
    page = _mount(offline_page, harness_url, ChannelsExplorer())
    got = page.evaluate("""states => states.map(state => {
        for (const [k, v] of Object.entries(state)) window.model.set(k, v);
        const cx = document.querySelector('.cx').cx;
        return {partials: cx.partials, sum: cx.sum, output: cx.output};
    })""", states)
    worst = 0.0
    for state, js in zip(states, got):
        partials, output = expected(state)
        js_partials = np.stack([_as_array(m) for m in js["partials"]])
        assert js_partials.shape == partials.shape and _as_array(js["output"]).shape == output.shape
        worst = max(worst, np.abs(js_partials - partials).max(), np.abs(_as_array(js["sum"]) - partials.sum(0)).max(),
                    np.abs(_as_array(js["output"]) - output).max())
    assert worst <= 1e-9
    print(f"\nChannelsExplorer: {len(states)} settings (3 photos, {len(states) - 3} random float64), "
          f"max |JS - ops.conv2d| over partials, sum and output = {worst:.2e}")
    assert offline_page.console_errors == [] and offline_page.blocked == []


def test_arrow_keys_move_the_window_and_live_region_announces(offline_page, harness_url):
    w = ChannelsExplorer(bias=0.5, position=(3, 5))
    page = _mount(offline_page, harness_url, w)
    assert page.inner_text(".cx-status") == w.equation
    assert page.get_attribute(".cx-status", "aria-live") == "polite"
    page.focus(".cx-stage")
    for key, where in [("ArrowRight", (3, 6)), ("ArrowDown", (4, 6)), ("ArrowLeft", (4, 5)), ("ArrowUp", (3, 5)),
                       ("Shift+ArrowRight", (3, 10)), ("End", (31, 31)), ("ArrowDown", (31, 31)), ("Home", (0, 0))]:
        before = page.inner_text(".cx-status")
        page.keyboard.press(key)
        assert tuple(page.evaluate("window.model.get('position')")) == where, key
        w.position = where
        status = page.inner_text(".cx-status")
        assert status == w.equation and (status != before or key == "ArrowDown")
    partials = [float(v) for v in page.eval_on_selector_all(".cx-partial", "ps => ps.map(p => p.dataset.value)")]
    np.testing.assert_allclose(partials, w.partials[:, 0, 0], atol=1e-12)
    # the window's values: at (0, 0) with padding 1, its first row and column are padding zeros
    red = page.eval_on_selector_all(".cx-red .cx-window .cx-cell", "cs => cs.map(c => [c.textContent, c.className])")
    assert [t for t, cls in red if "cx-pad" in cls] == ["0"] * 5
    assert red[4][0] == f"{w.image[0, 0, 0]:.2f}"
    page.focus(".cx-red .cx-weight >> nth=0")                          # keys in a weight box stay there
    page.keyboard.press("ArrowRight")
    assert page.evaluate("window.model.get('position')") == [0, 0]
    assert page.evaluate("window.model.saves") > 0


def test_editing_weights_bias_preset_and_padding_follows_ops(offline_page, harness_url):
    w = ChannelsExplorer(kernel="blur", position=(7, 9))
    page = _mount(offline_page, harness_url, w)
    page.fill(".cx-blue .cx-weight >> nth=4", "1")                     # the blue slice's centre
    page.keyboard.press("Tab")
    state = page.evaluate("window.model.state")
    assert state["preset"] == "custom" and state["kernel"][2][1][1] == 1
    assert page.input_value(".cx-preset") == "custom"
    partials, output = expected(state)
    np.testing.assert_allclose(_as_array(_js_maps(page)["output"]), output, atol=1e-12)
    page.fill(".cx-bias", "-0.75")
    page.select_option(".cx-preset", "red minus green")
    page.fill(".cx-padding", "0")
    state = page.evaluate("window.model.state")
    assert (state["bias"], state["preset"], state["padding"]) == (-0.75, "red minus green", 0)
    w.bias, w.kernel, w.padding = -0.75, "red minus green", 0
    assert page.inner_text(".cx-status") == w.equation
    partials, output = expected(state)
    assert output.shape == (30, 30)
    np.testing.assert_allclose(_as_array(_js_maps(page)["output"]), output, atol=1e-12)
    page.fill(".cx-padding", "9")                                      # out of range: ignored
    assert page.evaluate("window.model.get('padding')") == 0
    assert offline_page.console_errors == []


def test_click_and_drag_move_the_window(offline_page, harness_url):
    w = ChannelsExplorer(position=(0, 0))
    page = _mount(offline_page, harness_url, w)
    box = page.locator(".cx-result .cx-map >> nth=1").bounding_box()     # the output channel
    page.mouse.click(box["x"] + box["width"] * (20.5 / 32), box["y"] + box["height"] * (10.5 / 32))
    assert page.evaluate("window.model.get('position')") == [10, 20]
    box = page.locator(".cx-green .cx-in").bounding_box()                # drag on the green input
    page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.75 * box["width"], box["y"] + 0.5 * box["height"], steps=8)
    page.mouse.up()
    row, col = page.evaluate("window.model.get('position')")
    assert abs(row - (0.5 * 34 - 1.5)) <= 1 and abs(col - (0.75 * 34 - 1.5)) <= 1   # centred on the pointer
    w.position = (row, col)
    assert page.inner_text(".cx-status") == w.equation


def test_every_control_is_labelled_and_focus_is_visible(offline_page, harness_url):
    page = _mount(offline_page, harness_url, ChannelsExplorer())
    for label in ["kernel preset", "padding P", "+ bias b (editable)"]:
        assert page.get_by_label(label, exact=True).count() == 1, label
    for name in ["red", "green", "blue"]:
        assert page.get_by_label(f"{name} slice, weight row 1 column 2").count() == 1
        assert page.inner_text(f".cx-{name} .cx-title") == f"{name} channel"    # named in words
    outline = page.evaluate("""() => { const s = document.querySelector('.cx-stage'); s.focus();
        return getComputedStyle(s).outlineStyle + ' ' + getComputedStyle(s).outlineWidth; }""")
    assert outline == "solid 3px"


def test_fits_a_360px_phone_screen(offline_page, harness_url):
    page = _mount(offline_page, harness_url, ChannelsExplorer(), width=360)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


def test_redraw_time_over_200_steps(offline_page, harness_url):
    """Median time of one arrow-key step on the 32x32 photo, layout included (reported, not asserted)."""
    page = _mount(offline_page, harness_url, ChannelsExplorer())
    times = page.evaluate("""() => {
        const stage = document.querySelector('.cx-stage'), times = [];
        const key = (k) => stage.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}));
        const start = performance.now();
        for (let i = 0; i < 200; i++) {
            const t0 = performance.now();
            key(i % 31 === 30 ? 'ArrowDown' : Math.floor(i / 31) % 2 ? 'ArrowLeft' : 'ArrowRight');  // a snake: every step moves
            void document.body.offsetHeight;               // force style and layout
            times.push(performance.now() - t0);
        }
        return {times, mean: (performance.now() - start) / 200};
    }""")
    times, mean = times["times"], times["mean"]
    assert len(times) == 200 and page.evaluate("window.model.get('position')") == [6, 14]
    assert np.median(times) < 50
    print(f"\nChannelsExplorer step (32x32 photo, 3x3 kernel): median {np.median(times):.2f} ms, "
          f"p90 {np.percentile(times, 90):.2f} ms, mean {mean:.2f} ms over 200 steps")


# -- the built book --------------------------------------------------------------------------

def test_chapter_widget_works_offline(offline_page, book_server):
    page = offline_page.page
    with screenshot_on_failure(page, "chapter3-channels"):
        page.goto(f"{book_server}/{CHAPTER}", wait_until="networkidle")
        page.wait_for_selector(".cx .cx-stage", timeout=20000)
        state = widget_state(page, "ChannelsExplorer")
        partials, output = expected(state)
        before = page.inner_text(".cx-status")
        page.locator(".cx-stage").scroll_into_view_if_needed()
        page.focus(".cx-stage")
        page.keyboard.press("ArrowRight")
        after = page.inner_text(".cx-status")
        assert after != before
        row, col = page.evaluate("""() => document.querySelector('.cx-status').textContent
            .match(/output\\[(\\d+), (\\d+)\\]/).slice(1).map(Number)""")
        assert (row, col) == (state["position"][0], state["position"][1] + 1)
        shown = [float(v) for v in page.eval_on_selector_all(".cx-partial", "ps => ps.map(p => p.dataset.value)")]
        np.testing.assert_allclose(shown, partials[:, row, col], atol=1e-9)
        assert float(page.get_attribute(".cx-out", "data-value")) == pytest.approx(output[row, col], abs=1e-9)
        page.select_option(".cx-preset", "green only")
        np.testing.assert_allclose(_as_array(_js_maps(page)["output"]),
                                   expected({**state, "kernel": state["presets"]["green only"]})[1], atol=1e-9)
        assert offline_page.console_errors == [], offline_page.console_errors
        assert offline_page.failed == [] and offline_page.blocked == [], (offline_page.failed, offline_page.blocked)


# -- JupyterLab, live --------------------------------------------------------------------------

LAB_CELLS = [
    "from conv_course.widgets import ChannelsExplorer\n"
    "w = ChannelsExplorer(bias=0.5, position=(3, 5))\nw",
    "w.kernel = 'red minus green'",
    "print('python sees', tuple(w.position), w.equation)",
]


@pytest.mark.slow
def test_widget_live_in_jupyterlab(offline_page, lab):
    """Keys move the window and Python sees it; a Python-side change redraws the view."""

    page = offline_page.page
    page.set_default_timeout(30000)
    with screenshot_on_failure(page, "jupyterlab-channels"):
        open_notebook(page, lab, "channels.ipynb", LAB_CELLS)
        run_cell(page, 0)
        page.wait_for_selector(".cx .cx-stage", timeout=60000)
        page.focus(".cx-stage")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
        assert page.inner_text(".cx-status").startswith("output[4, 6] = red ")
        run_cell(page, 1)                                   # w.kernel = 'red minus green', from Python
        page.wait_for_function("document.querySelector('.cx-preset').value === 'red minus green'", timeout=30000)
        js_status = page.inner_text(".cx-status")
        run_cell(page, 2)
        out = page.locator(".jp-OutputArea-output", has_text="python sees")
        out.wait_for(timeout=30000)
        assert f"python sees (4, 6) {js_status}" in out.inner_text()
