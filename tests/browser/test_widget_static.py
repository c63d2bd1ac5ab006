"""KernelExplorer in the browser with no Python kernel and no network.

Two routes: a harness page that runs kernel_explorer.js with an in-page model (the JavaScript's
arithmetic against `conv_course.ops`, layout, keyboard, redraw time), and the built book's
chapter 4 page (offline, embedded widget state, mouse drag, controls, no console errors).
"""

import re

import numpy as np
import pytest

from conv_course import ops
from conv_course.widgets import KernelExplorer
from conv_course.widgets.kernel_explorer import _image_from_json
from harness import mount, screenshot_on_failure, widget_state

CHAPTER = "book/04-classic-kernels/classic-kernels.html"

SETTINGS = [(0, 1, 1), (1, 1, 1), (2, 2, 1), (1, 1, 2), (0, 3, 2), (3, 2, 3)]  # padding, stride, dilation


def expected_output(state, params=None):
    """ops.conv2d of a synced widget state (image, kernel, mode and params as the page holds them)."""
    params = {**{k: state[k] for k in ("padding", "stride", "dilation")}, **(params or {})}
    img = _image_from_json(state["image"], None)
    k = np.asarray(state["kernel"], dtype=np.float64)
    if state.get("mode") == "convolution":
        k = k[::-1, ::-1]
    return ops.conv2d(img[None, None], k[None, None], **params)[0, 0]


@pytest.fixture(scope="module")
def harness_url(widget_harness):
    return widget_harness("kernel_explorer")


def _mount(offline_page, harness_url, widget, width=1280):
    return mount(offline_page.page, harness_url, widget.get_state(), width=width)


def _js_outputs(page, configs):
    """Run each {name: value} config through the model and read the view's feature map back."""
    return page.evaluate("""configs => configs.map(cfg => {
        for (const [k, v] of Object.entries(cfg)) window.model.set(k, v);
        const out = document.querySelector('.kx').kx.output;
        return {h: out.h, w: out.w, data: out.data};
    })""", configs)


@pytest.mark.parametrize("image", ["float64", "photo"])
def test_js_output_equals_ops_for_every_preset_and_setting(offline_page, harness_url, image):
    rng = np.random.default_rng(7)
    img = rng.normal(size=(13, 17)) if image == "float64" else "coins"
    w = KernelExplorer(image=img, kernel="identity", size=24)
    state = w.get_state()
    assert state["image"]["dtype"] == ("float64" if image == "float64" else "uint8/255")
    page = _mount(offline_page, harness_url, w)
    h, wd = w.image.shape
    configs = []
    for sizes in state["presets"].values():
        for kernel in sizes.values():
            for padding, stride, dilation in SETTINGS:
                span = dilation * (len(kernel) - 1) + 1
                if min(h, wd) + 2 * padding < span:
                    continue
                for mode in ("correlation", "convolution"):
                    configs.append({"kernel": kernel, "padding": padding, "stride": stride,
                                    "dilation": dilation, "mode": mode, "position": [0, 0]})
    got = _js_outputs(page, configs)
    assert len(configs) == 11 * len(SETTINGS) * 2      # 8 presets, 3 of them in two sizes
    for cfg, out in zip(configs, got):
        want = expected_output({**state, **cfg})
        assert (out["h"], out["w"]) == want.shape, cfg
        np.testing.assert_allclose(np.reshape(out["data"], want.shape), want, rtol=1e-12, atol=1e-12,
                                   err_msg=str(cfg))
    assert offline_page.console_errors == [] and offline_page.blocked == []


def test_arrow_keys_move_window_and_sum_follows_ops(offline_page, harness_url):
    w = KernelExplorer(image="camera", kernel="sobel_y", padding=1, stride=2, size=32)
    page = _mount(offline_page, harness_url, w)
    page.focus(".kx-input")
    for key in ["ArrowRight"] * 3 + ["ArrowDown"] * 2 + ["Shift+ArrowRight"]:
        page.keyboard.press(key)
    assert page.evaluate("window.model.get('position')") == [2, 8]
    assert page.inner_text(".kx-where") == "output[2, 8]"
    want = expected_output(w.get_state())[2, 8]
    assert float(page.get_attribute(".kx-sum", "data-value")) == pytest.approx(want, abs=1e-12)
    page.keyboard.press("End")
    assert page.evaluate("window.model.get('position')") == [15, 15]   # (32 + 2 - 3) // 2 + 1 = 16
    assert page.inner_text(".kx-panel figcaption >> nth=1") == "Output 16×16 (mid-gray = 0, darker < 0)"


