"""Every page of the built book in headless Chromium with the network blocked.

Each page must load with no console error, no failed, blocked or 4xx/5xx request, its math
rendered by the local MathJax, its widgets rendered, every image decoded and every internal link
(and #fragment) pointing at something that exists. The search page must find "stride".

Set CONV_COURSE_BOOK_HTML=/path/to/_build/html to check an already built book.
"""

import pathlib
import re
import sys
from urllib.parse import unquote, urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "book"))
from bookpages import edition_folders, site_pages  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.book, pytest.mark.slow]

NOT_PAGES = ("_static/", "_sources/", "_images/", "_downloads/", "jupyter_execute/")
TIMEOUT_MS = 20000


def is_asset(path):
    """Whether a site path (relative, posix) is a built asset rather than a page, in any edition."""
    for folder in edition_folders():
        if folder and path.startswith(f"{folder}/"):
            path = path[len(folder) + 1:]
    return path.startswith(NOT_PAGES)


def local_target(href, base, root):
    """(file, fragment) that a same-site link points to, or None for other sites and schemes."""
    if not href.startswith(base + "/"):
        return None
    url = urlparse(href)
    path = unquote(url.path).lstrip("/")
    target = root / path
    if path == "" or path.endswith("/"):
        target = target / "index.html"
    return target, unquote(url.fragment)


def check_links(links, base, root):
    problems = []
    ids = {}
    for href in sorted(set(links)):
        resolved = local_target(href, base, root)
        if resolved is None:
            continue
        target, fragment = resolved
        if not target.is_file():
            problems.append(f"{href}: no file {target.relative_to(root)}")
        elif fragment and target.suffix == ".html":
            if target not in ids:
                ids[target] = set(re.findall(r'\sid="([^"]+)"', target.read_text(encoding="utf-8")))
            if fragment not in ids[target]:
                problems.append(f"{href}: no id {fragment!r} in {target.relative_to(root)}")
    return problems


def open_page(offline, url):
    """Go to `url`, recording 4xx/5xx responses; returns the list they are recorded in."""
    bad_status = []
    offline.page.on("response", lambda r: r.status >= 400 and bad_status.append(f"{r.status} {r.url}"))
    offline.page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
    return bad_status


@pytest.mark.parametrize("doc", site_pages())
def test_page_works_offline(offline_page, site, doc):
    base, root = site
    html_file = root / f"{doc}.html"
    assert html_file.is_file(), f"{doc} was not built"
    raw = html_file.read_text(encoding="utf-8")
    page = offline_page.page
    bad_status = open_page(offline_page, f"{base}/{doc}.html")

    if re.search(r'class="math notranslate', raw):
        try:
            page.wait_for_function(
                "() => { const m = document.querySelectorAll('.math');"
                " return m.length > 0 && Array.from(m).every(e => e.querySelector('mjx-container')); }",
                timeout=TIMEOUT_MS)
        except PlaywrightTimeout:
            raw_math = page.evaluate("Array.from(document.querySelectorAll('.math'))"
                                     ".filter(e => !e.querySelector('mjx-container')).map(e => e.textContent)")
            pytest.fail(f"{doc}: math not rendered by MathJax: {raw_math[:5]}; console: {offline_page.console_errors}")
        assert page.locator("mjx-merror").count() == 0, f"{doc}: MathJax reports a TeX error"
    views = raw.count('type="application/vnd.jupyter.widget-view+json"')
    if views:
        page.wait_for_function(
            "n => { const s = document.querySelectorAll('.widget-subarea');"
            " return s.length >= n && Array.from(s).every(e => e.childElementCount > 0); }",
            arg=views, timeout=TIMEOUT_MS)
    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)

    assert not offline_page.console_errors, f"{doc}: console errors {offline_page.console_errors}"
    assert not offline_page.blocked, f"{doc}: tried to reach the network: {offline_page.blocked}"
    assert not offline_page.failed, f"{doc}: failed requests {offline_page.failed}"
    assert not bad_status, f"{doc}: error responses {bad_status}"
    broken = page.evaluate("Array.from(document.images)"
                           ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert not broken, f"{doc}: images that did not load: {broken}"
    links = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    problems = check_links(links, base, root)
    assert not problems, f"{doc}: broken internal links:\n" + "\n".join(problems)


@pytest.mark.parametrize("folder", edition_folders())
def test_root_index_redirects_to_the_front_page(offline_page, site, folder):
    base, _ = site
    home = f"{base}/{folder}/" if folder else f"{base}/"
    offline_page.page.goto(f"{home}index.html", timeout=TIMEOUT_MS)
    offline_page.page.wait_for_url(f"{home}book/index.html", timeout=TIMEOUT_MS)
    assert offline_page.page.locator("article h1").count() == 1
    assert not offline_page.blocked and not offline_page.failed and not offline_page.console_errors


def test_every_built_page_is_checked(site):
    _, root = site
    checked = {f"{doc}.html" for doc in site_pages()} | {f"{folder}/index.html".lstrip("/") for folder in edition_folders()}
    built = {p.relative_to(root).as_posix() for p in root.rglob("*.html")}
    unchecked = {p for p in built - checked if not is_asset(p)}
    assert not unchecked, f"built pages no test opens: {sorted(unchecked)}"


def test_search_finds_stride(offline_page, site):
    base, _ = site
    bad_status = open_page(offline_page, f"{base}/search.html?q=stride")
    results = offline_page.page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=TIMEOUT_MS)
    hrefs = offline_page.page.evaluate(
        "Array.from(document.querySelectorAll('#search-results ul.search li a')).map(a => a.href)")
    assert any("02-padding-stride-dilation" in h for h in hrefs), hrefs
    assert not offline_page.console_errors and not offline_page.blocked and not bad_status


def test_chinese_search_finds_words_inside_sentences(offline_page, site):
    """Chinese has no spaces between words: the index must split them (Sphinx does it with jieba)."""
    base, _ = site
    bad_status = open_page(offline_page, f"{base}/zh_CN/search.html?q=互相关")
    results = offline_page.page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=TIMEOUT_MS)
    hrefs = offline_page.page.evaluate(
        "Array.from(document.querySelectorAll('#search-results ul.search li a')).map(a => a.href)")
    assert any("01-convolution" in h for h in hrefs), hrefs
    assert not offline_page.console_errors and not offline_page.blocked and not bad_status
