"""NetworkExplorer in the browser with no Python kernel and no network.

Two routes, as for the other widgets: the harness page running network_explorer.js with an
in-page model (its forward pass against torch on the shipped test digits and on random
networks of every supported layer, drawing by mouse and keyboard, redraw time), and the built
chapter 8 page (offline, embedded widget state, a scripted drawing changes the probabilities).
"""

import base64

import numpy as np
import pytest
import torch
from torch import nn

from conv_course import data, models
from conv_course.widgets import NetworkExplorer
from conv_course.widgets.network_explorer import export_layers
from harness import mount, screenshot_on_failure, widget_state
from lab_server import open_notebook, run_cell

CHAPTER = "book/08-cnns-in-pytorch/cnns-in-pytorch.html"
TOLERANCE = 1e-4          # max |JS - torch| on logits and probabilities


@pytest.fixture(scope="module")
def harness_url(widget_harness):
    return widget_harness("network_explorer")


@pytest.fixture(scope="module")
def lenet5():
    """A LeNet5 trained for 150 AdamW steps: logits of realistic size, in seconds."""
    torch.manual_seed(0)
    model = models.LeNet5()
    train_set, _ = data.mnist_subset()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(len(train_set), (64,), generator=gen)
        loss = nn.functional.cross_entropy(model(train_set.images[idx]), train_set.labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _mount(offline_page, harness_url, widget, width=1100):
    return mount(offline_page.page, harness_url, widget.get_state(), width=width)


def _pixels(b64):
    return np.frombuffer(base64.b64decode(b64), dtype=np.uint8).reshape(28, 28).astype(np.float32) / 255


def _torch_logits(model, images):
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None])


def _ne(page, expr):
    return page.evaluate(f"() => {{ const ne = document.querySelector('.nexp').ne; return {expr}; }}")


def test_js_forward_equals_torch_on_the_test_digits(offline_page, harness_url, lenet5):
    w = NetworkExplorer(lenet5)
    page = _mount(offline_page, harness_url, w)
    got = []
    for k in range(len(w.digits)):
        page.select_option(".nexp-digit", str(k))
        got.append(_ne(page, "[ne.logits, ne.probabilities]"))
    images = [_pixels(d["pixels"]) for d in w.digits]
    want = _torch_logits(lenet5, images)
    logits = np.array([g[0] for g in got])
    probs = np.array([g[1] for g in got])
    err_logits = np.abs(logits - want.numpy()).max()
    err_probs = np.abs(probs - torch.softmax(want, 1).numpy()).max()
    assert err_logits < TOLERANCE and err_probs < TOLERANCE
    correct = int((want.argmax(1).numpy() == [d["label"] for d in w.digits]).sum())
    print(f"\nLeNet5 on {len(images)} shipped test digits: max |JS - torch| logits {err_logits:.2e}, "
          f"probabilities {err_probs:.2e} (logits up to {np.abs(want.numpy()).max():.1f}; {correct} correct)")
    assert page.evaluate("window.model.get('digit')") == len(w.digits) - 1
    assert offline_page.console_errors == [] and offline_page.blocked == []


