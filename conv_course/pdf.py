"""The book as one PDF per edition: ``conv-course pdf [--edition zh_CN]`` (``make pdf`` prints each), offline.

Serves the built HTML (``_build/html``) on 127.0.0.1, joins every page's content in reading order
into one document (``conv_course._print_html``: a cover, the contents, then the chapters, links
between pages turned into links inside the document), lets MathJax typeset it in headless
Chromium (Debian's, driven by playwright; every request that is not to loopback is blocked) and
prints it once with the print stylesheet ``_static/print.css``. The contents' page numbers come
from that first print (pypdf reads where each named destination landed); the second print,
with the numbers filled in, is the PDF. The interactive widget is printed as a picture of what
the HTML edition first shows, with a note where it is interactive.

Each edition (``conv_course.editions``) prints its own folder of the site into its own file,
``_build/pdf/conv-course.pdf`` (English) and ``conv-course-zh_CN.pdf``; what the print adds in
words is in the edition's language, and a language whose glyphs the usual fonts lack needs its
font installed (the Chinese edition: Debian's fonts-wqy-microhei), else no PDF is printed.
"""

import base64
import functools
import http.server
import io
import json
import os
import pathlib
import shutil
import subprocess
import threading
import time
from urllib.parse import urlparse

from . import REPO_ROOT
from ._print_html import PRINT_PATH, WIDGET_VIEW, assemble, reading_order
from .editions import EDITIONS, PRINT_SETTINGS, SOURCE_LANGUAGE

__all__ = ["build_pdf", "default_out", "add_pdf_arguments", "run_pdf"]

