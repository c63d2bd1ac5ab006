"""What the browser tests share beyond fixtures: a loopback file server, the widget harness page,
and a screenshot kept when a check fails (importable by name: tests/browser is on sys.path)."""

import contextlib
import functools
import http.server
import pathlib
import shutil
import threading

from conv_course.widgets import __file__ as _widgets_init

HERE = pathlib.Path(__file__).parent
WIDGETS = pathlib.Path(_widgets_init).parent
ARTIFACTS = HERE.parents[1] / "_build" / "test-artifacts"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_directory(directory):
    """Serve `directory` on 127.0.0.1 (a free port) in a daemon thread; returns (server, base_url)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def harness_folder(root, module):
    """Fill `root` with widget `module`'s view (`<module>.js`, `.css`) and the harness page."""
    for suffix in (".js", ".css"):
        shutil.copy(WIDGETS / f"{module}{suffix}", root / f"{module}{suffix}")
    shutil.copy(HERE / "widget_harness.html", root / "index.html")
    return root


def mount(page, url, state, width=1000, height=900):
    """Open the harness at `url` and render a fresh widget from `state` (a widget's get_state())."""
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url)
    page.wait_for_function("window.widgetReady === true")
    page.evaluate("state => mount(state)", state)
    return page


@contextlib.contextmanager
def screenshot_on_failure(page, name):
    """Keep a full-page screenshot under _build/test-artifacts/ when the block fails."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise


def widget_state(page, class_name):
    """The synced state of the first `class_name` widget embedded in a built page."""
    import json

    raw = page.evaluate("""() => document.querySelector(
        'script[type="application/vnd.jupyter.widget-state+json"]').textContent""")
    states = [m["state"] for m in json.loads(raw)["state"].values()
              if m["state"].get("_anywidget_id", "").endswith(class_name)]
    assert states, f"the page's widget state holds no {class_name} (was the chapter executed?)"
    return states[0]
