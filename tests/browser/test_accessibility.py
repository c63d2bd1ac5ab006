"""The built book for readers who use a screen reader, a keyboard, zoom or dark mode.

Every page of the book (each loaded once, in one browser, with the network blocked) is checked:
  * axe-core (scripts/assets.json pins it; the tests inject it, the book never serves it) with
    the WCAG 2.1 A and AA rules, plus the best-practice rules on landmarks and headings, finds no
    violation in the theme's light mode or its dark mode (``data-theme="dark"`` on <html>, as the
    theme's own button sets it), with every collapsed cell and dropdown opened;
  * in dark mode no text disappears and no image with transparent parts shows a dark background
    through them (dark lines would vanish);
  * at 200% zoom (a 640 px wide window at device scale 2, what a 1280 px window zooms to) the page
    does not scroll sideways and nothing is cut off: only code, tables and wide formulas scroll,
    inside their own boxes.
One chapter is walked with the Tab key (skip link, navigation, search, article, the kernel
explorer; every stop shows where focus is), the search has one field, and every image in every
page says in its alt text what it shows.

Set CONV_COURSE_BOOK_HTML=/path/to/_build/html to check an already built book.
"""

import difflib
import json
import pathlib
import re
import sys
from urllib.parse import urlparse

import pytest
from bs4 import BeautifulSoup

from test_pages import TIMEOUT_MS, is_asset

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "book"))
from bookpages import site_pages  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.book, pytest.mark.slow]

ROOT = pathlib.Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PAGES = site_pages()
CHAPTER = "book/04-classic-kernels/classic-kernels"  # the page with the kernel explorer
WIDE, ZOOMED = {"width": 1280, "height": 900}, {"width": 640, "height": 450}
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# best-practice rules (not WCAG success criteria) about the page's structure, checked as well
STRUCTURE_RULES = ["region", "landmark-one-main", "landmark-unique", "landmark-no-duplicate-banner",
                   "landmark-no-duplicate-main", "landmark-banner-is-top-level",
                   "landmark-main-is-top-level", "heading-order", "page-has-heading-one",
                   "empty-heading", "skip-link"]

READY = """n => document.querySelectorAll('.math').length
    === document.querySelectorAll('.math mjx-container').length
  && Array.from(document.querySelectorAll('.widget-subarea')).filter(e => e.childElementCount).length >= n"""

AXE_RUN = """async ([tags, rules]) => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags},
    rules: Object.fromEntries(rules.map(id => [id, {enabled: true}])), resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 160)}))}));
}"""

# the theme's colour mode, switched as its button does; colour transitions are run to their end
SET_MODE = """mode => { const html = document.documentElement;
  html.dataset.theme = mode; html.dataset.mode = mode; getComputedStyle(document.body).color;
  for (const a of document.getAnimations()) { try { a.finish(); } catch (e) {} }
  return getComputedStyle(document.body).backgroundColor; }"""

ARTICLE_TEXT = "() => (document.querySelector('#main-content') || document.body).innerText"

# <img> elements whose transparent pixels show a dark background (the first opaque one behind them)
SEE_THROUGH_IMAGES = """() => Array.from(document.images).filter(i => i.complete && i.naturalWidth).filter(i => {
  const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
  const ctx = c.getContext('2d'); ctx.drawImage(i, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let clear = false; for (let k = 3; k < d.length; k += 4) if (d[k] < 250) { clear = true; break; }
  if (!clear) return false;
  for (let e = i; e; e = e.parentElement) {
    const [r, g, b, a = 1] = getComputedStyle(e).backgroundColor.match(/[\\d.]+/g).map(Number);
    if (a === 1) return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128;
  }
  return true;
}).map(i => i.src.split('/').pop())"""

# Elements that stick out of the window (the page scrolls sideways) or out of a box that hides
# its overflow (cut off). Boxes that scroll (code, tables, display math) are fine; visually
# hidden text for screen readers (clip or clip-path, as MathJax's MathML copy) is skipped.
CUT_OFF = """() => {
  const vw = document.documentElement.clientWidth, out = [], hidden = new Map();
  const isHidden = e => { if (!e || e === document.body) return false; if (hidden.has(e)) return hidden.get(e);
    const s = getComputedStyle(e);
    const h = (s.clip !== 'auto' && s.clip !== '') || s.clipPath !== 'none' || isHidden(e.parentElement);
    hidden.set(e, h); return h; };
  for (const e of document.querySelectorAll('body *')) {
    if (isHidden(e)) continue;
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    if (r.width === 0 || r.height === 0 || s.visibility === 'hidden' || s.position === 'fixed') continue;
    let box = e.parentElement, overflow = 'visible';
    for (; box && box !== document.body; box = box.parentElement) {
      overflow = getComputedStyle(box).overflowX; if (overflow !== 'visible') break; }
    const name = e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : '');
    if (overflow === 'visible' || box === document.body) {
      if (r.right > vw + 1 || r.left < -1) out.push(`${name} spans x=${Math.round(r.left)}..${Math.round(r.right)} in a ${vw} px window`);
    } else if ((overflow === 'hidden' || overflow === 'clip') && e.textContent.trim()) {
      const b = box.getBoundingClientRect();
      if (r.right > b.right + 1 || r.left < b.left - 1) out.push(`${name} cut off by ${box.tagName.toLowerCase()}.${box.className}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, width: vw, cut: out.slice(0, 20)};
}"""


