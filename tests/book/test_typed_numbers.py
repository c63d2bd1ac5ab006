"""Every number in a chapter's prose is computed (STYLE section 7): no typed numerals.

A chapter pastes the numbers it reports with ``{glue:text}`name` ``, so the page can never say
something its own code did not compute. This test lists the numerals left in the prose and fails
on any that the allow-list below does not cover.

Prose is the Markdown between the code cells, including admonition and dropdown bodies and their
titles. Not prose (skipped): the front matter; code cells with their metadata (figure captions
and alt text live there); literal blocks and ``literalinclude``; math (``$...$``, ``$$...$$``,
``{math}``); inline code; every role (``{glue:text}``, ``{cite}``, ``{term}``, ``{doc}``, ...);
link targets and bare URLs; list numbering; directive options (``:class: dropdown``).

Allowed in prose, and why (short on purpose; everything else is glued from the code that uses it):

1. 0, 1, 2 and 3 standing alone: small counts ("two outputs"), the constants of definitions
   ("weights that sum to 1", "stride 2") and the dimension of an array ("2-D").
2. Sizes made of the digits 1, 2 and 3 only (1x1, 2x2, 3x3, 3x2): the hand-checkable examples
   each chapter opens with, and the kernel sizes that name a concept ("a 3x3 kernel", "2x2
   pooling"). A 5x5 result or a 512x512 photograph is data and is glued.
3. "chapter 4", "chapters 2 and 7": cross-references to the book's structure.
4. Digits inside a name: a letter right before them (float32, conv1, C1) or a capitalised name
   joined by a hyphen (LeNet-5, CIFAR-10).
"""

import re

import pytest

from bookpages import CHAPTERS, ROOT

FENCE = re.compile(r"^\s*(?P<mark>`{3,}|:{3,})\s*(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
# fenced blocks whose body is code, data or math, never prose
NOT_PROSE_DIRECTIVES = {"code-cell", "code-block", "code", "literalinclude", "math", "raw",
                        "eval-rst"}
NO_PROSE_ARGUMENT = {"figure", "image", "include", "literalinclude", "code-cell", "bibliography"}

# $...$ may wrap a line; this also removes $$...$$ blocks (no blank line inside either)
MATH = re.compile(r"(?<!\\)\$(?:[^$\n]|\n(?![ \t]*\n))+?\$")
INLINE_CODE = re.compile(r"(`+).+?\1")          # also the content of every role, {name}`...`
LINK_TARGET = re.compile(r"\]\([^)]*\)")
URL = re.compile(r"<?https?://\S+")
LIST_NUMBER = re.compile(r"^(\s*)\d+[.)](?=\s)", re.M)
COMMENT = re.compile(r"^\s*%.*$|<!--.*?-->", re.M | re.S)
TARGET = re.compile(r"^\s*\([\w-]+\)=\s*$", re.M)
OPTION = re.compile(r"^\s*:[\w-]+:.*$")

NUMERAL = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?:x\d+(?:[.,]\d+)*)*%?")
SMALL = {"0", "1", "2", "3"}
SMALL_SIZE = re.compile(r"[123](?:x[123])+")
CHAPTER_REF = re.compile(r"\b[Cc]hapters?\s+\d+(?:\s*(?:,|and|or|to|-|–)\s*\d+)*")
NAMED = re.compile(r"\b[A-Z][A-Za-z]*-\d+\b")


def _blank(match):
    """Replace a match by as many newlines as it spans, so line numbers stay right."""
    return "\n" * match.group(0).count("\n") or " "


def prose(text):
    """The chapter's prose, with everything that is not prose blanked (line numbers kept)."""
    lines = text.split("\n")
    if lines and lines[0] == "---":                              # front matter
        end = lines.index("---", 1)
        lines[:end + 1] = [""] * (end + 1)
    out, stack = [], []                                          # stack: (mark, keep body?)
    for line in lines:
        fence = FENCE.match(line)
        if stack and fence and fence["mark"][0] == stack[-1][0][0] and \
                len(fence["mark"]) >= len(stack[-1][0]) and not fence["info"].strip():
            stack.pop()                                          # closing fence
            out.append("")
            continue
        if stack and not stack[-1][1]:                           # inside code or math
            out.append("")
            continue
        if fence:                                                # opening fence
            directive = DIRECTIVE.match(fence["info"].strip())
            name = directive["name"] if directive else None
            keep = name is not None and name not in NOT_PROSE_DIRECTIVES
            stack.append((fence["mark"], keep))
            arg = directive["arg"] if directive and name not in NO_PROSE_ARGUMENT else ""
            out.append(arg)                                      # a dropdown's title is prose
            continue
        out.append("" if stack and OPTION.match(line) else line)
    body = "\n".join(out)
    for pattern in (COMMENT, TARGET, MATH, INLINE_CODE, LINK_TARGET, URL):
        body = pattern.sub(_blank, body)
    return LIST_NUMBER.sub(r"\1", body)


def allowed_spans(line):
    """Character ranges of a prose line covered by allow-list rules 3 and 4."""
    return [m.span() for pattern in (CHAPTER_REF, NAMED) for m in pattern.finditer(line)]


def typed_numbers(text):
    """(line number, numeral, line) for every numeral in the prose outside the allow-list."""
    found = []
    for number, line in enumerate(prose(text).split("\n"), start=1):
        spans = allowed_spans(line)
        for m in NUMERAL.finditer(line):
            token = m.group(0)
            if token in SMALL or SMALL_SIZE.fullmatch(token):
                continue
            if any(start <= m.start() < end for start, end in spans):
                continue
            found.append((number, token, line.strip()))
    return found


def test_scanner_flags_typed_results_and_skips_what_is_not_prose():
    text = "\n".join([
        "---", "jupytext: 12", "---",                                         # lines 1-3
        "# Title 7",
        "A 512x512 photo gives 97% and 0.25 or 1,000,",
        "but `x[:256]`, $28$, {glue:text}`n` and {numref}`Figure 4 <fig-a>` are fine.",
        "```{code-cell} ipython3", ":tags: [remove-cell]", "glue('n', 4096)", "```",
        "$$", "n = 31", "$$",                                                 # lines 11-13
        "1. An item: chapter 4, chapters 2 and 7, 2-D, float32, LeNet-5, 3x3, 2x2 and 3.",
        "See [section 5](../9/page.md), <https://example.org/8> and {cite}`lecun1998gradient`.",
        ":::{dropdown} Answer 12", ":name: answer-12", "It is 5x5.", ":::",  # lines 16-19
        "```python", "x = 99", "```",
        "% a comment, 42",
    ])
    assert [(line, token) for line, token, _ in typed_numbers(text)] == [
        (4, "7"), (5, "512x512"), (5, "97%"), (5, "0.25"), (5, "1,000"), (15, "5"),
        (16, "12"), (18, "5x5")]


@pytest.mark.parametrize("doc", list(CHAPTERS))
def test_chapter_prose_has_no_typed_numbers(doc):
    found = typed_numbers((ROOT / f"{doc}.md").read_text(encoding="utf-8"))
    assert not found, f"{doc}.md has typed numbers in its prose (glue them):\n" + "\n".join(
        f"  line {line}: {token!r} in: {text}" for line, token, text in found)
