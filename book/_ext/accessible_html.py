"""Sphinx extension: names and roles that the theme, myst-nb and docutils write wrong.

Each fix answers a violation that axe-core reported on the built pages
(tests/browser/test_accessibility.py runs it on every page):

  * the sidebar's expand/collapse toggles (a ``<summary>`` holding only a chevron icon) had no
    name (axe: summary-name); each is named after the chapter whose sections it shows;
  * myst-nb's "Show code cell source" toggles carry ``aria-label="Toggle hidden content"``, a name
    that differs from the text they show (axe: label-content-name-mismatch); without the label,
    the visible text names them;
  * docutils marks bibliography entries ``role="doc-biblioentry"``, a role ARIA deprecated, which
    is no list item of its ``role="list"`` container (axe: aria-deprecated-role,
    aria-required-children); they become ``role="listitem"``.

The theme's components are fixed by templates in ``_templates/`` and its styles by
``_static/accessibility.css``.
"""

from bs4 import BeautifulSoup

_BODY_FIXES = [
    ('<summary aria-label="Toggle hidden content">', "<summary>"),
    ('role="doc-biblioentry"', 'role="listitem"'),
]


def label_toggles(toctree, label="Sections of {}"):
    """Name each section toggle of a sidebar toctree after the link it follows.

    `toctree` is the theme's parsed toctree (a BeautifulSoup, changed in place and returned) or
    its HTML (a new string is returned).
    """
    soup = BeautifulSoup(toctree, "html.parser") if isinstance(toctree, str) else toctree
    for summary in soup.select("li > details > summary"):
        link = summary.parent.parent.find("a", recursive=False)
        if link is not None and not summary.get("aria-label"):
            summary["aria-label"] = label.format(" ".join(link.get_text().split()))
    return str(soup) if isinstance(toctree, str) else soup


def fix_body(body):
    """The page body with myst-nb's and docutils' wrong names and roles replaced."""
    for old, new in _BODY_FIXES:
        body = body.replace(old, new)
    return body


def _page_context(app, pagename, templatename, context, doctree):
    if context.get("body"):
        context["body"] = fix_body(context["body"])
    generate = context.get("generate_toctree_html")
    if generate is not None and not getattr(generate, "labels_toggles", False):
        def generate_labelled(*args, **kwargs):
            return label_toggles(generate(*args, **kwargs))

        generate_labelled.labels_toggles = True
        context["generate_toctree_html"] = generate_labelled


def setup(app):
    # after pydata-sphinx-theme puts generate_toctree_html into the context (default priority 500)
    app.connect("html-page-context", _page_context, priority=800)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