def _guard(route):
    host = urlparse(route.request.url).hostname or ""
    if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
        route.continue_()
    else:
        route.abort()


def _open(context, url, raw_html):
    """A page at `url` once its math is typeset and its widgets drawn."""
    page = context.new_page()
    page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
    views = raw_html.count('type="application/vnd.jupyter.widget-view+json"')
    page.wait_for_function(READY, arg=views, timeout=TIMEOUT_MS)
    page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => document.fonts.ready.then(() => true)")
    return page


def _axe(page):
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text())
    return page.evaluate(AXE_RUN, [WCAG_TAGS, STRUCTURE_RULES])


def _report(doc, mode, violations):
    lines = [f"{doc} ({mode} mode):"]
    for v in violations:
        lines.append(f"  {v['id']}: {v['help']}")
        lines += [f"    {n['target']}    {n['html']}" for n in v["nodes"][:10]]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def context(browser):
    """One browser context for every page: a 1280 px window at device scale 2, network blocked."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} missing: run `python scripts/fetch_assets.py` (scripts/setup.sh does)")
    ctx = browser.new_context(viewport=WIDE, device_scale_factor=2)
    ctx.route("**/*", _guard)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module", params=PAGES)
def checked(request, context, site):
    """Everything the page-level tests assert about one page, from a single visit to it."""
    doc, (base, root) = request.param, site
    raw = (root / f"{doc}.html").read_text(encoding="utf-8")
    page = _open(context, f"{base}/{doc}.html", raw)
    try:
        page.evaluate("() => document.querySelectorAll('details:not([open])').forEach(d => d.open = true)")
        out = {"doc": doc}
        page.evaluate(SET_MODE, "light")
        out["light_text"] = page.evaluate(ARTICLE_TEXT)
        out["light"] = _axe(page)
        out["dark_background"] = page.evaluate(SET_MODE, "dark")
        out["dark"] = _axe(page)
        out["dark_text"] = page.evaluate(ARTICLE_TEXT)
        out["see_through"] = page.evaluate(SEE_THROUGH_IMAGES)
        page.evaluate(SET_MODE, "light")
        page.set_viewport_size(ZOOMED)  # browser zoom: the same page, half as many CSS pixels
        page.wait_for_timeout(200)
        out["zoomed"] = page.evaluate(CUT_OFF)
    finally:
        page.close()
    return out


def test_axe_finds_nothing_in_light_mode(checked):
    assert not checked["light"], _report(checked["doc"], "light", checked["light"])


def test_axe_finds_nothing_in_dark_mode(checked):
    assert checked["dark_background"] != "rgb(255, 255, 255)", "dark mode did not switch on"
    assert not checked["dark"], _report(checked["doc"], "dark", checked["dark"])


def test_dark_mode_loses_no_content(checked):
    light, dark = checked["light_text"].splitlines(), checked["dark_text"].splitlines()
    assert light == dark, f"{checked['doc']}: dark mode hides text:\n" + "\n".join(
        list(difflib.unified_diff(light, dark, "light", "dark", lineterm="", n=0))[:20])
    assert not checked["see_through"], (f"{checked['doc']}: images whose transparent parts show the dark "
                                        f"background in dark mode: {checked['see_through']}")


def test_page_reflows_at_200_percent_zoom(checked):
    zoomed = checked["zoomed"]
    assert zoomed["scrollWidth"] <= zoomed["width"], (
        f"{checked['doc']}: the page scrolls sideways at 200% zoom ({zoomed['scrollWidth']} px wide "
        f"in a {zoomed['width']} px window):\n" + "\n".join(zoomed["cut"]))
    assert not zoomed["cut"], f"{checked['doc']}: content cut off at 200% zoom:\n" + "\n".join(zoomed["cut"])


# --- images -------------------------------------------------------------------------------------

GENERIC_ALT = {"image", "figure", "plot", "graph", "chart", "picture", "png", "output", "img", "photo"}


def alt_problem(img):
    """Why an <img> tag's alt text does not say what the image shows, or None when it does."""
    alt = img.get("alt")
    decorative = img.get("role") in ("presentation", "none") or img.get("aria-hidden") == "true"
    if alt is None:
        return "no alt attribute"
    alt = alt.strip()
    if not alt:
        return None if decorative else "empty alt on an image that is not marked decorative"
    src = pathlib.PurePosixPath(urlparse(img.get("src", "")).path).name
    if alt == src or re.search(r"\.(png|jpe?g|gif|svg|webp)$", alt, re.I) or "/" in alt and " " not in alt:
        return f"alt is a file name ({alt!r})"
    if alt.lower().strip(".") in GENERIC_ALT or len(alt.split()) < 3:
        return f"alt says too little ({alt!r})"
    return None


