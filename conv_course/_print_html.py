"""The whole built book as ONE HTML document for printing (what ``conv_course.pdf`` prints).

Reads the built HTML only: the reading order and part captions come from the root page's
navigation (the order of the table of contents the book was built with), each page contributes
its ``<article>``. Ids are prefixed per page, links between pages become links inside the
document, links to what is not printed (the index, downloads) become plain text, and every
``src`` points at the book's root, where the document is served from (``PRINT_PATH``). What the
document adds in words (the contents' heading, the widget notes) is in the edition's language
(``conv_course.editions.PRINT_SETTINGS``).
"""

import html
import json
import pathlib
import posixpath
import re
from urllib.parse import urlsplit

from bs4 import BeautifulSoup

from .editions import PRINT_SETTINGS, SOURCE_LANGUAGE

__all__ = ["PRINT_PATH", "Page", "reading_order", "assemble"]

PRINT_PATH = "/conv-course-print.html"  # where the document is served, at the book's root
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MATHJAX = "_static/offline/mathjax/tex-chtml.js"
MATHJAX_CONFIG = {"options": {"processHtmlClass": "tex2jax_process|mathjax_process|math|output_area"}}


class Page:
    """One page of the book: its path under the HTML folder (``book/01-x/x.html``), its title,
    the part caption it opens (or None), its toc level (1 chapter, 2 section) and id prefix."""

    def __init__(self, path, title, part, level, key):
        self.path, self.title, self.part, self.level, self.key = path, title, part, level, key

    def __repr__(self):
        return f"Page({self.path!r}, {self.title!r})"


def _soup(path):
    return BeautifulSoup(pathlib.Path(path).read_text(encoding="utf-8"), "html.parser")


def root_page(html_dir):
    """The root document's path: ``index.html`` redirects to it (``book/index.html`` here)."""
    index = pathlib.Path(html_dir) / "index.html"
    match = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', index.read_text(encoding="utf-8"))
    return match.group(1) if match else "index.html"


def reading_order(html_dir):
    """Every page of the book in reading order: the root page, then its navigation's links."""
    root = root_page(html_dir)
    soup = _soup(pathlib.Path(html_dir) / root)
    nav = soup.find("nav", class_="bd-docs-nav")
    if nav is None:
        raise ValueError(f"pdf: {html_dir}/{root} has no navigation (nav.bd-docs-nav); is it a Jupyter Book?")
    title = soup.find("article").find("h1")
    pages, seen, part = [], set(), None
    pages.append(Page(root, _text(title) if title else "", None, 1, "p0"))
    seen.add(root)
    for node in nav.find_all(["p", "a"]):
        if node.name == "p" and "caption" in (node.get("class") or []):
            part = node.get_text(" ", strip=True)
            continue
        if node.name != "a" or not node.get("href") or node["href"].startswith(("#", "http")):
            continue
        path = _resolve(root, node["href"])[0]
        if path in seen or not (pathlib.Path(html_dir) / path).is_file():
            continue
        seen.add(path)
        level = 2 if node.find_parent("li", class_="toctree-l2") else 1
        pages.append(Page(path, node.get_text(" ", strip=True), part, level, f"p{len(pages)}"))
        part = None
    return pages


def _text(tag):
    for link in tag.find_all("a", class_="headerlink"):
        link.extract()
    return tag.get_text(" ", strip=True)


def _resolve(page_path, url):
    """(path from the book's root, fragment) of a relative `url` on page `page_path`."""
    parts = urlsplit(url)
    path = posixpath.normpath(posixpath.join(posixpath.dirname(page_path), parts.path)) if parts.path else page_path
    return path.lstrip("/"), parts.fragment


def _rewrite(article, page, keys, widget_pictures, html_url, words):
    """Make `article` (one page's content) fit in the one document, in place."""
    prefix = page.key + "-"
    for tag in article.find_all(["script", "button"]):
        if tag.name == "script" and tag.get("type") == WIDGET_VIEW:
            _replace_widget(tag, widget_pictures, page, html_url, words)
        else:
            tag.decompose()
    for tag in article.select("a.headerlink, .cc-notebook-download"):
        tag.decompose()
    for tag in article.select("details.hide.above-input"):  # hidden plotting code: paper cannot unfold it
        tag.decompose()
    for tag in article.find_all("details"):  # answers and hidden outputs: shown
        tag["open"] = ""
    for tag in article.find_all(id=True):
        tag["id"] = prefix + tag["id"]
    for attr in ("aria-labelledby", "aria-describedby", "for"):
        for tag in article.find_all(attrs={attr: True}):
            tag[attr] = " ".join(prefix + v for v in tag[attr].split())
    for tag in article.find_all(src=True):
        if not urlsplit(tag["src"]).scheme:
            tag["src"] = "/" + _resolve(page.path, tag["src"])[0]
    for tag in article.find_all("a", href=True):
        href = tag["href"]
        if urlsplit(href).scheme:
            continue
        path, fragment = _resolve(page.path, href)
        if path in keys:
            tag["href"] = f"#{keys[path]}-{fragment}" if fragment else f"#{keys[path]}"
        else:
            tag.unwrap()  # the index, search, downloads: nothing to go to on paper


