"""The translation catalogs (``locale/<language>/LC_MESSAGES/``): in step with the English text,
and every translation keeps the markup that makes a number, a link or a formula.

A translated paragraph is parsed as MyST again, so a lost ``{glue:text}`key``` would drop a
computed number, a lost ``{term}`` a glossary link, a changed ``$...$`` a formula.
"""

import re
from collections import Counter

import pytest
from babel.messages.pofile import read_po

from bookpages import ROOT
from conv_course.book import LOCALE_DIR, extract_messages
from conv_course.editions import EDITIONS

pytestmark = [pytest.mark.book, pytest.mark.slow]

TRANSLATED = [language for language in EDITIONS if EDITIONS[language][1]]
ROLE = re.compile(r"\{([a-z][a-z:-]*)\}`([^`]*)`")
MATH = re.compile(r"\$\$[\s\S]+?\$\$|\$[^$\n]+\$")
CODE = re.compile(r"(?<![`}])`([^`\n]+)`")


def catalogs(language):
    folder = ROOT / LOCALE_DIR / language / "LC_MESSAGES"
    return {path.relative_to(folder).with_suffix("").as_posix(): path for path in sorted(folder.rglob("*.po"))}


def messages(path):
    with open(path, "rb") as f:
        return [m for m in read_po(f) if m.id]


def markup(text):
    """What must survive translation: roles with their targets, formulas, code spans."""
    roles = Counter()
    for name, content in ROLE.findall(text):
        if name == "term":  # {term}`shown text <glossary term>` or {term}`glossary term`
            match = re.fullmatch(r"[\s\S]*?<([^<>]+)>", content)
            content = (match.group(1) if match else content).strip().lower()
        elif name == "doc":  # the target, with or without a shown text
            match = re.fullmatch(r"[\s\S]*?<([^<>]+)>", content)
            content = match.group(1) if match else content
        roles[(name, content)] += 1
    rest = ROLE.sub("", text)
    return roles, Counter(MATH.findall(rest)), Counter(CODE.findall(MATH.sub("", rest)))


def test_markup_check_sees_what_a_translation_can_lose():
    english = "The sum, {glue:text}`total:.2f`, of $x_i$ over the {term}`kernel` (`ops.conv2d`)."
    assert markup("总和 {glue:text}`total:.2f` 是 $x_i$ 在{term}`卷积核 <Kernel>`上（`ops.conv2d`）。") == markup(english)
    assert markup("总和是 $x_i$ 在{term}`卷积核 <kernel>`上（`ops.conv2d`）。") != markup(english)  # a number lost
    assert markup("总和 {glue:text}`total:.2f` 是 $x_j$ 在{term}`卷积核 <kernel>`上（`ops.conv2d`）。") != markup(english)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_translation_keeps_the_markup(language):
    problems = []
    for name, path in catalogs(language).items():
        for message in messages(path):
            if message.string and markup(message.string) != markup(message.id):
                problems.append(f"{name}: {message.id[:70]!r}")
    assert not problems, f"{len(problems)} translations change the markup:\n" + "\n".join(problems[:20])


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalogs_follow_the_english_text(built_book, tmp_path, language):
    """`conv-course translations` has been run: every English text has its entry, none is stale.

    (`built_book` first: the extraction then reads every executed notebook from the cache.)
    """
    templates = extract_messages(ROOT, tmp_path, quiet=True)
    assert templates is not None, "extracting the English texts failed"
    english = {path.relative_to(templates).with_suffix("").as_posix(): path for path in templates.rglob("*.pot")}
    found = catalogs(language)
    assert set(found) == set(english), "pages without a catalog, or catalogs without a page: run `conv-course translations`"
    for name, path in english.items():
        want = {m.id for m in messages(path)}
        have = {m.id for m in messages(found[name])}
        new, gone = sorted(want - have), sorted(have - want)
        assert not new and not gone, (f"{language}/{name}: {len(new)} English texts missing (first: {new[:1]}), "
                                      f"{len(gone)} stale: run `conv-course translations`")


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_catalog_is_complete(language):
    """No page of a translated edition falls back to English: nothing untranslated, nothing fuzzy
    (a fuzzy entry is a translation of an older English text)."""
    for name, path in catalogs(language).items():
        for message in messages(path):
            assert message.string and not message.fuzzy, (
                f"{language}/{name}: {'outdated (fuzzy)' if message.fuzzy else 'untranslated'}: {message.id[:80]!r}")