def test_editing_a_weight_updates_output_and_marks_custom(offline_page, harness_url):
    w = KernelExplorer(image=np.arange(30.0).reshape(5, 6), kernel="identity", position=(1, 2))
    page = _mount(offline_page, harness_url, w)
    page.fill(".kx-weight >> nth=4", "3")       # centre weight 1 -> 3
    page.keyboard.press("Tab")
    assert page.evaluate("window.model.get('preset')") == "custom"
    assert page.input_value(".kx-preset") == "custom"
    # centre of window (1, 2) is X[2, 3] = 15; times 3
    assert page.inner_text(".kx-sum") == "45"
    page.fill(".kx-weight >> nth=0", "oops")    # not a number: reverted, nothing changes
    page.keyboard.press("Tab")
    assert page.input_value(".kx-weight >> nth=0") == "0"
    assert page.inner_text(".kx-sum") == "45"


def test_dilation_slider_refuses_settings_without_output(offline_page, harness_url):
    w = KernelExplorer(image=np.ones((6, 6)), kernel="box_blur")
    page = _mount(offline_page, harness_url, w)
    page.fill("input[name=dilation]", "3")      # 6 < 3 * 2 + 1: no output position would fit
    assert page.evaluate("window.model.get('dilation')") == 1
    page.fill("input[name=dilation]", "2")
    assert page.evaluate("window.model.get('dilation')") == 2
    assert page.inner_text(".kx-panel figcaption >> nth=1") == "Output 2×2"


