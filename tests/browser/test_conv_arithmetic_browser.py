"""ConvArithmeticExplorer in the browser with no Python kernel and no network.

Two routes, as for KernelExplorer: a harness page that runs conv_arithmetic.js with an in-page
model (its arithmetic against `conv_course.ops`, its words against the Python side, keyboard,
redraw time), and the built chapter 2 page (offline, embedded widget state, keyboard).
"""

import re

import numpy as np
import pytest

from conv_course import ops
from conv_course.widgets import ConvArithmeticExplorer
from conv_course.widgets.conv_arithmetic import PRESETS, problem
from harness import mount, screenshot_on_failure, widget_state
from lab_server import open_notebook, run_cell

CHAPTER = "book/02-padding-stride-dilation/padding-stride-dilation.html"


@pytest.fixture(scope="module")
def harness_url(widget_harness):
    return widget_harness("conv_arithmetic")


def _mount(offline_page, harness_url, widget, width=1000):
    return mount(offline_page.page, harness_url, widget.get_state(), width=width)


def expected(settings):
    """ops.conv2d or ops.conv_transpose2d of a settings dict (the synced names)."""
    x = np.asarray(settings["input"], dtype=np.int64)[None, None]
    k = np.asarray(settings["kernel"], dtype=np.int64)[None, None]
    kw = {name: settings[name] for name in ("padding", "stride", "dilation")}
    if settings["transposed"]:
        return ops.conv_transpose2d(x, k, output_padding=settings["output_padding"], **kw)[0, 0]
    return ops.conv2d(x, k, **kw)[0, 0]


def random_settings(rng, transposed):
    h, w = rng.integers(1, 10, size=2)
    kh, kw = rng.integers(1, 6, size=2)
    s, d = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    return {"input": rng.integers(-9, 10, size=(h, w)).tolist(), "kernel": rng.integers(-5, 6, size=(kh, kw)).tolist(),
            "padding": int(rng.integers(0, 5)), "stride": s, "dilation": d, "transposed": transposed,
            "output_padding": int(rng.integers(0, max(s, d) + 1)) if transposed else 0, "position": [0, 0]}


@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_js_output_equals_ops_on_random_settings(offline_page, harness_url, transposed):
    rng = np.random.default_rng(11 + transposed)
    configs = [random_settings(rng, transposed) for _ in range(300)]
    page = _mount(offline_page, harness_url, ConvArithmeticExplorer())
    got = page.evaluate("""configs => configs.map(cfg => {
        for (const [k, v] of Object.entries(cfg)) window.model.set(k, v);
        const ca = document.querySelector('.ca').ca;
        return {output: ca.output, problem: ca.problem};
    })""", configs)
    checked, worst = 0, 0.0
    for cfg, out in zip(configs, got):
        text = problem(np.shape(cfg["input"]), np.shape(cfg["kernel"]), cfg["padding"], cfg["stride"],
                       cfg["dilation"], cfg["transposed"], cfg["output_padding"])
        assert out["problem"] == text, cfg                       # the same words as Python, or both None
        if text is None:
            want = expected(cfg)
            assert np.shape(out["output"]) == want.shape, cfg
            worst = max(worst, float(np.abs(np.asarray(out["output"]) - want).max()))
            checked += 1
    assert checked >= 150 and worst == 0
    print(f"\n{'conv_transpose2d' if transposed else 'conv2d'}: {checked} random settings with output "
          f"(and {len(configs) - checked} without, same explanation as Python), max |JS - ops| = {worst}")
    assert offline_page.console_errors == [] and offline_page.blocked == []


def test_every_preset_renders_with_ops_values(offline_page, harness_url):
    page = _mount(offline_page, harness_url, ConvArithmeticExplorer())
    for preset in PRESETS:
        page.select_option(".ca-preset", preset["name"])
        state = page.evaluate("() => window.model.state")
        assert state["preset"] == preset["name"] and state["position"] == [0, 0]
        w = ConvArithmeticExplorer(preset=preset["name"])
        assert state["input"] == w.input.tolist() and state["kernel"] == w.kernel.tolist()
        np.testing.assert_array_equal(page.evaluate("document.querySelector('.ca').ca.output"), w.output)
        assert page.locator(".ca-problem").is_hidden()
    assert offline_page.console_errors == []


