"""Headless Chromium (Debian's, driven by playwright) with every non-loopback request blocked."""

import functools
import http.server
import shutil
import threading
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing: run `bash scripts/setup.sh --system` (installs Debian chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


class OfflinePage:
    """A page plus what it logged: console errors, failed and blocked requests."""

    def __init__(self, context):
        self.context = context
        self.page = context.new_page()
        self.console_errors, self.failed, self.blocked = [], [], []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(f"pageerror: {e}"))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))


@pytest.fixture
def offline_page(browser):
    """A fresh page whose requests may only go to loopback addresses."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    holder = {}

    def guard(route):
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            holder["page"].blocked.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    holder["page"] = OfflinePage(context)
    yield holder["page"]
    context.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_directory(directory):
    """Serve `directory` on 127.0.0.1 (a free port) in a daemon thread; returns (server, base_url)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="session")
def book_server(built_book):
    """The built book served on loopback; yields its base URL."""
    server, url = serve_directory(built_book)
    yield url
    server.shutdown()