def random_network(rng):
    """A random nn.Sequential with every supported layer, valid for a 1x28x28 input, in eval mode."""
    c1, g = int(rng.choice([2, 4, 6])), int(rng.choice([1, 2]))
    c2 = g * int(rng.integers(1, 4))
    k1, d1 = int(rng.integers(1, 6)), int(rng.integers(1, 3))
    pad1 = "same" if rng.random() < 0.3 else int(rng.integers(0, 3))
    conv1 = nn.Conv2d(1, c1, k1, stride=1 if pad1 == "same" else int(rng.integers(1, 3)), padding=pad1,
                      dilation=d1, bias=bool(rng.random() < 0.7))
    bn = nn.BatchNorm2d(c1, affine=bool(rng.random() < 0.8))
    bn.running_mean.copy_(torch.randn(c1) * 0.5)
    bn.running_var.copy_(torch.rand(c1) * 2 + 0.2)
    if bn.affine:
        nn.init.normal_(bn.weight, 1, 0.5)
        nn.init.normal_(bn.bias, 0, 0.5)
    pk = int(rng.integers(2, 4))
    maxpool = nn.MaxPool2d(pk, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, pk // 2 + 1)),
                           dilation=int(rng.integers(1, 3)), ceil_mode=bool(rng.random() < 0.5))
    conv2 = nn.Conv2d(c1, c2, int(rng.integers(1, 4)), stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                      dilation=int(rng.integers(1, 3)), groups=g)
    ak = int(rng.integers(1, 4))
    avgpool = nn.AvgPool2d(ak, stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, ak // 2 + 1)),
                           ceil_mode=bool(rng.random() < 0.5), count_include_pad=bool(rng.random() < 0.5),
                           divisor_override=int(rng.integers(1, 5)) if rng.random() < 0.2 else None)
    feats = nn.Sequential(conv1, bn, nn.ReLU(), maxpool, conv2, nn.ReLU(), avgpool)
    n = feats(torch.zeros(1, 1, 28, 28)).numel()
    return nn.Sequential(feats, nn.Flatten(), nn.Linear(n, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_js_forward_equals_torch_on_random_networks(offline_page, harness_url):
    rng = np.random.default_rng(8)
    torch.manual_seed(8)
    nets = []
    while len(nets) < 40:
        try:
            nets.append(random_network(rng))
        except RuntimeError:       # a draw whose maps shrink to nothing: draw again
            continue
    w = NetworkExplorer(models.LeNet5().eval())        # mounted, then given each random network
    images = [_pixels(d["pixels"]) for d in w.digits[::6]]
    page = _mount(offline_page, harness_url, w)
    got = page.evaluate("""([nets, images]) => nets.map(layers => {
        window.model.set('layers', layers);
        const ne = document.querySelector('.nexp').ne;
        return images.map(img => { ne.pixels = img; return ne.logits; });
    })""", [[export_layers(net) for net in nets], [img.ravel().tolist() for img in images]])
    worst, kinds = 0.0, set()
    for net, logits in zip(nets, got):
        want = _torch_logits(net, images).numpy()
        worst = max(worst, float(np.abs(np.array(logits) - want).max()))
        kinds |= {type(m).__name__ for m in net.modules()}
    settings = {(m.kernel_size, m.stride, m.dilation, m.groups, m.padding) for net in nets for m in net.modules()
                if isinstance(m, nn.Conv2d)}
    assert {"Conv2d", "ReLU", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "Flatten", "Linear"} <= kinds
    assert len(settings) > 30 and any(g > 1 for *_, g, _ in settings)
    assert any(p == "same" and k[0] % 2 == 0 for k, *_, p in settings)   # asymmetric: torch pads 1 more after
    assert worst < TOLERANCE
    print(f"\n{len(nets)} random networks x {len(images)} digits: max |JS - torch| logits {worst:.2e}")
    assert offline_page.console_errors == [] and offline_page.blocked == []


def test_keyboard_draws_and_the_live_region_announces(offline_page, harness_url, lenet5):
    page = _mount(offline_page, harness_url, NetworkExplorer(lenet5, digit=-1))
    before = _ne(page, "ne.probabilities")
    assert max(_ne(page, "ne.pixels")) == 0
    page.focus(".nexp-padbox")
    for _ in range(6):
        page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")                       # pen down at row 8, column 14: paints
    assert "down (painting)" in page.inner_text(".nexp-pen")
    for _ in range(12):
        page.keyboard.press("ArrowDown")               # a vertical stroke: a "1"
    page.keyboard.press("Space")
    assert page.inner_text(".nexp-pen") == "Pen at row 20, column 14, up."
    img = _pixels(page.evaluate("window.model.get('image')"))
    assert img[8:21, 14].min() == 1 and img[:, :10].max() == 0 and img[:6].max() == 0
    after = _ne(page, "ne.probabilities")
    assert np.abs(np.array(after) - before).max() > 1e-3
    want = torch.softmax(_torch_logits(lenet5, [img]), 1)[0].numpy()
    assert np.abs(np.array(after) - want).max() < TOLERANCE
    top = int(np.argmax(want))
    assert page.inner_text(".nexp-status").startswith(f"Top class {top}, probability {100 * want[top]:.1f}%")
    assert page.inner_text(".nexp-top .nexp-mark") == "\u25c0 top"
    page.keyboard.press("ArrowRight")                  # pen up: moving paints nothing
    assert _pixels(page.evaluate("window.model.get('image')"))[20, 15] == img[20, 15]
    page.click(".nexp-clear")
    assert max(_ne(page, "ne.pixels")) == 0 and page.evaluate("window.model.get('digit')") == -1


def test_mouse_stroke_paints_a_soft_line(offline_page, harness_url, lenet5):
    page = _mount(offline_page, harness_url, NetworkExplorer(lenet5, digit=-1))
    box = page.locator(".nexp-pad").bounding_box()
    cell = box["width"] / 28
    page.mouse.move(box["x"] + 6.5 * cell, box["y"] + 14.5 * cell)
    page.mouse.down()
    page.mouse.move(box["x"] + 21.5 * cell, box["y"] + 14.5 * cell, steps=8)
    page.mouse.up()
    img = _pixels(page.evaluate("window.model.get('image')"))
    assert img[14, 7:21].min() == 1                  # full ink along the stroke
    assert img[13, 14] == img[15, 14] == 191 / 255    # a soft edge: 0.75 one pixel off the line ...
    assert img[12, 14] == img[16, 14] == 0           # ... and nothing two pixels off
    saves = page.evaluate("window.model.saves")
    assert saves >= 1 and page.evaluate("window.model.get('digit')") == -1


def test_every_control_is_labelled_and_reachable_by_tab(offline_page, harness_url, lenet5):
    page = _mount(offline_page, harness_url, NetworkExplorer(lenet5))
    seen = []
    for _ in range(6):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.className"))
    assert seen[:4] == ["nexp-padbox", "nexp-digit", "nexp-pen-toggle", "nexp-clear"]
    assert page.evaluate("document.querySelector('.nexp-digit').labels.length") == 1
    captions = page.eval_on_selector_all(".nexp-layer figcaption", "cs => cs.map(c => c.textContent)")
    assert captions[0].startswith("features.0 Conv2d 1\u21926, 5\u00d75, padding 2 \u2192 6\u00d728\u00d728 values")
    assert len(captions) == 12 and "classifier.5 Linear 84\u219210 \u2192 10" in captions[-1]


def test_fits_a_360px_phone_screen(offline_page, harness_url, lenet5):
    page = _mount(offline_page, harness_url, NetworkExplorer(lenet5), width=360)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


def test_redraw_time_over_100_strokes(offline_page, harness_url, lenet5):
    """Median time of one redraw (forward pass, every map, the bars, layout); reported, not asserted tightly."""
    page = _mount(offline_page, harness_url, NetworkExplorer(lenet5))
    times = page.evaluate("""() => {
        const ne = document.querySelector('.nexp').ne, px = ne.pixels, times = [];
        for (let i = 0; i < 100; i++) {
            px[(i * 29) % 784] = 1;
            const t0 = performance.now();
            ne.pixels = px;                                // forward pass and redraw
            void document.body.offsetHeight;               // force style and layout
            times.push(performance.now() - t0);
        }
        return times;
    }""")
    median = float(np.median(times))
    print(f"\nNetworkExplorer redraw (LeNet5, 12 layers, 66 maps): median {median:.2f} ms, "
          f"p90 {np.percentile(times, 90):.2f} ms over 100 redraws")
    assert median < 50


# -- the built book --------------------------------------------------------------------------

def test_chapter_widget_works_offline(offline_page, book_server):
    page = offline_page.page
    with screenshot_on_failure(page, "chapter8-network-explorer"):
        page.goto(f"{book_server}/{CHAPTER}", wait_until="networkidle")
        page.wait_for_selector(".nexp .nexp-padbox", timeout=20000)
        state = widget_state(page, "NetworkExplorer")
        assert len(state["digits"]) >= 30 and state["layers"][0]["kind"] == "Conv2d"
        before = page.eval_on_selector_all(".nexp-value", "vs => vs.map(v => v.textContent)")
        page.locator(".nexp-padbox").scroll_into_view_if_needed()
        page.click(".nexp-clear")
        page.focus(".nexp-padbox")
        page.keyboard.press("Space")
        for _ in range(8):
            page.keyboard.press("ArrowDown")
        after = page.eval_on_selector_all(".nexp-value", "vs => vs.map(v => v.textContent)")
        assert after != before and page.inner_text(".nexp-status").startswith("Top class ")
        page.select_option(".nexp-digit", "5")
        assert page.inner_text(".nexp-status").startswith("Top class ")
        assert offline_page.console_errors == [], offline_page.console_errors
        assert offline_page.failed == [] and offline_page.blocked == [], (offline_page.failed, offline_page.blocked)


def test_chapter_page_weight_of_the_widget(built_book):
    """The widget's model (weights, digits, view code) adds well under 1 MB to the chapter's HTML."""
    import json
    import re

    page = (built_book / CHAPTER).read_bytes()
    raw = re.search(rb'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page, re.S)
    models_ = json.loads(raw.group(1))["state"].values()
    ours = next(m["state"] for m in models_ if m["state"].get("_anywidget_id", "").endswith("NetworkExplorer"))
    total = len(json.dumps(ours).encode())
    weights = sum(len(v) for layer in ours["layers"] for k, v in layer.items() if k in ("weight", "bias", "mean", "var") and v)
    digits = sum(len(d["pixels"]) for d in ours["digits"])
    code = len(ours["_esm"].encode()) + len(ours["_css"].encode())
    print(f"\nchapter 8 page {len(page) / 1e6:.3f} MB, of which NetworkExplorer's state {total / 1e6:.3f} MB: "
          f"weights {weights / 1e6:.3f} MB (base64 float32), digits {digits / 1e6:.3f} MB, view code {code / 1e6:.3f} MB")
    assert total < 1_000_000


# -- JupyterLab, live --------------------------------------------------------------------------

LAB_CELLS = [
    "import torch\nfrom conv_course import models\nfrom conv_course.widgets import NetworkExplorer\n"
    "torch.manual_seed(0)\nw = NetworkExplorer(models.LeNet5().eval(), digit=-1)\nw",
    "print('python sees', int((w.image > 0).sum()), w.digit, "
    "bool(abs(w.probabilities - torch.softmax(torch.from_numpy(w.logits), 0).numpy()).max() < 1e-6))",
    "w.digit = 4",
]


@pytest.mark.slow
def test_widget_live_in_jupyterlab(offline_page, lab):
    """A keyboard stroke reaches Python as `image`; a digit chosen in Python redraws the view."""
    import json

    page = offline_page.page
    page.set_default_timeout(30000)
    with screenshot_on_failure(page, "jupyterlab-network-explorer"):
        open_notebook(page, lab, "network.ipynb", LAB_CELLS)
        run_cell(page, 0)
        page.wait_for_selector(".nexp .nexp-padbox", timeout=60000)
        page.focus(".nexp-padbox")
        page.keyboard.press("Space")
        for _ in range(5):
            page.keyboard.press("ArrowDown")
        page.keyboard.press("Space")
        shown = page.eval_on_selector_all(".nexp-value", "vs => vs.map(v => v.textContent)")
        run_cell(page, 1)
        out = page.locator(".jp-OutputArea-output", has_text="python sees")
        out.wait_for(timeout=30000)
        inked = int(out.inner_text().split()[2])
        assert inked > 6 * 3 and " -1 True" in out.inner_text()
        run_cell(page, 2)                                   # w.digit = 4, from Python
        page.wait_for_function("document.querySelector('.nexp-digit').value === '4'", timeout=30000)
        page.wait_for_function(f"JSON.stringify([...document.querySelectorAll('.nexp-value')].map(v => v.textContent))"
                               f" !== {json.dumps(json.dumps(shown))}", timeout=30000)