def test_alt_problem_tells_names_from_descriptions():
    def tag(html):
        return BeautifulSoup(html, "html.parser").img

    assert alt_problem(tag('<img src="a.png">')) == "no alt attribute"
    assert "file name" in alt_problem(tag('<img src="../_images/x1.png" alt="../_images/x1.png">'))
    assert "file name" in alt_problem(tag('<img src="x1.png" alt="x1.png">'))
    assert "too little" in alt_problem(tag('<img src="x.png" alt="Figure">'))
    assert "not marked decorative" in alt_problem(tag('<img src="x.png" alt="">'))
    assert alt_problem(tag('<img src="x.png" alt="" role="presentation">')) is None
    assert alt_problem(tag('<img src="x.png" alt="Training loss falling over ten epochs.">')) is None


def test_every_image_says_what_it_shows(site):
    _, root = site
    problems = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root).as_posix()
        if is_asset(rel):
            continue
        for img in BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser").find_all("img"):
            why = alt_problem(img)
            if why:
                problems.append(f"{rel}: {img.get('src')}: {why}")
    assert not problems, "images without a description:\n" + "\n".join(problems)


def test_formulas_are_readable_by_screen_readers(context, site):
    """Every formula carries a MathML copy for screen readers and a spoken label (MathJax's speech)."""
    base, root = site
    doc = "book/01-convolution/convolution"
    page = _open(context, f"{base}/{doc}.html", (root / f"{doc}.html").read_text(encoding="utf-8"))
    try:
        page.wait_for_function("() => Array.from(document.querySelectorAll('mjx-container'))"
                               ".every(c => c.getAttribute('aria-label'))", timeout=TIMEOUT_MS)
        formulas = page.evaluate("""() => Array.from(document.querySelectorAll('mjx-container')).map(c => ({
            mathml: !!c.querySelector('mjx-assistive-mml math'), speech: c.getAttribute('aria-label')}))""")
    finally:
        page.close()
    assert formulas and all(f["mathml"] for f in formulas), "formulas without a MathML copy"
    assert any("upper X" in f["speech"] for f in formulas), [f["speech"] for f in formulas[:5]]


# --- keyboard -----------------------------------------------------------------------------------

# The focused element: where it is on the page and whether it shows focus. An outline or a
# box-shadow counts when it is drawn (not none, not transparent) and differs from the element's
# look without focus (recorded in window.__unfocused before the walk).
FOCUS_STYLE = """e => { const s = getComputedStyle(e);
  return [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join('|'); }"""
RECORD_UNFOCUSED = f"""() => {{ const style = {FOCUS_STYLE};
  window.__unfocused = new Map(); document.querySelectorAll('*').forEach(e => {{
    if (e.tabIndex >= 0) window.__unfocused.set(e, style(e)); }}); }}"""
