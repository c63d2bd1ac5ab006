"""The PDF edition (`conv-course pdf`): one document, in reading order, nothing lost on paper.

One PDF is printed per session from the built book (`built_book`; set CONV_COURSE_BOOK_HTML to
check a book built elsewhere) and read back with pypdf; every expectation comes from the built
HTML or the chapter sources, never from the PDF code.
"""

import math
import re
import time
import unicodedata
from urllib.parse import urljoin, urlsplit

import pytest

from bookpages import ROOT, article, toc_documents

pytestmark = [pytest.mark.book, pytest.mark.browser, pytest.mark.slow]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHARS_PER_PAGE = 6000  # more than an A4 page holds, even of small code: a safe lower bound on pages


def squash(text):
    """Text compared modulo line wrapping, ligatures and spacing."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def source_title(doc):
    """The first `# ` heading of a chapter's MyST source, outside code cells and directives."""
    fence = None
    for line in (ROOT / f"{doc}.md").read_text(encoding="utf-8").splitlines():
        opening = re.match(r"(`{3,}|:{3,})", line)
        if opening:
            if fence is None:
                fence = opening.group(1)
            elif line.strip() == fence:
                fence = None
        elif fence is None and line.startswith("# "):
            return line[2:].strip()
    raise AssertionError(f"{doc}.md has no '# ' title")


def built_docs(built_book):
    return [doc for doc in toc_documents() if (built_book / f"{doc}.html").is_file()]


def shown(node):
    """`node` without what the HTML edition shows only on a click: hidden code cell inputs."""
    for hidden in node.select("details.hide.above-input"):
        hidden.decompose()
    return node


class PrintedBook:
    """What pypdf reads back: each page's text and text runs, links, destinations, images."""

    def __init__(self, path):
        from pypdf import PdfReader

        self.reader = PdfReader(path)
        self.width = float(self.reader.pages[0].mediabox.width)
        self.texts, self.runs = [], []
        for page in self.reader.pages:
            runs = []

            def visit(text, cm, tm, font, size, runs=runs):
                if text.strip():
                    x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                    y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                    runs.append((x, y, text))

            self.texts.append(page.extract_text(visitor_text=visit))
            self.runs.append(runs)
        self.destinations = {str(name).lstrip("/"): self.reader.get_destination_page_number(dest)
                             for name, dest in self.reader.named_destinations.items()}

    def links(self):
        """(page index, destination name, text under the link) of every internal link."""
        for i, page in enumerate(self.reader.pages):
            for annot in page.get("/Annots") or []:
                annot = annot.get_object()
                dest = annot.get("/Dest")
                if annot.get("/Subtype") != "/Link" or dest is None or not isinstance(dest, str):
                    continue
                x0, y0, x1, y1 = (float(v) for v in annot["/Rect"])
                text = " ".join(t for x, y, t in self.runs[i] if x0 - 1 <= x <= x1 + 1 and y0 - 2 <= y <= y1 + 2)
                yield i, str(dest).lstrip("/"), text

    def image_count(self):
        def images(resources, seen):
            xobjects = (resources or {}).get("/XObject") or {}
            for ref in xobjects.values():
                obj = ref.get_object()
                key = getattr(ref, "idnum", id(obj))
                if key in seen:
                    continue
                seen.add(key)
                if obj.get("/Subtype") == "/Image":
                    yield key
                elif obj.get("/Subtype") == "/Form":
                    yield from images(obj.get("/Resources"), seen)

        return sum(len(list(images(page.get("/Resources"), set()))) for page in self.reader.pages)


@pytest.fixture(scope="session")
def printed(built_book, tmp_path_factory):
    from conv_course.cli import main

    out = tmp_path_factory.mktemp("pdf") / "conv-course.pdf"
    start = time.perf_counter()
    assert main(["pdf", "--html", str(built_book), "--out", str(out)]) == 0
    built = time.perf_counter() - start
    book = PrintedBook(out)
    print(f"\nPDF: {len(book.texts)} pages, printed in {built:.0f} s, read back in {time.perf_counter() - start - built:.0f} s")
    return book


@pytest.fixture(scope="session")
def articles(built_book):
    return {doc: shown(article(built_book / f"{doc}.html")) for doc in built_docs(built_book)}


def contents_page(printed, title):
    """The page number the contents give `title` (1-based)."""
    words = unicodedata.normalize("NFKC", title).split()
    pattern = re.compile(r"^\s*" + r"\s+".join(map(re.escape, words)) + r"\s+(\d+)\s*$", re.MULTILINE)
    for text in printed.texts[:12]:
        match = pattern.search(unicodedata.normalize("NFKC", text))
        if match:
            return int(match.group(1))
    raise AssertionError(f"the contents do not list {title!r} with a page number")


