"""The book's editions: the same pages, the same computed numbers and figures, linked both ways.

The Chinese edition (``_build/html/zh_CN/``) is built from the English sources and the catalogs
in ``locale/``; it executes nothing of its own, so every glued value and every figure must be the
English edition's, page by page.
"""

import re
from collections import Counter

import pytest
from bs4 import BeautifulSoup

from bookpages import SPHINX_PAGES, article, toc_documents
from conv_course.editions import EDITIONS

pytestmark = [pytest.mark.book, pytest.mark.slow]

TRANSLATED = [language for language in EDITIONS if EDITIONS[language][1]]


def soup(path):
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def page(built_book, language, doc):
    return built_book / EDITIONS[language][1] / f"{doc}.html"


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_page_exists_in_every_edition_in_its_language(built_book, language):
    for doc in toc_documents() + SPHINX_PAGES:
        html = soup(page(built_book, language, doc)).find("html")
        assert html is not None and html.get("lang") == language.replace("_", "-"), doc
    assert soup(built_book / "book" / "index.html").find("html").get("lang") == "en"


@pytest.mark.parametrize("language", list(EDITIONS))
def test_the_switch_leads_to_the_same_page_in_each_other_edition(built_book, language):
    for doc in toc_documents() + SPHINX_PAGES:
        path = page(built_book, language, doc)
        switch = soup(path).select_one("nav.cc-editions")
        assert switch is not None and switch.get("aria-label"), f"{language} {doc}: no named language switch"
        links = {a["lang"]: a["href"] for a in switch.select("a[href]")}
        assert set(links) == {other.replace("_", "-") for other in EDITIONS if other != language}, (doc, links)
        for other in EDITIONS:
            if other == language:
                continue
            target = (path.parent / links[other.replace("_", "-")]).resolve()
            assert target == page(built_book, other, doc).resolve(), f"{language} {doc} -> {target}"
            assert target.is_file()


NUMBER = re.compile(r"[-−+]?[\d.,]+(e[-+]?\d+)?%?")


def computed(path):
    """What execution put on a page: its glued numbers and its figures (by content), counted.

    (Glued phrases, `conv_course.editions.glue_phrase`, are in each edition's language.)"""
    node = article(path)
    values = [span.get_text() for span in node.select("span.pasted-text") if NUMBER.fullmatch(span.get_text())]
    figures = Counter(img["src"].rsplit("/", 1)[-1] for img in node.select("img") if "_images/" in img.get("src", ""))
    return Counter(values), figures


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_number_and_figure_is_the_english_editions(built_book, language):
    for doc in toc_documents():
        english, translated = computed(page(built_book, "en", doc)), computed(page(built_book, language, doc))
        missing = english[0] - translated[0]
        assert not missing, f"{language} {doc}: glued numbers lost in translation: {dict(missing)}"
        assert translated[0] == english[0], f"{language} {doc}: glued numbers the English page does not show"
        assert translated[1] == english[1], f"{language} {doc}: figures differ from the English edition's"