def test_arrow_keys_step_and_live_region_announces(offline_page, harness_url):
    w = ConvArithmeticExplorer(preset="padding, strides")              # 5x5, P = 1, S = 2: output 3x3
    page = _mount(offline_page, harness_url, w)
    want = w.output
    page.focus(".ca-stage")
    for key in ["ArrowRight", "ArrowRight", "ArrowDown"]:
        page.keyboard.press(key)
    assert page.evaluate("window.model.get('position')") == [1, 2]
    status = page.inner_text(".ca-status")
    assert status == (f"Step 6 of 9: the window covers padded-input rows 2 to 4, columns 4 to 6; "
                      f"output[1, 2] = {want[1, 2]}.")
    assert page.get_attribute(".ca-status", "aria-live") == "polite"
    assert page.inner_text(".ca-out .ca-current") == str(want[1, 2])
    taps = page.locator(".ca-in .ca-tap")
    assert taps.count() == 9 and page.get_attribute(".ca-in .ca-tap >> nth=2", "data-w") == "×3"
    assert page.locator(".ca-in .ca-tap.ca-pad").count() == 3       # the window's right column is padding
    page.keyboard.press("End")
    assert page.evaluate("window.model.get('position')") == [2, 2]
    page.keyboard.press("ArrowLeft")
    assert page.inner_text(".ca-step") == "step 8 of 9"
    page.keyboard.press("Home")
    assert page.inner_text(".ca-status").startswith("Step 1 of 9:")
    page.keyboard.press("Space")                                        # play, then pause
    assert page.inner_text(".ca-play").endswith("Pause")
    page.wait_for_function("window.model.get('position')[1] === 1", timeout=5000)
    page.keyboard.press("Space")
    assert page.inner_text(".ca-play").endswith("Play")
    assert [page.get_by_role("button", name=n, exact=True).count() for n in ["First", "Back", "Play", "Next", "Last"]] \
        == [1] * 5
    page.click(".ca-next")
    assert page.evaluate("window.model.get('position')") == [0, 2]
    assert page.evaluate("window.model.saves") > 0


def test_every_control_is_labelled_and_reachable_by_tab(offline_page, harness_url):
    page = _mount(offline_page, harness_url, ConvArithmeticExplorer(transposed=True))
    for label in ["input rows H", "input columns W", "kernel rows", "kernel columns", "padding P", "stride S",
                  "dilation D", "output_padding", "example (Dumoulin & Visin)"]:
        assert page.get_by_label(label, exact=False).count() >= 1, label
    page.get_by_label("padding P").focus()
    page.keyboard.press("ArrowUp")                                      # number inputs step with arrows
    assert page.evaluate("window.model.get('padding')") == 1
    page.focus(".ca-preset")
    seen = []
    for _ in range(25):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("""() => { const a = document.activeElement;
            return a.name || a.className || a.tagName; }"""))
    for name in ["input_h", "input_w", "kernel_h", "kernel_w", "padding", "stride", "dilation", "output_padding",
                 "ca-first", "ca-prev", "ca-play", "ca-next", "ca-last", "ca-stage"]:
        assert name in seen, (name, seen)
    outline = page.evaluate("""() => { const s = document.querySelector('.ca-stage'); s.focus();
        return getComputedStyle(s).outlineStyle + ' ' + getComputedStyle(s).outlineWidth; }""")
    assert outline == "solid 3px"


