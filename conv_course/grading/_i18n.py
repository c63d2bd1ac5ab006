"""The language of the checkers' feedback: Python gettext, English unless ``CONV_COURSE_LANG`` says otherwise.

Every student-facing message of `conv_course.grading` is written in English and passed through
`_` when it is built, with named placeholders filled afterwards, so a translator can reorder them::

    _("wrong {name} for case {case}").format(name=name, case=format_case(case))

Messages kept in module-level tables are marked with `N_` (a no-op that the extractor sees) and
translated with `_` where they are used. ``CONV_COURSE_LANG`` (``en``, the default, or ``zh_CN``)
is read at every call, so one process can switch languages; an unknown language gives English.

The catalogs are ``locale/<lang>/LC_MESSAGES/conv_course.po`` beside this module; only the .po is
kept, and babel compiles it in memory on first use, so nothing is written into the installed
package. To add messages to a catalog after editing the checkers::

    pybabel extract -o /tmp/conv_course.pot conv_course/grading
    pybabel update -i /tmp/conv_course.pot -D conv_course -d conv_course/grading/locale -l zh_CN
"""

import functools
import gettext
import io
import os

__all__ = ["LANG_ENV", "DOMAIN", "LOCALE_DIR", "_", "N_", "language", "catalog_path"]

LANG_ENV = "CONV_COURSE_LANG"
DOMAIN = "conv_course"
LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")


def language():
    """The feedback language asked for in ``CONV_COURSE_LANG`` (``en`` when unset), e.g. ``zh_CN``."""
    return os.environ.get(LANG_ENV, "").strip().replace("-", "_") or "en"


def catalog_path(lang):
    """The .po file of `lang`'s catalog (it may not exist)."""
    return os.path.join(LOCALE_DIR, lang, "LC_MESSAGES", f"{DOMAIN}.po")


@functools.lru_cache(maxsize=None)
def _translations(lang):
    """`lang`'s catalog, compiled in memory by babel (fuzzy and empty entries left out, as msgfmt does)."""
    path = catalog_path(lang)
    if lang == "en" or not os.path.exists(path):
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with open(path, "rb") as f:
        catalog = read_po(f, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _(message):
    """`message` in the language of ``CONV_COURSE_LANG`` (unchanged in English or when untranslated)."""
    return _translations(language()).gettext(message)


def N_(message):
    """Mark `message` for translation without translating it (for tables built at import time)."""
    return message
