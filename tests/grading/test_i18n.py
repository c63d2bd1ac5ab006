"""Feedback in Simplified Chinese (`conv_course.grading._i18n`): a complete catalog, switched by CONV_COURSE_LANG.

The catalog is checked against the messages babel's extractor finds in `conv_course/grading` (the
same extraction ``pybabel extract`` does), so a new message without a translation fails here.
"""

import ast
import pathlib
import re
import string

import numpy as np
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po as babel_read_po

from conv_course import REPO_ROOT, book
from conv_course.grading import _i18n
from conv_course.grading._i18n import LANG_ENV, _
from conv_course.grading.conv import check_corr2d

GRADING = pathlib.Path(_i18n.__file__).parent
CATALOG = _i18n.catalog_path("zh_CN")


def _extracted():
    """{msgid: "file:line"} of every message marked in the checkers' source, in source order."""
    found = {}
    for filename, lineno, message, *_rest in extract_from_dir(str(GRADING), method_map=[("**.py", "python")]):
        found.setdefault(message, f"{filename}:{lineno}")
    return found


def _babel_catalog():
    with open(CATALOG, "rb") as f:
        return babel_read_po(f, locale="zh_CN")


def _fields(text):
    """The replacement fields of a str.format template: sorted (name, conversion, spec)."""
    return sorted((name, conversion, spec) for _, name, spec, conversion in string.Formatter().parse(text)
                  if name is not None)


def test_every_message_of_the_checkers_has_a_chinese_translation():
    catalog = _babel_catalog()
    messages = _extracted()
    assert len(messages) > 150  # the extractor sees the checkers' messages (not a vacuous pass)
    for msgid, where in messages.items():
        entry = catalog.get(msgid)
        assert entry is not None, f"{where}: no zh_CN entry for {msgid!r}"
        assert entry.string and not entry.fuzzy, f"{where}: empty or fuzzy zh_CN translation of {msgid!r}"


def test_translations_keep_the_placeholders_and_the_catalog_has_no_stale_entry():
    messages = _extracted()
    for entry in _babel_catalog():
        if not entry.id:
            continue
        assert entry.id in messages, f"stale zh_CN entry, no longer in the checkers: {entry.id!r}"
        assert _fields(entry.string) == _fields(entry.id), f"placeholders differ in the translation of {entry.id!r}"


def _prose(msgid):
    """The words of `msgid` outside code: no `backticks`, {placeholders}, formulas or names like grad_x."""
    text = re.sub(r"`[^`]*`|\{[^}]*\}", " ", msgid)
    text = re.sub(r"\S*\s*(?:=|//|\+)\s*\S*", " ", text)
    return " ".join(word for word in text.split() if not re.search(r"[_=\[\]().*/@]", word))


def test_translations_use_the_course_terminology():
    """Where a message's prose uses a term of locale/zh_CN/terms.tsv, its translation uses that term's Chinese."""
    terms = book.terms(REPO_ROOT, "zh_CN")
    checked, wrong = 0, []
    for entry in _babel_catalog():
        words = _prose(entry.id) if entry.id else ""
        for english, chinese in terms.items():
            if re.search(rf"\b{re.escape(english)}(s|es)?\b", words, re.IGNORECASE):
                checked += 1
                if chinese not in entry.string:
                    wrong.append(f"{english} -> {chinese} missing in the translation of {entry.id!r}")
    assert checked > 50 and wrong == []


def test_gettext_at_run_time_gives_every_translation_of_the_catalog():
    """The in-memory compilation gives gettext every translated, non-fuzzy message of the .po."""
    expected = {m.id: m.string for m in _babel_catalog() if m.id and m.string and not m.fuzzy}
    translations = _i18n._translations("zh_CN")
    assert all(translations.gettext(msgid) == text for msgid, text in expected.items())


def test_the_language_is_read_at_every_call(monkeypatch):
    msgid = "Likely bug: {diagnosis}"
    monkeypatch.delenv(LANG_ENV, raising=False)
    assert _(msgid) == msgid
    monkeypatch.setenv(LANG_ENV, "zh_CN")
    assert _(msgid) == "可能的错误：{diagnosis}"
    monkeypatch.setenv(LANG_ENV, "zh-CN")
    assert _(msgid) == "可能的错误：{diagnosis}"
    for lang in ("en", "fr", ""):
        monkeypatch.setenv(LANG_ENV, lang)
        assert _(msgid) == msgid


def test_no_checker_raises_an_untranslated_literal():
    """Student-facing failures are built with `_`: no AssertionError (or print) of a bare literal or f-string."""
    def literal(node):  # an f-string, a string with words in it, or a sum with one of those
        words = isinstance(node, ast.Constant) and isinstance(node.value, str) and any(c.isalpha() for c in node.value)
        return isinstance(node, ast.JoinedStr) or words or (
            isinstance(node, ast.BinOp) and (literal(node.left) or literal(node.right)))

    bad = []
    for path in sorted(GRADING.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("AssertionError", "print") and node.args and literal(node.args[0])):
                bad.append(f"{path.name}:{node.lineno}")
    assert bad == []


# ------------------------------------------------------------------ a planted bug, in both languages
def flipped_corr2d(image, kernel, stride=1, padding=0):
    """The classic bug: the textbook convolution (kernel flipped) instead of cross-correlation."""
    k = kernel[::-1, ::-1]
    kh, kw = k.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (image[i:i + kh, j:j + kw] * k).sum()
    return out


def _feedback():
    with pytest.raises(AssertionError) as info:
        check_corr2d(flipped_corr2d)
    return str(info.value)


def test_a_flipped_kernel_is_named_in_chinese_with_zh_cn(monkeypatch):
    monkeypatch.setenv(LANG_ENV, "zh_CN")
    message = _feedback()
    assert message.startswith("corr2d 的输出有误，用例为 image=array(")
    assert "期望形状 (" in message and "个值中有" in message
    assert "\n  可能的错误：你的输出等于真正的卷积：卷积核被翻转了。" in message  # the likely bug, in Chinese
    assert "Likely bug" not in message and "expected" not in message


def test_the_english_feedback_is_unchanged_without_the_setting(monkeypatch):
    monkeypatch.delenv(LANG_ENV, raising=False)
    message = _feedback()
    assert message.startswith("wrong corr2d output for case image=array(")
    assert "\n  Likely bug: your output equals the true convolution: the kernel is flipped. This course (like torch) " \
           "cross-correlates" in message
    monkeypatch.setenv(LANG_ENV, "en")
    assert _feedback() == message