def test_pdf_is_at_least_as_long_as_its_text_needs(printed, articles):
    minimum = 2 + sum(math.ceil(len(node.get_text(" ", strip=True)) / CHARS_PER_PAGE) for node in articles.values())
    assert len(printed.texts) >= minimum, f"{len(printed.texts)} pages for text that needs at least {minimum}"


def test_pdf_contents_list_every_chapter_in_reading_order_at_its_page(printed, articles):
    pages = [contents_page(printed, source_title(doc)) for doc in articles]
    assert pages == sorted(pages), f"chapters out of reading order: {dict(zip(articles, pages))}"
    for doc, number in zip(articles, pages):
        top = squash(printed.texts[number - 1])[:400]
        assert squash(source_title(doc)) in top, f"{doc}: the contents say page {number}, which starts {top[:80]!r}"


def test_pdf_pages_are_numbered(printed):
    total = len(printed.texts)
    missing = [i + 1 for i, text in enumerate(printed.texts) if f"{i + 1} / {total}" not in text]
    assert not missing, f"pages without 'N / {total}' in the footer: {missing[:10]}"


def test_pdf_internal_links_land_where_their_text_is(printed):
    """Contents, cross-references between chapters, figures, citations, glossary terms: each link
    leads to a page of the PDF that shows the link's first word."""
    links = list(printed.links())
    assert len(links) > 50, f"only {len(links)} internal links in the PDF"
    wrong = []
    for page, dest, text in links:
        if dest not in printed.destinations:
            wrong.append(f"page {page + 1}: link to {dest!r}, which is not in the PDF")
            continue
        target = squash(printed.texts[printed.destinations[dest]])
        first = re.match(r"\W*([^\W\d_][\w'’-]+)", text)  # the link's own first word (a run may go on past it)
        if first and squash(first.group(1)) not in target:
            wrong.append(f"page {page + 1}: {text!r} -> page {printed.destinations[dest] + 1} lacks {first.group(1)!r}")
    assert not wrong, f"{len(wrong)} of {len(links)} links land wrong:\n" + "\n".join(wrong[:20])


def test_pdf_cross_references_between_chapters_are_links(printed, articles):
    html_links = sum(1 for doc, node in articles.items() for a in node.find_all("a", href=True)
                     if not urlsplit(a["href"]).scheme and urlsplit(a["href"]).path
                     and urljoin(doc, urlsplit(a["href"]).path).removesuffix(".html") in articles)
    first_chapter = contents_page(printed, source_title(next(iter(articles))))
    in_chapters = [link for link in printed.links() if link[0] + 1 >= first_chapter]
    assert html_links > 0
    assert len(in_chapters) >= html_links, \
        f"{len(in_chapters)} internal links in the chapters' pages, {html_links} links between pages in the HTML"


def test_pdf_has_no_raw_tex(printed, articles):
    assert sum(len(node.select(".math")) for node in articles.values()) > 0, "no math in the book to check"
    text = "\n".join(printed.texts)
    code = "\n".join(tag.get_text() for node in articles.values() for tag in node.find_all(["pre", "code"]))
    for raw in ("$$", "\\(", "\\[", "\\begin{", "\\frac", "\\sum", "\\times"):
        assert text.count(raw) <= code.count(raw), f"raw TeX {raw!r} in the PDF: MathJax did not typeset everything"


def test_pdf_has_every_figure(printed, articles):
    figures = sum(len(node.find_all("img")) for node in articles.values())
    widgets = sum(len(node.find_all("script", type=WIDGET_VIEW)) for node in articles.values())
    assert printed.image_count() >= figures + widgets, f"{printed.image_count()} images, {figures} figures + {widgets} widgets"


def test_pdf_prints_widgets_with_a_note(printed, articles):
    text = squash("\n".join(printed.texts))
    for doc, node in articles.items():
        for _ in node.find_all("script", type=WIDGET_VIEW):
            assert squash(f"Interactive in the HTML edition: {doc}.html") in text, f"{doc}: no note for its widget"


def test_pdf_prints_every_code_line(printed, articles):
    text = squash("\n".join(printed.texts))
    missing = [f"{doc}: {line.strip()[:100]}" for doc, node in articles.items() for pre in node.find_all("pre")
               for line in pre.get_text().splitlines() if squash(line) and squash(line) not in text]
    assert not missing, f"{len(missing)} code lines are not in the PDF:\n" + "\n".join(missing[:20])


def test_pdf_text_stays_inside_the_page(printed):
    """No line runs past the right margin (cut-off code would start its last tokens there)."""
    margin = printed.width - 10
    outside = [(i + 1, round(x), t[:40]) for i, runs in enumerate(printed.runs) for x, y, t in runs if x > margin]
    assert not outside, f"text beyond the right edge of the page: {outside[:10]}"
