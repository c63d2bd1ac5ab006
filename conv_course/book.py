"""Build the HTML book, in every edition: ``conv-course book`` (what ``make book`` runs).

One set of sources, two editions. English is the source text; the Chinese edition is the same
pages with each paragraph, title, caption and alt text replaced from the gettext catalogs in
``locale/zh_CN/LC_MESSAGES/`` (Sphinx's standard i18n). Both editions execute nothing twice:
they read the same jupyter-cache, so every number and figure is the same computation.

``_build/html/`` holds the English edition and ``_build/html/zh_CN/`` the Chinese one, so the
site is one folder a reader can serve or copy; each page links to the same page in the other
edition (``book/_ext/editions.py``). ``conv-course translations`` brings the catalogs up to date
with the English text (a changed paragraph becomes an untranslated message).
"""

import os
import pathlib
import shutil
import subprocess
import sys

import yaml

from . import REPO_ROOT
from .editions import EDITION_SETTINGS, EDITIONS, SOURCE_LANGUAGE

__all__ = ["LOCALE_DIR", "build", "edition_config", "terms", "extract_messages", "update_catalogs",
           "add_book_arguments", "run_book", "add_translations_arguments", "run_translations"]

LOCALE_DIR = "locale"


def _tool(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def _run(cmd, root):
    return subprocess.call(cmd, cwd=root, env=dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1"))


def edition_config(root, language):
    """The book's ``_config.yml`` for one edition, as a dict (the English edition's is the file)."""
    root = pathlib.Path(root)
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    settings = EDITION_SETTINGS.get(language, {})
    config["title"] = settings.get("title", config.get("title"))
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {}).update(language=language, **settings.get("sphinx", {}))
    # jupyter-book reads local extensions relative to the configuration file, which moves
    sphinx["local_extensions"] = {name: str(root / path) for name, path in sphinx.get("local_extensions", {}).items()}
    return config


def terms(root, language):
    """The course's terminology in `language`: {English term: translation}, from ``locale/<language>/terms.tsv``."""
    path = pathlib.Path(root) / LOCALE_DIR / language / "terms.tsv"
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    return {row[0]: row[1] for row in rows}


def _search_dictionary(root, language, folder):
    """A word list for the search index's word splitting (jieba, for Chinese), from the terminology:
    without it, 互相关 (cross-correlation) is indexed as 互相 + 关与 and cannot be found."""
    if not (pathlib.Path(root) / LOCALE_DIR / language / "terms.tsv").is_file():
        return None
    path = folder / "search-words.txt"
    path.write_text("".join(f"{word}\n" for word in sorted(set(terms(root, language).values()))), encoding="utf-8")
    return path


def _build_edition(root, language, all_pages, quiet):
    """Build one translated edition under ``_build/<language>/`` and copy its HTML into the site."""
    root = pathlib.Path(root)
    work = root / "_build" / language
    work.mkdir(parents=True, exist_ok=True)
    settings = edition_config(root, language)
    words = _search_dictionary(root, language, work)
    if words is not None:
        settings["sphinx"]["config"]["html_search_options"] = {"dict": str(words)}
    config = work / "_config.yml"
    config.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    cmd = [_tool("jupyter-book"), "build", str(root), "--builder", "html", "--config", str(config),
           "--path-output", str(work)]
    code = _run(cmd + (["--all"] if all_pages else []) + (["--quiet"] if quiet else []), root)
    if code == 0:
        site = root / "_build" / "html" / EDITIONS[language][1]
        shutil.rmtree(site, ignore_errors=True)
        shutil.copytree(work / "_build" / "html", site)
    return code


def build(root=REPO_ROOT, *, all_pages=False, quiet=False, editions=tuple(EDITIONS)):
    """Run ``jupyter-book build`` for each edition; the site lands in ``root/_build/html``.

    Cells execute through jupyter-cache (``_build/.jupyter_cache``), once for all editions, and
    any cell error fails the build. Returns the first non-zero return code, else 0.
    """
    for language in editions:
        if language == SOURCE_LANGUAGE:
            cmd = [_tool("jupyter-book"), "build", str(root), "--builder", "html"]
            code = _run(cmd + (["--all"] if all_pages else []) + (["--quiet"] if quiet else []), root)
        else:
            code = _build_edition(root, language, all_pages, quiet)
        if code:
            return code
    return 0


def extract_messages(root=REPO_ROOT, work=None, quiet=False):
    """Every translatable text of the English book as gettext templates, one ``.pot`` per page;
    returns the folder that holds them (None when the build failed)."""
    root = pathlib.Path(root)
    work = pathlib.Path(work) if work else root / "_build" / "gettext-work"
    cmd = [_tool("jupyter-book"), "build", str(root), "--builder", "custom", "--custom-builder", "gettext",
           "--path-output", str(work)]
    if _run(cmd + (["--quiet"] if quiet else []), root):
        return None
    templates = work / "_build" / "gettext"
    for stale in ("book.pot", "sphinx.pot"):  # the theme's own texts are translated by the theme
        (templates / stale).unlink(missing_ok=True)
    return templates


def update_catalogs(root=REPO_ROOT, languages=tuple(EDITIONS)[1:], quiet=False):
    """Merge the English texts into each language's catalogs: new texts arrive untranslated,
    changed ones fuzzy (their old translation kept as a hint), removed ones go."""
    templates = extract_messages(root, quiet=quiet)
    if templates is None:
        return 1
    for language in languages:
        code = _run([_tool("sphinx-intl"), "update", "-p", str(templates), "-l", language,
                     "-d", str(pathlib.Path(root) / LOCALE_DIR), "-w", "0"], root)
        if code:
            return code
    return 0


def add_book_arguments(parser):
    parser.add_argument("--all", action="store_true", help="rebuild every page, not only changed ones")
    parser.add_argument("--quiet", action="store_true", help="less output")
    parser.add_argument("--edition", choices=list(EDITIONS), action="append",
                        help="build only this edition (repeatable; default: all)")


def run_book(args):
    editions = tuple(args.edition or EDITIONS)
    code = build(all_pages=args.all, quiet=args.quiet, editions=editions)
    if code == 0:
        for language in editions:
            page = os.path.join(REPO_ROOT, "_build", "html", EDITIONS[language][1], "index.html")
            print(f"book ({EDITIONS[language][0]}): open {os.path.normpath(page)}")
    return code


def add_translations_arguments(parser):
    parser.add_argument("--quiet", action="store_true", help="less output")


def run_translations(args):
    code = update_catalogs(quiet=args.quiet)
    if code == 0:
        print(f"translations: catalogs updated in {os.path.join(REPO_ROOT, LOCALE_DIR)}")
    return code
