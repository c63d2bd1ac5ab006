"""The PDF editions (`conv-course pdf [--edition zh_CN]`): one document, in reading order, nothing lost on paper.

The English PDF is printed once per session, the Chinese one once per module, from the built
book (`built_book`; set CONV_COURSE_BOOK_HTML to check a book built elsewhere) and read back with
pypdf; every expectation comes from the built HTML, the chapter sources or the installed fonts,
never from the PDF code. Checks that hold for any language run on both editions.
"""

import contextlib
import io
import json
import math
import re
import subprocess
import time
import unicodedata
from urllib.parse import urljoin, urlsplit

import pytest

from bookpages import ROOT, article, heading_text, toc_documents
from conv_course.editions import EDITIONS

pytestmark = [pytest.mark.book, pytest.mark.browser, pytest.mark.slow]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CHARS_PER_PAGE = 6000  # more than an A4 page holds, even of small code: a safe lower bound on pages
WIDGET_NOTES = {"en": "Interactive in the HTML edition: {}", "zh_CN": "可在 HTML 版中交互使用：{}"}
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")  # the Han ideographs of the Chinese text


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


def built_docs(html_dir):
    return [doc for doc in toc_documents() if (html_dir / f"{doc}.html").is_file()]


def shown(node):
    """`node` without what the HTML edition shows only on a click: hidden code cell inputs."""
    for hidden in node.select("details.hide.above-input"):
        hidden.decompose()
    return node


def font_name(font):
    """A PDF font's PostScript name without its subset tag (``AAAAAA+``); Chromium's synthetic
    bold is a Type3 font that names it only in its descriptor."""
    name = font.get("/BaseFont") or font["/FontDescriptor"].get_object()["/FontName"]
    return str(name).lstrip("/").split("+")[-1]


class PrintedBook:
    """What pypdf reads back: each page's text and text runs, links, destinations, images, and
    the fonts each Han character is drawn with."""

    def __init__(self, path):
        from pypdf import PdfReader

        self.reader = PdfReader(path)
        self.width = float(self.reader.pages[0].mediabox.width)
        self.texts, self.runs, self.han_fonts = [], [], {}
        for page in self.reader.pages:
            runs = []

            def visit(text, cm, tm, font, size, runs=runs):
                if text.strip():
                    x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                    y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                    runs.append((x, y, text))
                    for char in set(CJK.findall(text)) if font else ():  # pypdf names no font for some runs
                        self.han_fonts.setdefault(char, set()).add(font_name(font))

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


@pytest.fixture(scope="module")
def printed_zh(built_book, tmp_path_factory):
    """The Chinese edition, printed once through the command line; `.summary` is its JSON summary."""
    from conv_course.cli import main

    out = tmp_path_factory.mktemp("pdf") / "conv-course-zh_CN.pdf"
    stdout = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(stdout):
        assert main(["pdf", "--html", str(built_book), "--edition", "zh_CN", "--out", str(out), "--json"]) == 0
    built = time.perf_counter() - start
    book = PrintedBook(out)
    book.summary = json.loads(stdout.getvalue().splitlines()[-1])
    print(f"\nChinese PDF: {len(book.texts)} pages, printed in {built:.0f} s")
    return book


@pytest.fixture(scope="module")
def articles_zh(built_book):
    return {doc: shown(article(built_book / "zh_CN" / f"{doc}.html")) for doc in built_docs(built_book / "zh_CN")}


@pytest.fixture(params=["en", "zh_CN"])
def edition(request):
    """(language, its printed PDF, its pages' articles) of each edition in turn."""
    if request.param == "en":
        return "en", request.getfixturevalue("printed"), request.getfixturevalue("articles")
    return "zh_CN", request.getfixturevalue("printed_zh"), request.getfixturevalue("articles_zh")


def contents_page(printed, title):
    """The page number the contents give `title` (1-based); the PDF's text may break or space
    the title anywhere (around Chinese punctuation, at the end of a line)."""
    chars = re.sub(r"\s+", "", unicodedata.normalize("NFKC", title))
    pattern = re.compile(r"^\s*" + r"\s*".join(map(re.escape, chars)) + r"\s+(\d+)\s*$", re.MULTILINE)
    for text in printed.texts[:12]:
        match = pattern.search(unicodedata.normalize("NFKC", text))
        if match:
            return int(match.group(1))
    raise AssertionError(f"the contents do not list {title!r} with a page number")


def test_pdf_is_at_least_as_long_as_its_text_needs(edition):
    _, printed, articles = edition
    minimum = 2 + sum(math.ceil(len(node.get_text(" ", strip=True)) / CHARS_PER_PAGE) for node in articles.values())
    assert len(printed.texts) >= minimum, f"{len(printed.texts)} pages for text that needs at least {minimum}"


def test_pdf_contents_list_every_chapter_in_reading_order_at_its_page(printed, articles):
    pages = [contents_page(printed, source_title(doc)) for doc in articles]
    assert pages == sorted(pages), f"chapters out of reading order: {dict(zip(articles, pages))}"
    for doc, number in zip(articles, pages):
        top = squash(printed.texts[number - 1])[:400]
        assert squash(source_title(doc)) in top, f"{doc}: the contents say page {number}, which starts {top[:80]!r}"


def test_pdf_pages_are_numbered(edition):
    _, printed, _ = edition
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


def test_pdf_has_no_raw_tex(edition):
    _, printed, articles = edition
    assert sum(len(node.select(".math")) for node in articles.values()) > 0, "no math in the book to check"
    text = "\n".join(printed.texts)
    code = "\n".join(tag.get_text() for node in articles.values() for tag in node.find_all(["pre", "code"]))
    for raw in ("$$", "\\(", "\\[", "\\begin{", "\\frac", "\\sum", "\\times"):
        assert text.count(raw) <= code.count(raw), f"raw TeX {raw!r} in the PDF: MathJax did not typeset everything"


