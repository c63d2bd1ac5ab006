"""Headless Chromium (Debian's, driven by playwright) with every non-loopback request blocked."""

import shutil
from urllib.parse import urlparse

import pytest
from harness import harness_folder, serve_directory

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


@pytest.fixture(scope="session")
def book_server(built_book):
    """The built book served on loopback; yields its base URL."""
    server, url = serve_directory(built_book)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def site(built_book, book_server):
    """(base URL, html directory) of the book served on 127.0.0.1."""
    return book_server, built_book


@pytest.fixture(scope="session")
def widget_harness(tmp_path_factory):
    """widget_harness("kernel_explorer"): the URL of the harness page running that widget's view."""
    servers, urls = [], {}

    def url(module):
        if module not in urls:
            root = harness_folder(tmp_path_factory.mktemp(f"{module}-harness"), module)
            server, base = serve_directory(root)
            servers.append(server)
            urls[module] = f"{base}/index.html?widget={module}"
        return urls[module]

    yield url
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A JupyterLab server for the widgets' live tests: (url, token); see lab_server.open_notebook."""
    from lab_server import serve

    with serve(tmp_path_factory.mktemp("lab")) as server:
        yield server
