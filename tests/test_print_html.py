"""conv_course._print_html on a two-chapter book written here: reading order, one document, links."""

import pytest
from bs4 import BeautifulSoup

from conv_course._print_html import WIDGET_VIEW, assemble, reading_order

NAV = """<nav class="bd-docs-nav"><p class="caption">Part one</p><ul>
<li class="toctree-l1"><a href="../a/a.html">Chapter A</a><ul>
<li class="toctree-l2"><a href="../a/a2.html">Section A2</a></li></ul></li></ul>
<p class="caption">Part two</p><ul><li class="toctree-l1"><a href="../b/b.html">Chapter B</a></li>
<li class="toctree-l1"><a href="https://example.org">elsewhere</a></li></ul></nav>"""


def page(title, body, nav=""):
    return (f'<html><head><link rel="stylesheet" href="../_static/x.css"></head><body>{nav}'
            f'<p class="logo__title">The Book</p><article class="bd-article"><section id="top"><h1>{title}'
            f'<a class="headerlink" href="#top">#</a></h1>{body}</section></article></body></html>')


@pytest.fixture
def book(tmp_path):
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/index.html" />')
    files = {
        "book/index.html": page("Welcome", '<p>See <a href="../a/a.html#x">the first chapter</a>.</p>', NAV),
        "a/a.html": page("Chapter A", '<section id="x"><h2>X</h2><img src="../_images/f.png" alt="f">'
                         '<a href="../genindex.html">index</a></section>'),
        "a/a2.html": page("Section A2", f'<div class="cell_output"><script type="{WIDGET_VIEW}">{{}}</script></div>'),
        "b/b.html": page("Chapter B", '<p><a href="../a/a2.html">back to A2</a></p>'
                         '<details class="hide above-input"><summary>code</summary><pre>hidden</pre></details>'
                         '<details><summary>Answer</summary>42</details>'),
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def test_reading_order_follows_the_navigation(book):
    pages = reading_order(book)
    assert [(p.path, p.title, p.part, p.level) for p in pages] == [
        ("book/index.html", "Welcome", None, 1), ("a/a.html", "Chapter A", "Part one", 1),
        ("a/a2.html", "Section A2", None, 2), ("b/b.html", "Chapter B", "Part two", 1)]
    assert len({p.key for p in pages}) == 4


def test_a_book_without_navigation_is_refused(tmp_path):
    (tmp_path / "index.html").write_text(page("Lonely", ""))
    with pytest.raises(ValueError, match="no navigation"):
        reading_order(tmp_path)


def test_one_document_with_links_inside_it(book):
    pages = reading_order(book)
    doc = BeautifulSoup(assemble(book, pages, "/* print */", widget_pictures={"a/a2.html": ["AAAA"]},
                                 html_url=lambda path: "https://book.example/" + path), "html.parser")
    keys = {p.path: p.key for p in pages}
    ids = [tag["id"] for tag in doc.find_all(id=True)]
    assert len(ids) == len(set(ids)), "ids repeat across chapters"
    link = doc.find("a", string="the first chapter")
    assert link["href"] == f"#{keys['a/a.html']}-x" and doc.find(id=f"{keys['a/a.html']}-x") is not None
    assert doc.find("a", string="back to A2")["href"] == f"#{keys['a/a2.html']}"
    assert doc.find("a", string="index") is None and "index" in doc.get_text()  # nothing to go to on paper
    assert doc.find("img", alt="f")["src"] == "/_images/f.png"
    assert doc.find("a", class_="headerlink") is None
    assert "hidden" not in doc.get_text() and doc.find("details", open=True) is not None
    widget = doc.find("img", src="data:image/png;base64,AAAA")
    assert widget is not None and widget["alt"]
    assert "Interactive in the HTML edition: https://book.example/a/a2.html" in doc.get_text()
    assert doc.find("script", type=WIDGET_VIEW) is None
    contents = [a["href"] for a in doc.select("nav.cc-toc a")]
    assert contents[:2] == [f"#{keys['book/index.html']}", f"#{keys['a/a.html']}"]
    assert f"#{keys['a/a.html']}-x" in contents  # sections are listed too
    assert [p.get_text() for p in doc.select(".cc-part-title")] == ["Part one", "Part two"]
    assert "/* print */" in str(doc.style) and doc.find("link", href="/_static/x.css") is not None


def test_the_document_speaks_its_editions_language(book):
    pages = reading_order(book)
    english = BeautifulSoup(assemble(book, pages, ""), "html.parser")
    chinese = BeautifulSoup(assemble(book, pages, "", widget_pictures={"a/a2.html": ["AAAA"]}, language="zh_CN"),
                            "html.parser")
    assert english.html["lang"] == "en" and english.select_one("nav.cc-toc h1").get_text() == "Contents"
    assert chinese.html["lang"] == "zh-CN" and chinese.select_one("nav.cc-toc h1").get_text() == "目录"
    assert "可在 HTML 版中交互使用：a/a2.html" in chinese.get_text()
    assert "Interactive" not in chinese.get_text()
    assert "HTML 版" in chinese.find("img", src="data:image/png;base64,AAAA")["alt"]
