"""What the book tests need to know about the pages: the table of contents, chapters, assignments."""

import pathlib
import re

import yaml
from bs4 import BeautifulSoup

from conv_course.editions import EDITIONS

ROOT = pathlib.Path(__file__).resolve().parents[2]

# chapter document -> its graded assignment (the notebook students open is exercises/<a>/<a>.ipynb)
CHAPTERS = {
    "book/01-convolution/convolution": "01-corr2d",
    "book/02-padding-stride-dilation/padding-stride-dilation": "02-conv2d",
    "book/03-channels/channels": "03-channels",
    "book/04-classic-kernels/classic-kernels": "04-student-kernels",
    "book/05-pooling/pooling": "05-pooling",
    "book/06-conv-as-matmul/conv-as-matmul": "06-conv-as-matmul",
    "book/07-backprop/backprop": "07-backward",
    "book/08-cnns-in-pytorch/cnns-in-pytorch": "08-train-a-cnn",
    "book/08-cnns-in-pytorch/training-recipe": "08-train-a-cnn",  # a section of chapter 8, with its own exercises
    "book/09-fine-tuning/fine-tuning": "09-fine-tune",
    "book/10-conv1d/conv1d": None,  # no assignment of its own: any exercises/ notebook it names
}
ASSIGNMENT_PATH = re.compile(r"exercises/(\d\d-[a-z0-9-]+)/\1\.ipynb")


def toc_documents():
    """Every document named in _toc.yml (root first), without extension."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", [{"chapters": toc.get("chapters")}]):
        walk(part.get("chapters"))
    return docs


SPHINX_PAGES = ["genindex", "search"]  # Sphinx's own pages; each edition's root index.html only redirects


def edition_folders():
    """The folder of each edition inside the site ('' for the English root, then 'zh_CN')."""
    return [folder for _, folder in EDITIONS.values()]


def site_pages():
    """Every page of the site, without .html: each toc document and Sphinx's own pages, in every edition."""
    return [f"{folder}/{doc}" if folder else doc
            for folder in edition_folders() for doc in toc_documents() + SPHINX_PAGES]


def article(html_path):
    """The parsed <article> of a built page (the page's own content, without the theme's chrome)."""
    soup = BeautifulSoup(pathlib.Path(html_path).read_text(encoding="utf-8"), "html.parser")
    node = soup.find("article", class_="bd-article")
    assert node is not None, f"{html_path}: no <article class='bd-article'>"
    return node


def heading_text(tag):
    """A heading's text without Sphinx's '#' permalink."""
    for link in tag.find_all("a", class_="headerlink"):
        link.extract()
    return tag.get_text(" ", strip=True)


def top_sections(node):
    """The <section> children of the page's top section: its '##' sections, in order."""
    top = node.find("section")
    return top.find_all("section", recursive=False) if top else []