DEFAULT_HTML = pathlib.Path(REPO_ROOT) / "_build" / "html"
PRINT_CSS = pathlib.Path(REPO_ROOT) / "_static" / "print.css"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
FOOTER = ('<div style="font: 8px sans-serif; color: #555; width: 100%; text-align: center">'
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
PDF_OPTIONS = dict(format="A4", prefer_css_page_size=True, print_background=True, outline=True, tagged=True,
                   display_header_footer=True, header_template="<span></span>", footer_template=FOOTER,
                   margin={"top": "16mm", "bottom": "18mm", "left": "16mm", "right": "16mm"})


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The built book, plus the one print document at PRINT_PATH (held in memory)."""

    document = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        if urlparse(self.path).path != PRINT_PATH:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.document)))
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *args):
        pass


def default_out(language=SOURCE_LANGUAGE):
    """Where edition `language`'s PDF goes: ``_build/pdf/conv-course.pdf``, ``conv-course-zh_CN.pdf``."""
    suffix = "" if language == SOURCE_LANGUAGE else f"-{language}"
    return pathlib.Path(REPO_ROOT) / "_build" / "pdf" / f"conv-course{suffix}.pdf"


def fonts_for(fc_language):
    """The font families fontconfig has for `fc_language` (``fc-list :lang=zh``); [] without fontconfig."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    found = subprocess.run([fc_list, f":lang={fc_language}", "family"], capture_output=True, text=True, check=False)
    return sorted({line.strip() for line in found.stdout.splitlines() if line.strip()})


def _check_fonts(language):
    """Refuse to print an edition whose glyphs no installed font has (they would print as boxes)."""
    needed = PRINT_SETTINGS[language]["font"]
    if needed is None:
        return
    fc_language, package = needed
    if not fonts_for(fc_language):
        raise ValueError(f"pdf: no font for the {EDITIONS[language][0]} edition ({language}): "
                         f"`fc-list :lang={fc_language}` finds none, so its text would print as boxes; "
                         f"install Debian's {package} (`bash scripts/setup.sh --system` does)")


def _offline_context(browser, blocked):
    """A browser context whose requests may only go to loopback addresses."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=2)

    def guard(route):
        host = urlparse(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    return context


def _widget_pictures(context, base_url, html_dir, pages, log):
    """{page path: [base64 PNG of each widget output, in page order]} for pages with widgets."""
    pictures = {}
    for page in pages:
        text = (pathlib.Path(html_dir) / page.path).read_text(encoding="utf-8")
        if WIDGET_VIEW not in text:
            continue
        tab = context.new_page()
        tab.goto(f"{base_url}/{page.path}", wait_until="networkidle")
        outputs = tab.locator(f'article.bd-article div.cell_output:has(script[type="{WIDGET_VIEW}"])')
        shots = []
        for i in range(outputs.count()):
            output = outputs.nth(i)
            try:  # the widget manager adds the view next to its script
                output.locator(":scope > :not(script)").first.wait_for(state="visible", timeout=20000)
                tab.wait_for_timeout(500)  # the view's first drawing
                shots.append(base64.b64encode(output.screenshot()).decode("ascii"))
            except Exception as err:  # noqa: BLE001 (the note alone is printed then)
                log(f"pdf: {page.path}: widget {i + 1} did not render ({type(err).__name__}); printing a note only")
        pictures[page.path] = shots
        tab.close()
    return pictures


def _typeset(tab, url, timeout_ms):
    """Load the print document and wait for MathJax, fonts and images."""
    tab.goto(url, wait_until="load", timeout=timeout_ms)
    tab.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=timeout_ms)
    tab.evaluate("() => MathJax.startup.promise")
    tab.evaluate("() => document.fonts.ready.then(() => true)")
    tab.wait_for_function("[...document.images].every(img => img.complete)", timeout=timeout_ms)
    left = tab.evaluate("""() => [...document.querySelectorAll('.math')]
        .filter(el => !el.querySelector('mjx-container')).map(el => el.textContent.slice(0, 60))""")
    if left:
        raise RuntimeError(f"pdf: MathJax left {len(left)} formulas untypeset, e.g. {left[:3]}")


def destination_pages(pdf_bytes):
    """{named destination (an element id): 1-based page number} of a PDF that Chromium printed."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf_bytes))
    return {str(name).lstrip("/"): reader.get_destination_page_number(dest) + 1
            for name, dest in reader.named_destinations.items()}


def build_pdf(html_dir=DEFAULT_HTML, out=None, *, language=SOURCE_LANGUAGE, timeout_s=300, log=print):
    """Print edition `language` of the site built in `html_dir` as one PDF at `out` (default:
    `default_out(language)`); returns a summary dict.

    Raises: ValueError when the edition is not built, or Chromium or the edition's font is missing.
    """
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    html_dir = pathlib.Path(html_dir) / EDITIONS[language][1]
    out = pathlib.Path(out) if out else default_out(language)
    if not (html_dir / "index.html").is_file():
        raise ValueError(f"{html_dir} has no index.html: build the book first (`make book`)")
    _check_fonts(language)
    chromium = shutil.which("chromium") or CHROMIUM
    if not os.path.exists(chromium):
        raise ValueError(f"Chromium not found ({CHROMIUM}): install Debian's chromium "
                         "(`bash scripts/setup.sh --system` does)")
    start = time.perf_counter()
    pages = reading_order(html_dir)
    log(f"pdf: {len(pages)} pages of the book ({EDITIONS[language][0]}), from {html_dir}")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(html_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url, blocked = f"http://127.0.0.1:{server.server_address[1]}", []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
            context = _offline_context(browser, blocked)
            pictures = _widget_pictures(context, base_url, html_dir, pages, log)
            folder = EDITIONS[language][1]  # the notes name each page by its path in the site
            document = assemble(html_dir, pages, PRINT_CSS.read_text(encoding="utf-8"), widget_pictures=pictures,
                                html_url=lambda path: f"{folder}/{path}" if folder else path, language=language)
            _Handler.document = document.encode("utf-8")
            tab = context.new_page()
            _typeset(tab, base_url + PRINT_PATH, timeout_s * 1000)
            first = tab.pdf(**PDF_OPTIONS)
            numbers = destination_pages(first)
            tab.evaluate("""numbers => document.querySelectorAll('.cc-toc-page').forEach(el => {
                el.textContent = numbers[el.dataset.target] ?? ''; })""", numbers)
            final = tab.pdf(**PDF_OPTIONS)
            browser.close()
    finally:
        server.shutdown()
    count = len(PdfReader(io.BytesIO(final)).pages)
    if count != len(PdfReader(io.BytesIO(first)).pages):
        raise RuntimeError("pdf: filling in the contents' page numbers changed the page count")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(final)
    summary = {"pdf": str(out), "pages": count, "book_pages": len(pages), "seconds": round(time.perf_counter() - start, 1),
               "blocked_requests": sorted(set(blocked))}
    if blocked:
        log(f"pdf: blocked {len(set(blocked))} non-loopback requests: {sorted(set(blocked))[:3]}")
    log(f"pdf: wrote {out} ({count} pages, {summary['seconds']} s)")
    return summary


def add_pdf_arguments(parser):
    parser.add_argument("--html", metavar="DIR", help="an already built book, every edition (default: build "
                        "the edition into _build/html first, as `conv-course book` does)")
    parser.add_argument("--edition", choices=list(EDITIONS), default=SOURCE_LANGUAGE,
                        help="the edition to print (default: %(default)s)")
    parser.add_argument("--out", metavar="PATH", help="the PDF to write (default: _build/pdf/conv-course.pdf, "
                        "conv-course-<edition>.pdf for a translation)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary (pages, seconds) at the end")


def run_pdf(args):
    html_dir = args.html
    if html_dir is None:
        from .book import build

        code = build(quiet=True, editions=(args.edition,))
        if code != 0:
            return code
        html_dir = DEFAULT_HTML
    summary = build_pdf(html_dir, args.out, language=args.edition)
    if args.json:
        print(json.dumps(summary))
    return 0