def test_transposed_stamps_add_up_to_conv_transpose2d(offline_page, harness_url):
    w = ConvArithmeticExplorer(preset="padding, strides, transposed (odd)")   # 3x3 -> 6x6, P = 1, op = 1
    page = _mount(offline_page, harness_url, w)
    page.focus(".ca-stage")
    for step in range(9):
        i, j = divmod(step, 3)
        v = w.input[i, j]
        assert page.inner_text(".ca-in .ca-current") == str(v)
        pluses = page.eval_on_selector_all(".ca-out .ca-tap", "cells => cells.map(c => c.dataset.w)")
        assert pluses == [f"+{v * k}" for k in w.kernel.ravel()]       # the kernel scaled by the input value
        page.keyboard.press("ArrowRight")
    shown = page.eval_on_selector_all(".ca-out .ca-cell:not(.ca-crop)", "cells => cells.map(c => Number(c.textContent))")
    np.testing.assert_array_equal(np.reshape(shown, (6, 6)), w.output)
    assert page.locator(".ca-out .ca-crop").count() == 8 * 8 - 6 * 6
    assert page.locator(".ca-out .ca-extra").count() == 8 + 8 - 1      # the output_padding row and column
    assert page.inner_text(".ca-status") == ("Step 9 of 9: input[2, 2] = 4 stamps 4 × kernel onto output rows 3 "
                                             "to 5, columns 3 to 5.")


def test_invalid_setting_explains_itself(offline_page, harness_url):
    w = ConvArithmeticExplorer(5, 3)
    page = _mount(offline_page, harness_url, w)
    page.fill("input[name=dilation]", "3")                            # span 7 > 5: no output
    w.dilation = 3
    assert page.evaluate("window.model.get('dilation')") == 3          # accepted, not refused
    assert page.locator(".ca-problem").is_visible()
    assert page.inner_text(".ca-problem").endswith(w.problem)
    assert "The term D(K−1) = 6 is larger than H + 2P − 1 = 4" in w.problem
    assert page.inner_text(".ca-status") == w.problem                  # announced
    assert page.is_disabled(".ca-next") and page.locator(".ca-out .ca-cell").count() == 0
    page.fill("input[name=padding]", "1")
    assert page.locator(".ca-problem").is_hidden() and page.locator(".ca-out .ca-cell").count() == 1
    page.check("input[value=transposed]")
    page.fill("input[name=output_padding]", "3")                      # stride 1, dilation 3: op < 3
    assert page.inner_text(".ca-problem").startswith("⚠ output_padding = 3 is too large")
    assert page.inner_text(".ca-formula").splitlines()[0] == (
        "H_out = (H−1)·S − 2P + D(K−1) + output_padding + 1 = (5−1)·1 − 2·1 + 3·(3−1) + 3 + 1 = 12")
    assert offline_page.console_errors == []


def test_formula_substitutes_the_numbers(offline_page, harness_url):
    page = _mount(offline_page, harness_url, ConvArithmeticExplorer((5, 7), (3, 2), padding=1, stride=2))
    assert page.inner_text(".ca-formula").splitlines() == [
        "H_out = ⌊(H + 2P − D(K−1) − 1) / S⌋ + 1 = ⌊(5 + 2·1 − 1·(3−1) − 1) / 2⌋ + 1 = ⌊4 / 2⌋ + 1 = 3",
        "W_out = ⌊(W + 2P − D(K−1) − 1) / S⌋ + 1 = ⌊(7 + 2·1 − 1·(2−1) − 1) / 2⌋ + 1 = ⌊7 / 2⌋ + 1 = 4"]


def test_size_change_fills_like_python(offline_page, harness_url):
    w = ConvArithmeticExplorer(np.full((2, 2), 7))
    page = _mount(offline_page, harness_url, w)
    page.fill("input[name=input_w]", "4")
    page.fill("input[name=input_h]", "3")
    w.input = (3, 4)
    assert page.evaluate("window.model.get('input')") == w.input.tolist()


def test_fits_a_360px_phone_screen(offline_page, harness_url):
    page = _mount(offline_page, harness_url, ConvArithmeticExplorer(preset="full padding, no strides"), width=360)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