def _replace_widget(script, widget_pictures, page, html_url, words):
    """A widget's view: its static picture (if one was taken) and where it is interactive."""
    soup = BeautifulSoup("", "html.parser")
    pictures = widget_pictures.get(page.path) or []
    if pictures:
        img = soup.new_tag("img", src="data:image/png;base64," + pictures.pop(0),
                           alt=words["widget_alt"])
        script.insert_before(img)
    note = soup.new_tag("p", attrs={"class": "cc-widget-note"})
    note.string = words["widget_note"].format(url=html_url(page.path))
    script.insert_before(note)
    script.decompose()


def _toc(pages, articles, heading):
    """The contents: parts, pages and their sections, each with a page-number slot."""
    rows = [f'<nav class="cc-toc" id="cc-contents"><h1>{html.escape(heading)}</h1><ul>']
    for page in pages:
        if page.part:
            rows.append(f'<li class="cc-toc-part">{html.escape(page.part)}</li>')
        rows.append(_toc_entry(page.key, page.title, f"cc-toc-l{page.level}") + "<ul>")
        top = articles[page.key].find("section")
        for section in top.find_all("section", recursive=False) if top else []:
            heading = section.find(["h2"])
            if heading is not None and section.get("id"):
                rows.append(_toc_entry(section["id"], heading.get_text(" ", strip=True), "cc-toc-section") + "</li>")
        rows.append("</ul></li>")
    rows.append("</ul></nav>")
    return "\n".join(rows)


def _toc_entry(target, title, cls):
    return (f'<li class="{cls}"><a href="#{target}"><span class="cc-toc-title">{html.escape(title)}</span>'
            f'<span class="cc-toc-page" data-target="{target}">&#8199;&#8199;&#8199;</span></a>')


def _metadata(html_dir, root):
    """(title, author, copyright) from the root page's theme."""
    soup = _soup(pathlib.Path(html_dir) / root)
    found = [soup.select_one(sel) for sel in ("p.logo__title", "p.component-author", "p.copyright")]
    return [" ".join(tag.get_text(" ", strip=True).split()) if tag else "" for tag in found]


def assemble(html_dir, pages, print_css, *, widget_pictures=None, html_url=None, language=SOURCE_LANGUAGE):
    """The one HTML document: cover, contents, then every page's article in `pages` order, its
    own words in `language` (an edition's, e.g. ``"zh_CN"``)."""
    html_dir = pathlib.Path(html_dir)
    words = PRINT_SETTINGS[language]
    html_url = html_url or (lambda path: path)
    widget_pictures = {k: list(v) for k, v in (widget_pictures or {}).items()}
    root = _soup(html_dir / pages[0].path)
    keys = {page.path: page.key for page in pages}
    articles = {}
    for page in pages:
        article = _soup(html_dir / page.path).find("article", class_="bd-article")
        if article is None:
            raise ValueError(f"pdf: {html_dir / page.path} has no <article class='bd-article'>")
        _rewrite(article, page, keys, widget_pictures, html_url, words)
        articles[page.key] = article
    styles = [link["href"] for link in root.find_all("link", rel="stylesheet")]
    styles = ["/" + _resolve(pages[0].path, href)[0] for href in styles if "print.css" not in href]
    title, author, copyright_ = _metadata(html_dir, pages[0].path)
    body = [f'<section class="cc-cover"><h1 class="cc-book-title">{html.escape(title)}</h1>'
            f"<p>{html.escape(author)}</p><p>{html.escape(copyright_)}</p></section>",
            _toc(pages, articles, words["contents"])]
    for page in pages:
        part = f'<p class="cc-part-title">{html.escape(page.part)}</p>' if page.part else ""
        body.append(f'<div class="cc-chapter" id="{page.key}">{part}{articles[page.key]}</div>')
    head = "\n".join(f'<link rel="stylesheet" href="{href}">' for href in styles)
    return (f'<!DOCTYPE html><html lang="{words["lang"]}" data-theme="light" data-mode="light">'
            '<head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>{head}<style>{print_css}</style>"
            f"<script>window.MathJax = {json.dumps(MATHJAX_CONFIG)}</script>"
            f'<script defer src="/{MATHJAX}"></script></head>'
            '<body><div class="cc-book bd-article-container">' + "\n".join(body) + "</div></body></html>")
