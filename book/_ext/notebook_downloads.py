"""Sphinx extension: every chapter to take away as an executed notebook, and all of them as a zip.

For each page built from a notebook (the MyST-markdown chapters and appendices with code), the
HTML build writes
  * ``_sources/<page>.ipynb``: the executed notebook, outputs included, where sphinx-book-theme's
    download menu looks for it (the extension sets its ``ipynb_source``, so the menu offers
    ``.ipynb`` next to ``.md`` and ``.pdf``);
  * ``_downloads/conv-course-notebooks.zip``: all of them, one folder per chapter as in ``book/``,
    with a README saying how to run them;
and a visible link under each such page's title (the root page links the zip).

The notebooks are made for JupyterLab, with the project installed (they import ``conv_course``
and find the repository's files through ``conv_course.REPO_ROOT``, never through the current
folder, so they run from wherever the zip is unpacked). What Jupyter cannot render is resolved:
``{literalinclude}`` becomes the included code, ``{glue:text}`` the value the book shows,
``:::{dropdown}`` a ``<details>`` block, other roles their text, ``(label)=`` targets go.

Outputs come from jupyter-cache, as the HTML's do. myst-nb's own ``jupyter_execute/<page>.ipynb``
cannot serve: on a cache hit it has no outputs (the merged copy is a different object), and when
the page executed in that build its glued values are taken out of the cells. The cache holds the
execution whole, so this merges its outputs in, and falls back to myst-nb's copy only without one.
"""

import json
import pathlib
import posixpath
import re
import zipfile

import nbformat
from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

ZIP_NAME = "conv-course-notebooks.zip"
ZIP_FOLDER = "conv-course-notebooks"
README = """\
conv-course: every chapter of "{title}" as an executed Jupyter notebook.

Run them in JupyterLab with the project installed: in the repository, `make setup`, then
`.venv/bin/jupyter lab` and open any notebook here (they may live in any folder: they import
`conv_course` and find the course files through it). Each notebook shows the outputs of the
build that made it; Kernel > Restart and Run All computes them again on your machine.
"""
LINK_TEXTS = {  # per edition (conv_course.book.EDITIONS)
    "en": {"zip": "Download every chapter as a Jupyter notebook (.zip)",
           "ipynb": "Download this chapter as a Jupyter notebook (.ipynb)"},
    "zh_CN": {"zip": "下载全部章节的 Jupyter 笔记本（.zip）", "ipynb": "下载本章的 Jupyter 笔记本（.ipynb）"},
}
ROLE = re.compile(r"\{([a-z][a-z:-]*)\}`([^`]*)`")
FENCE = re.compile(r"^```+\{literalinclude\}\s+(?P<path>\S+)\n(?P<options>(?::[\w-]+:.*\n)*)(?P<body>[\s\S]*?)^```+[ \t]*$",
                   re.MULTILINE)
DROPDOWN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>:{3,})\{dropdown\}[ \t]*(?P<title>.*)\n(?P<body>[\s\S]*?)"
                      r"^(?P=indent)(?P=fence)[ \t]*$", re.MULTILINE)  # at any indent: answers inside list items too
TARGET = re.compile(r"^\([\w.:-]+\)=\s*\n", re.MULTILINE)


def _is_notebook(app, docname):
    """Whether myst-nb built `docname` from a notebook that it wrote to its output folder."""
    path = pathlib.Path(app.env.doc2path(docname))
    if path.suffix == ".md":
        from myst_nb.core.read import is_myst_markdown_notebook

        if not is_myst_markdown_notebook(path.read_text(encoding="utf-8")):
            return False
    elif path.suffix != ".ipynb":
        return False
    return (_output_folder(app) / f"{docname}.ipynb").is_file()


def _output_folder(app):
    return pathlib.Path(app.env.mystnb_config.output_folder)


def _with_cached_outputs(app, nb):
    """`nb` with the outputs jupyter-cache holds for it (unchanged when the cache has no match)."""
    from jupyter_cache import get_cache

    cache_path = app.env.mystnb_config.execution_cache_path
    if not cache_path:
        return nb
    try:
        return get_cache(cache_path).merge_match_into_notebook(nb)[1]
    except KeyError:
        return nb


def _glue_text(glue, key_spec):
    from myst_nb.core.variables import format_plain_text

    key, _, spec = key_spec.partition(":")
    data = glue.get(key, {}).get("data", {})
    if "text/plain" not in data:
        return key_spec
    try:
        return format_plain_text(data["text/plain"], spec or "s")
    except (TypeError, ValueError):
        return data["text/plain"]