@pytest.mark.parametrize("preset", ["full padding, no strides", "padding, strides, transposed (odd)"])
def test_redraw_time_over_200_steps(offline_page, harness_url, preset):
    """Median time of one arrow-key step, layout included (reported, not asserted: machines differ)."""
    page = _mount(offline_page, harness_url, ConvArithmeticExplorer(preset=preset))
    times = page.evaluate("""() => {
        const stage = document.querySelector('.ca-stage'), times = [];
        const key = (k) => stage.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}));
        for (let i = 0; i < 200; i++) {
            const t0 = performance.now();
            key(i % 30 === 29 ? 'Home' : 'ArrowRight');
            void document.body.offsetHeight;               // force style and layout
            times.push(performance.now() - t0);
        }
        return times;
    }""")
    assert len(times) == 200 and page.evaluate("window.model.get('position')") != [0, 0]
    print(f"\nConvArithmeticExplorer step ({preset}): median {np.median(times):.2f} ms, "
          f"p90 {np.percentile(times, 90):.2f} ms over 200 steps")


# -- the built book --------------------------------------------------------------------------

def test_chapter_widget_works_offline(offline_page, book_server):
    page = offline_page.page
    with screenshot_on_failure(page, "chapter2-conv-arithmetic"):
        page.goto(f"{book_server}/{CHAPTER}", wait_until="networkidle")
        page.wait_for_selector(".ca .ca-stage", timeout=20000)
        state = widget_state(page, "ConvArithmeticExplorer")
        want = expected(state)
        before = page.inner_text(".ca-status")
        page.locator(".ca-stage").scroll_into_view_if_needed()
        page.focus(".ca-stage")
        page.keyboard.press("ArrowRight")
        after = page.inner_text(".ca-status")
        assert after != before
        row, col = map(int, re.search(r"(?:output|input)\[(\d+), (\d+)\]", after).groups())
        if state["transposed"]:
            assert f"input[{row}, {col}] = {state['input'][row][col]} stamps" in after
        else:
            assert after.endswith(f"output[{row}, {col}] = {want[row, col]}.")
        page.select_option(".ca-preset", "padding, strides, transposed (odd)")
        page.focus(".ca-stage")
        page.keyboard.press("End")
        shown = page.eval_on_selector_all(".ca-out .ca-cell:not(.ca-crop)", "cells => cells.map(c => Number(c.textContent))")
        np.testing.assert_array_equal(np.reshape(shown, (6, 6)),
                                      ConvArithmeticExplorer(preset="padding, strides, transposed (odd)").output)
        assert page.locator("mjx-container").count() > 0, "MathJax rendered nothing"
        assert offline_page.console_errors == [], offline_page.console_errors
        assert offline_page.failed == [] and offline_page.blocked == [], (offline_page.failed, offline_page.blocked)


# -- JupyterLab, live --------------------------------------------------------------------------

LAB_CELLS = [
    "from conv_course.widgets import ConvArithmeticExplorer\n"
    "w = ConvArithmeticExplorer(preset='padding, strides')\nw",
    "w.transposed = True",
    "print('python sees', tuple(w.position), w.preset, w.transposed)",
]


@pytest.mark.slow
def test_widget_live_in_jupyterlab(offline_page, lab):
    """Keys move the window and Python sees it; a Python-side change redraws the view."""

    page = offline_page.page
    page.set_default_timeout(30000)
    with screenshot_on_failure(page, "jupyterlab-conv-arithmetic"):
        open_notebook(page, lab, "arithmetic.ipynb", LAB_CELLS)
        run_cell(page, 0)
        page.wait_for_selector(".ca .ca-stage", timeout=60000)
        page.focus(".ca-stage")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        assert page.inner_text(".ca-status").startswith("Step 3 of 9:")
        run_cell(page, 1)                                   # w.transposed = True, from Python
        page.wait_for_function("document.querySelector('.ca input[value=transposed]').checked", timeout=30000)
        assert page.inner_text(".ca-status").startswith("Step 3 of 25: input[0, 2] = 3 stamps")
        run_cell(page, 2)
        out = page.locator(".jp-OutputArea-output", has_text="python sees")
        out.wait_for(timeout=30000)
        assert "python sees (0, 2) custom True" in out.inner_text()