FOCUSED = f"""() => {{ const e = document.activeElement; if (!e || e === document.body) return null;
  const style = {FOCUS_STYLE}, s = getComputedStyle(e);
  const drawn = c => c && !/rgba\\([^)]*,\\s*0\\)|transparent/.test(c);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 1 && drawn(s.outlineColor);
  const shadow = s.boxShadow !== 'none' && (s.boxShadow.match(/rgba?\\([^)]*\\)/g) || []).some(drawn);
  const changed = !window.__unfocused.has(e) || window.__unfocused.get(e) !== style(e);
  // contrast of the outline with the background it is drawn on (inside the element for a
  // negative offset, around it otherwise): WCAG 1.4.11 asks 3:1 of a focus indicator
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => {{ const v = rgb(c).slice(0, 3).map(x => x / 255).map(x => x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4);
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; }};
  let bg = 'rgb(255, 255, 255)';
  for (let a = parseFloat(s.outlineOffset) < 0 ? e : e.parentElement; a; a = a.parentElement) {{
    const c = getComputedStyle(a).backgroundColor, v = rgb(c); if (v.length === 3 || v[3] === 1) {{ bg = c; break; }} }}
  const [hi, lo] = [lum(s.outlineColor), lum(bg)].sort((x, y) => y - x);
  const ringContrast = outline ? Math.round((hi + 0.05) / (lo + 0.05) * 100) / 100 : null;
  const region = e.closest('#pst-skip-link') ? 'skip link'
    : e.closest('.search-button__button') ? 'search'
    : e.closest('nav.bd-docs-nav') ? 'navigation'
    : e.closest('.kx') ? 'kernel explorer'
    : e.closest('article') ? 'article' : 'other';
  const label = (e.getAttribute('aria-label') || e.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
  return {{region, visible: (outline || shadow) && changed, ringContrast, label,
           name: e.tagName.toLowerCase() + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : ''),
           inMain: !!e.closest('#main-content'), top: e.getBoundingClientRect().top}}; }}"""


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_keyboard_reaches_everything_with_visible_focus(context, site, mode):
    base, root = site
    url = f"{base}/{CHAPTER}.html"
    page = _open(context, url, (root / f"{CHAPTER}.html").read_text(encoding="utf-8"))
    try:
        page.evaluate(SET_MODE, mode)
        page.evaluate(RECORD_UNFOCUSED)
        stops = []
        for _ in range(600):
            page.keyboard.press("Tab")
            stop = page.evaluate(FOCUSED)
            if stop is None or (stops and stop["region"] == "skip link"):
                break  # past the last element
            stops.append(stop)
        assert stops and stops[0]["region"] == "skip link", f"the first Tab stop is {stops[:1]}, not the skip link"
        reached = {s["region"] for s in stops}
        for region in ("skip link", "navigation", "search", "article", "kernel explorer"):
            assert region in reached, f"Tab never reaches the {region} ({mode} mode); it reaches {sorted(reached)}"
        unseen = [f"{s['region']}: {s['name']} {s['label']!r}" for s in stops if not s["visible"]]
        assert not unseen, f"focus is invisible on ({mode} mode):\n" + "\n".join(unseen)
        faint = [f"{s['region']}: {s['name']} {s['label']!r}: {s['ringContrast']}:1" for s in stops
                 if s["ringContrast"] is not None and s["ringContrast"] < 3]
        assert not faint, f"focus rings below 3:1 against their background ({mode} mode):\n" + "\n".join(faint)

        # the skip link shows when focused and takes the next Tab into the main content
        page.evaluate("() => window.scrollTo(0, 0)")
        page.focus("#pst-skip-link a")
        page.wait_for_timeout(400)  # the theme slides it in
        skip = page.evaluate(FOCUSED)
        assert skip["visible"] and skip["top"] >= 0, f"the skip link does not show when focused: {skip}"
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        after = page.evaluate(FOCUSED)
        assert page.url.endswith("#main-content") and after and after["inMain"], (
            f"after the skip link, Tab goes to {after}, not into the main content")
    finally:
        page.close()


# --- search -------------------------------------------------------------------------------------

VISIBLE_SEARCH = """() => Array.from(document.querySelectorAll('.search-button__button, form.bd-search'))
  .filter(e => !e.closest('dialog') && e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
  .map(e => e.className)"""


@pytest.mark.parametrize("viewport", [WIDE, ZOOMED], ids=["1280px", "640px"])
def test_one_search_control_reachable_by_keyboard(context, site, viewport):
    """No top bar holding a second search field: one search control, which Tab and Enter open."""
    base, root = site
    url = f"{base}/{CHAPTER}.html"
    page = _open(context, url, (root / f"{CHAPTER}.html").read_text(encoding="utf-8"))
    try:
        page.set_viewport_size(viewport)
        page.wait_for_timeout(200)
        assert len(page.evaluate(VISIBLE_SEARCH)) == 1, page.evaluate(VISIBLE_SEARCH)
        header = page.evaluate("() => { const h = document.querySelector('#pst-header');"
                               " return h ? h.getBoundingClientRect().height : 0; }")
        assert header == 0, f"the theme's top bar takes {header} px"
        for _ in range(200):
            page.keyboard.press("Tab")
            if page.evaluate("() => !!document.activeElement.closest('.search-button__button')"):
                break
        else:
            pytest.fail("Tab never reaches the search button")
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.activeElement.matches('#pst-search-dialog input[name=q]')",
                               timeout=TIMEOUT_MS)
        page.keyboard.type("stride")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"search\.html\?q=stride"), timeout=TIMEOUT_MS)
    finally:
        page.close()


def test_axe_is_pinned_for_the_tests_only():
    """axe-core comes from the pinned npm packages, and offline_assets never stages it for the book."""
    pins = json.loads((ROOT / "scripts" / "assets.json").read_text())["packages"]
    assert pins["axe-core"]["integrity"].startswith("sha512-")
    staged = (ROOT / "book" / "_ext" / "offline_assets.py").read_text()
    assert "axe-core" not in staged