def _role_text(app, docname, role, content, glue):
    if role == "glue:text":
        return _glue_text(glue, content)
    if role in ("glue", "glue:any", "glue:md"):
        return _glue_text(glue, content)
    match = re.fullmatch(r"([\s\S]*?)\s*<([^<>]+)>", content)
    if match:
        return match.group(1)
    if role == "doc":
        target = posixpath.normpath(posixpath.join(posixpath.dirname(docname), content))
        title = app.env.titles.get(target.lstrip("/"))
        return title.astext() if title is not None else content
    if role == "cite":
        return "[" + ", ".join(key.strip() for key in content.split(",")) + "]"
    return content


def _include(app, docname, match):
    """A ``{literalinclude}`` block as the code it includes."""
    from sphinx.directives.code import LiteralIncludeReader

    source_dir = pathlib.Path(app.env.doc2path(docname)).parent
    options = {}
    for line in match.group("options").splitlines():
        name, _, value = line[1:].partition(":")
        options[name] = value.strip() if value.strip() else True
    language = options.pop("language", "python")
    for name in ("dedent", "lineno-start", "tab-width"):
        if name in options:
            options[name] = int(options[name])
    try:
        text, _ = LiteralIncludeReader(str(source_dir / match.group("path")), options, app.config).read()
    except (OSError, ValueError) as err:
        logger.warning(f"notebook_downloads: {docname}: cannot include {match.group('path')}: {err}")
        return match.group(0)
    return f"```{language}\n{text.rstrip()}\n```"


def readable_markdown(app, docname, source, glue):
    """A markdown cell's MyST source as markdown that Jupyter renders."""
    source = FENCE.sub(lambda m: _include(app, docname, m), source)
    source = DROPDOWN.sub(lambda m: f"{m.group('indent')}<details><summary>{m.group('title').strip()}</summary>\n\n"
                                    f"{m.group('body').rstrip()}\n\n{m.group('indent')}</details>", source)
    source = TARGET.sub("", source)
    return ROLE.sub(lambda m: _role_text(app, docname, m.group(1), m.group(2), glue), source)


def take_away_notebook(app, docname):
    """The notebook a reader downloads for `docname`: executed, readable in JupyterLab."""
    folder = _output_folder(app)
    nb = _with_cached_outputs(app, nbformat.read(folder / f"{docname}.ipynb", as_version=4))
    glue_path = folder / f"{docname}.glue.json"
    glue = json.loads(glue_path.read_text(encoding="utf-8")) if glue_path.is_file() else {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = readable_markdown(app, docname, cell.source, glue)
    for key in ("source_map", "jupytext"):
        nb.metadata.pop(key, None)
    return nb


def _notebook_docs(app):
    return sorted(doc for doc in app.env.found_docs if _is_notebook(app, doc))


def _relative(docname, target):
    return posixpath.relpath(target, posixpath.dirname(docname) or ".")


def _link(href, text):
    return (f'<p class="cc-notebook-download"><a class="reference download" href="{href}" download>'
            f'<i class="fas fa-download" aria-hidden="true"></i> {text}</a></p>')


def _insert_links(app, doctree, docname):
    """A visible download link under the page's title (notebook pages and the root page)."""
    if app.builder.format != "html":
        return
    texts = LINK_TEXTS.get(app.config.language, LINK_TEXTS["en"])
    if docname == app.config.root_doc:
        html = _link(_relative(docname, f"_downloads/{ZIP_NAME}"), texts["zip"])
    elif _is_notebook(app, docname):
        html = _link(_relative(docname, f"_sources/{docname}.ipynb"), texts["ipynb"])
    else:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    title = section.next_node(nodes.title) if section is not None else None
    if title is None:
        return
    title.parent.insert(title.parent.index(title) + 1, nodes.raw("", html, format="html"))


def _page_context(app, pagename, templatename, context, doctree):
    """Let sphinx-book-theme's download menu offer the notebook (it looks for ``ipynb_source``)."""
    if doctree is not None and _is_notebook(app, pagename):
        context["ipynb_source"] = f"{pagename}.ipynb"


def _build_finished(app, exception):
    """Write every notebook into ``_sources/`` and all of them into the zip."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = pathlib.Path(app.outdir)
    docs = _notebook_docs(app)
    zip_path = outdir / "_downloads" / ZIP_NAME
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    root_prefix = posixpath.dirname(app.config.root_doc)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{ZIP_FOLDER}/README.txt", README.format(title=app.config.html_title))
        for doc in docs:
            text = nbformat.writes(take_away_notebook(app, doc))
            path = outdir / "_sources" / f"{doc}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            inside = posixpath.relpath(doc, root_prefix) if root_prefix else doc
            zf.writestr(f"{ZIP_FOLDER}/{inside}.ipynb", text)
    logger.info(f"notebook_downloads: {len(docs)} notebooks in _sources/ and {zip_path.relative_to(outdir)}")


def setup(app):
    app.connect("doctree-resolved", _insert_links)
    app.connect("html-page-context", _page_context, priority=400)  # before the theme's buttons (501)
    app.connect("build-finished", _build_finished)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
