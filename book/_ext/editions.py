"""Sphinx extension: every page links to the same page in the book's other editions.

The editions (``conv_course.book.EDITIONS``) live in one site: English at its root, each
translation in a folder of its own (``zh_CN/``). A page's name is the same in every edition, so
the link from page P of edition A to edition B climbs out of P's folder and out of A's folder,
then descends into B's. The links are written into the sidebar's banner by
``_templates/navbar-logo.html`` (``cc_editions``), each marked with its language.
"""

import posixpath

from conv_course.editions import EDITIONS, SOURCE_LANGUAGE

LABEL = {"en": "Language", "zh_CN": "语言"}  # the switch's name for screen readers, per edition


def edition_url(pagename, here, there):
    """The relative URL from page `pagename` of edition `here` to the same page of edition `there`."""
    depth = pagename.count("/") + (EDITIONS[here][1].count("/") + 1 if EDITIONS[here][1] else 0)
    target = posixpath.join(EDITIONS[there][1], f"{pagename}.html")
    return "../" * depth + target


def _page_context(app, pagename, templatename, context, doctree):
    here = app.config.language or SOURCE_LANGUAGE
    if here not in EDITIONS:
        return
    context["cc_editions_label"] = LABEL[here]
    context["cc_editions"] = [
        {"language": language, "name": name, "lang": language.replace("_", "-"),
         "url": edition_url(pagename, here, language), "current": language == here}
        for language, (name, _) in EDITIONS.items()
    ]


def setup(app):
    app.connect("html-page-context", _page_context)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
