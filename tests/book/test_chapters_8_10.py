"""Source checks for chapters 8-10 and the performance appendix: they must build offline and quietly.

These pages train networks and run benchmarks while the book builds, so three mistakes would
cost the most: a cell that downloads (the build runs with no network), a `fit` call that draws a
progress bar (a widget or stderr noise in the HTML), and an appendix cell that starts a book build
from inside the book build. Chapters 8-10 are also read on screen: their code wraps before it
scrolls sideways, every question at their end has a collapsed answer, and the fine-tuning
comparison is repeated over seeds.
"""

import re

import jupytext
import pytest

from bookpages import ROOT

CHAPTER_PAGES = ["book/08-cnns-in-pytorch/cnns-in-pytorch.md", "book/08-cnns-in-pytorch/training-recipe.md",
                 "book/09-fine-tuning/fine-tuning.md", "book/10-conv1d/conv1d.md"]
PERFORMANCE = "book/appendix/performance.md"
PAGES = CHAPTER_PAGES + [PERFORMANCE]
CODE_WIDTH = 88  # characters: a code cell this wide fits a 1280 px window without scrolling

DOWNLOADS = re.compile(r"load_idx_dataset|urlretrieve|urlopen|requests\.|torchvision|download\s*=\s*True")
FIT_CALL = re.compile(r"(?:\btrain\.|(?<![\w.]))fit\((?:[^()]|\([^()]*\))*\)", re.S)  # not sklearn's .fit(


def code_cells(text):
    """Sources of the executed code cells of a MyST notebook (plain ``python`` fences are not cells)."""
    nb = jupytext.reads(text, fmt="md:myst")
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def downloading_cells(text):
    return [src for src in code_cells(text) if DOWNLOADS.search(src)]


def fit_calls_with_progress(text):
    calls = [m.group(0) for src in code_cells(text) for m in FIT_CALL.finditer(src)]
    return [c for c in calls if not re.search(r"progress\s*=\s*False", c)]


@pytest.fixture(params=PAGES)
def page_text(request):
    return (ROOT / request.param).read_text(encoding="utf-8")


def test_no_executed_cell_downloads(page_text):
    assert downloading_cells(page_text) == []


def test_every_fit_call_turns_the_progress_bar_off(page_text):
    assert fit_calls_with_progress(page_text) == []


def test_chapter_8_shows_the_full_mnist_loader_without_running_it():
    text = (ROOT / "book/08-cnns-in-pytorch/cnns-in-pytorch.md").read_text(encoding="utf-8")
    assert "load_idx_dataset(" in text                   # shown to the reader ...
    assert downloading_cells(text) == []                  # ... in a fence that never executes


def test_performance_appendix_never_builds_the_book():
    cells = code_cells((ROOT / PERFORMANCE).read_text(encoding="utf-8"))
    assert not [src for src in cells if re.search(r"bench_book|jupyter-book|conv_course\.book|\bbuild\(", src)]


def long_code_lines(text, width=CODE_WIDTH):
    """(line, length) of every executed code line wider than `width` (cell metadata excluded)."""
    return [(line, len(line)) for src in code_cells(text) for line in src.splitlines()
            if len(line) > width]


ITEM = re.compile(r"^\d+\.\s", re.M)
COLLAPSED = re.compile(r"^\s*(?::{3,}|`{3,})\{dropdown\}|^\s*:class:\s*dropdown", re.M)


def questions_without_answers(text):
    """The numbered questions after '## Exercises' that hold no collapsed (dropdown) block."""
    exercises = text.rsplit("\n## Exercises", 1)[1]
    starts = [m.start() for m in ITEM.finditer(exercises)] + [len(exercises)]
    items = [exercises[a:b] for a, b in zip(starts, starts[1:])]
    return [item.splitlines()[0] for item in items if not COLLAPSED.search(item)]


def self_check_questions(text):
    """Numbered questions between '**Check yourself.**' and '**Practice.**' in the Exercises."""
    exercises = text.rsplit("\n## Exercises", 1)[1]
    if "**Check yourself.**" not in exercises or "**Practice.**" not in exercises:
        return []
    block = exercises.split("**Check yourself.**", 1)[1].split("**Practice.**", 1)[0]
    return ITEM.findall(block)


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_chapter_code_cells_wrap_before_they_scroll(page):
    assert long_code_lines((ROOT / page).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("page", CHAPTER_PAGES)
def test_every_end_of_chapter_question_has_a_collapsed_answer(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    assert questions_without_answers(text) == []
    assert len(self_check_questions(text)) >= 2, "no 'Check yourself' block of two questions or more"


def test_fine_tuning_compares_strategies_over_at_least_three_seeds():
    cells = code_cells((ROOT / "book/09-fine-tuning/fine-tuning.md").read_text(encoding="utf-8"))
    seeds = {int(s) for src in cells for s in re.findall(r"\brun_seed\((\d+)\)", src)}
    assert len(seeds) >= 3, f"the strategy comparison runs seeds {sorted(seeds)}"


# The detectors themselves, on small pages written for the purpose (each must fire).
_PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

```{{code-cell}} ipython3
{code}
```

```python
train_full, test_full = data.load_idx_dataset("mnist")
```
"""


def test_detectors_fire_on_a_downloading_cell_and_a_noisy_fit():
    noisy = _PAGE.format(code='h = train.fit(model, data.load_idx_dataset("mnist")[0], epochs=2)')
    assert len(downloading_cells(noisy)) == 1
    assert len(fit_calls_with_progress(noisy)) == 1
    quiet = _PAGE.format(code="h = train.fit(model, few_shot(s, 1), epochs=int(2.0), progress=False)\n"
                               "LogisticRegression().fit(X, y)")
    assert downloading_cells(quiet) == [] and fit_calls_with_progress(quiet) == []


def test_detectors_fire_on_a_wide_cell_and_an_unanswered_question():
    wide = _PAGE.format(code="x = 1  # " + "-" * CODE_WIDTH)
    assert len(long_code_lines(wide)) == 1
    assert long_code_lines(_PAGE.format(code="x = 1")) == []
    page = ("# Title\n\n## Exercises\n\n**Check yourself.**\n\n1. Why?\n\n   :::{dropdown} Answer\n   Because.\n"
            "   :::\n\n2. How?\n\n   ```{admonition} Hint\n   :class: dropdown\n   So.\n   ```\n\n"
            "**Practice.**\n\n1. Try it.\n\n2. And this.\n\n   :::{dropdown} Answer\n   Done.\n   :::\n")
    assert questions_without_answers(page) == ["1. Try it."]
    assert len(self_check_questions(page)) == 2