def test_pdf_has_every_figure(edition):
    _, printed, articles = edition
    figures = sum(len(node.find_all("img")) for node in articles.values())
    widgets = sum(len(node.find_all("script", type=WIDGET_VIEW)) for node in articles.values())
    assert printed.image_count() >= figures + widgets, f"{printed.image_count()} images, {figures} figures + {widgets} widgets"


def test_pdf_prints_widgets_with_a_note(edition):
    language, printed, articles = edition
    text = squash("\n".join(printed.texts))
    widgets = 0
    for doc, node in articles.items():
        for _ in node.find_all("script", type=WIDGET_VIEW):
            widgets += 1
            page = "/".join(filter(None, [EDITIONS[language][1], f"{doc}.html"]))  # its path in the site
            assert squash(WIDGET_NOTES[language].format(page)) in text, f"{doc}: no note for its widget"
    assert widgets > 0, "no widget in the book to check"


def test_pdf_prints_every_code_line(edition):
    _, printed, articles = edition
    text = squash("\n".join(printed.texts))
    missing = [f"{doc}: {line.strip()[:100]}" for doc, node in articles.items() for pre in node.find_all("pre")
               for line in pre.get_text().splitlines() if squash(line) and squash(line) not in text]
    assert not missing, f"{len(missing)} code lines are not in the PDF:\n" + "\n".join(missing[:20])


def test_pdf_text_stays_inside_the_page(edition):
    """No line runs past the right margin (cut-off code would start its last tokens there)."""
    _, printed, _ = edition
    margin = printed.width - 10
    outside = [(i + 1, round(x), t[:40]) for i, runs in enumerate(printed.runs) for x, y, t in runs if x > margin]
    assert not outside, f"text beyond the right edge of the page: {outside[:10]}"


def test_zh_pdf_is_chinese_and_lists_its_chapters_in_reading_order(printed_zh, articles_zh):
    assert printed_zh.reader.trailer["/Root"].get("/Lang") == "zh-CN"
    assert squash(printed_zh.texts[1]).startswith("目录"), f"the contents' heading: {printed_zh.texts[1][:40]!r}"
    titles = {doc: heading_text(node.find("h1")) for doc, node in articles_zh.items()}
    assert all(CJK.search(title) for title in titles.values()), f"untranslated titles: {titles}"
    pages = [contents_page(printed_zh, title) for title in titles.values()]
    assert pages == sorted(pages), f"chapters out of reading order: {dict(zip(titles, pages))}"
    for (doc, title), number in zip(titles.items(), pages):
        top = squash(printed_zh.texts[number - 1])[:400]
        assert squash(title) in top, f"{doc}: the contents say page {number}, which starts {top[:80]!r}"


def test_zh_pdf_has_the_chinese_text(printed_zh, articles_zh):
    """The first long plain Chinese paragraph of the first chapter is in the PDF, character for character."""
    chapter = articles_zh[list(articles_zh)[1]]
    paragraph = next(p.get_text() for p in chapter.find_all("p")
                     if len(CJK.findall(p.get_text())) > 40 and not p.select(".math"))
    assert squash(paragraph) in squash("\n".join(printed_zh.texts)), f"not in the PDF: {paragraph[:80]!r}"


def test_zh_pdf_draws_every_chinese_character_with_the_installed_chinese_font(printed_zh):
    names = subprocess.run(["fc-list", ":lang=zh", "postscriptname"], capture_output=True, text=True).stdout
    installed = {line.split("=", 1)[1].strip() for line in names.splitlines() if "=" in line}
    assert installed, "`fc-list :lang=zh` finds no Chinese font"
    assert len(printed_zh.han_fonts) > 500, f"only {len(printed_zh.han_fonts)} different Han characters in the PDF"
    embedded = set().union(*printed_zh.han_fonts.values())
    assert embedded & installed, f"no installed Chinese font {sorted(installed)} among {sorted(embedded)}"
    elsewhere = {char: fonts for char, fonts in printed_zh.han_fonts.items() if not fonts <= installed}
    assert not elsewhere, f"Han characters drawn with other fonts: {dict(list(elsewhere.items())[:10])}"


def test_zh_pdf_made_no_request_beyond_the_machine(printed_zh):
    assert printed_zh.summary["blocked_requests"] == []
    assert printed_zh.summary["pages"] == len(printed_zh.texts)


def test_each_edition_prints_into_its_own_file():
    from conv_course.pdf import default_out

    assert default_out().name == "conv-course.pdf" and default_out("zh_CN").name == "conv-course-zh_CN.pdf"
    assert default_out().parent == default_out("zh_CN").parent == ROOT / "_build" / "pdf"


def test_zh_pdf_without_a_chinese_font_names_the_package_to_install(built_book, tmp_path, monkeypatch):
    """A fontconfig that finds no Chinese font: no PDF, and the message says what to install."""
    fc_list = tmp_path / "bin" / "fc-list"
    fc_list.parent.mkdir()
    fc_list.write_text("#!/bin/sh\nexit 0\n")
    fc_list.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fc_list.parent}:/usr/bin:/bin")
    from conv_course.pdf import build_pdf

    with pytest.raises(ValueError, match=r"fc-list :lang=zh.*fonts-wqy-microhei"):
        build_pdf(built_book, tmp_path / "zh.pdf", language="zh_CN")
    assert not (tmp_path / "zh.pdf").exists()