def test_touch_drag_moves_window(browser, harness_url):
    context = browser.new_context(viewport={"width": 390, "height": 800}, has_touch=True, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(harness_url)
        page.wait_for_function("window.widgetReady === true")
        w = KernelExplorer(image="camera", kernel="emboss", size=64)
        page.evaluate("state => mount(state)", w.get_state())
        page.locator(".kx-input").scroll_into_view_if_needed()
        box = page.locator(".kx-input").bounding_box()
        cdp = context.new_cdp_session(page)
        point = lambda fx, fy: [{"x": box["x"] + fx * box["width"], "y": box["y"] + fy * box["height"]}]  # noqa: E731
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": point(0.1, 0.1)})
        for i in range(1, 11):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": point(0.1 + 0.06 * i, 0.1 + 0.03 * i)})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        row, col = page.evaluate("window.model.get('position')")
        # the finger ends at x = 0.7, y = 0.4 of the 64x64 panel; the 3x3 window centred there has
        # its top-left at row 0.4 * 64 - 1.5 ~ 24, column 0.7 * 64 - 1.5 ~ 43
        assert abs(row - 24) <= 1 and abs(col - 43) <= 1
        want = expected_output(w.get_state())[row, col]
        assert float(page.get_attribute(".kx-sum", "data-value")) == pytest.approx(want, abs=1e-12)
    finally:
        context.close()


def test_preset_and_size_switch_follow_the_image(offline_page, harness_url):
    w = KernelExplorer(image=np.arange(16.0).reshape(4, 4), kernel="box_blur")
    page = _mount(offline_page, harness_url, w)
    page.select_option(".kx-size", "5")          # 5x5 does not fit a 4x4 image: refused
    assert len(page.evaluate("window.model.get('kernel')")) == 3
    assert page.input_value(".kx-size") == "3"
    page.select_option(".kx-preset", "sharpen")
    assert page.evaluate("window.model.get('preset')") == "sharpen"
    # sharpen at output (0, 0): 5*X[1,1] - X[0,1] - X[1,0] - X[1,2] - X[2,1] = 25 - 1 - 4 - 6 - 9
    assert page.inner_text(".kx-sum") == "5"
    page.fill("input[name=padding]", "1")
    page.select_option(".kx-size", "5")          # now 4 + 2 >= 5: the 3x3 sharpen grows a zero border
    kernel = page.evaluate("window.model.get('kernel')")
    assert len(kernel) == 5 and kernel[2][2] == 5 and kernel[0] == [0] * 5
    assert page.evaluate("window.model.get('preset')") == "custom"


def test_fits_a_360px_phone_screen(offline_page, harness_url):
    w = KernelExplorer(image="camera", kernel="gaussian")
    page = _mount(offline_page, harness_url, w, width=360)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    box = page.locator(".kx-input").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360


def test_redraw_time_over_100_pointer_moves(offline_page, harness_url):
    """Median time of one drag step on a 256x256 image (reported, not asserted: machines differ)."""
    w = KernelExplorer(image="camera", kernel="gaussian", size=256)
    page = _mount(offline_page, harness_url, w)
    times = page.evaluate("""() => {
        const canvas = document.querySelector('.kx-input'), box = canvas.getBoundingClientRect();
        const fire = (type, i) => canvas.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: 1,
            clientX: box.left + box.width * (0.1 + 0.008 * i), clientY: box.top + box.height * (0.2 + 0.006 * i)}));
        fire('pointerdown', 0);
        const times = [];
        for (let i = 1; i <= 100; i++) {
            const t0 = performance.now();
            fire('pointermove', i);
            times.push(performance.now() - t0);
        }
        fire('pointerup', 100);
        return times;
    }""")
    row, col = page.evaluate("window.model.get('position')")
    assert (row, col) != (0, 0) and len(times) == 100
    print(f"\nKernelExplorer redraw, 256x256: median {np.median(times):.2f} ms, "
          f"p90 {np.percentile(times, 90):.2f} ms over 100 moves")


# -- the built book --------------------------------------------------------------------------

def displayed(page):
    """(row, col, sum) the view shows now."""
    row, col = map(int, re.fullmatch(r"output\[(\d+), (\d+)\]", page.inner_text(".kx-where")).groups())
    return row, col, float(page.get_attribute(".kx-sum", "data-value"))


def drag(page, start, end, steps=12):
    """Drag with the mouse between fractions (x, y) of the input panel."""
    page.locator(".kx-input").scroll_into_view_if_needed()
    box = page.locator(".kx-input").bounding_box()
    at = lambda f: (box["x"] + f[0] * box["width"], box["y"] + f[1] * box["height"])  # noqa: E731
    page.mouse.move(*at(start))
    page.mouse.down()
    page.mouse.move(*at(end), steps=steps)
    page.mouse.up()


def check_chapter_page(offline, base_url):
    page = offline.page
    page.goto(f"{base_url}/{CHAPTER}", wait_until="networkidle")
    page.wait_for_selector(".kx canvas.kx-input", timeout=20000)
    state = widget_state(page, "KernelExplorer")
    kernels = {k: v for k, v in state["presets"].items()}

    def check_sum(**params):
        row, col, total = displayed(page)
        want = expected_output(state, params)
        assert total == pytest.approx(want[row, col], abs=1e-9), (row, col, params)
        return row, col

    start = check_sum()
    drag(page, (0.2, 0.2), (0.7, 0.6))
    moved = check_sum()
    assert moved != start
    hp = state["image"]["shape"][0] + 2 * state["padding"]
    assert abs(moved[0] - round(0.6 * hp - 1.5)) <= 1            # window centred under the pointer
    page.select_option(".kx-preset", "laplacian")
    state["kernel"] = kernels["laplacian"]["3"]
    check_sum()
    page.fill("input[name=padding]", "2")
    check_sum(padding=2)
    page.fill("input[name=stride]", "3")
    row, col = check_sum(padding=2, stride=3)
    drag(page, (0.5, 0.5), (0.3, 0.8))
    assert check_sum(padding=2, stride=3) != (row, col)
    assert page.locator("mjx-container").count() > 0, "MathJax rendered nothing"
    assert offline.console_errors == [], offline.console_errors
    assert offline.failed == [] and offline.blocked == [], (offline.failed, offline.blocked)


def test_chapter_widget_works_offline(offline_page, book_server):
    with screenshot_on_failure(offline_page.page, "chapter4-kernel-explorer"):
        check_chapter_page(offline_page, book_server)
