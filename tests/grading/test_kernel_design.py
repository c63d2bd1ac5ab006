"""Checkers of assignment 04 (`conv_course.grading.kernel_design`): kernels that do the job pass on real
photos, kernels with a known flaw are told what the flaw is."""

import numpy as np
import pytest

from conv_course.grading import kernel_design
from conv_course.grading.kernel_design import check_blur, check_diagonal, check_sharpen, check_vertical_edge

SOBEL_X = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
IDENTITY = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
SHARPEN = IDENTITY - LAPLACIAN                  # centre 5, the four neighbours -1: weights sum to 1
OVERSHARPEN = np.array([[-5.0, -5.0, -5.0], [-5.0, 41.0, -5.0], [-5.0, -5.0, -5.0]])   # sums to 1
DIAGONAL = 3 * np.eye(3) - 1                    # +2 on the main diagonal, -1 off it: weights sum to 0


@pytest.mark.parametrize("hidden", [False, True])
@pytest.mark.parametrize("check, kernel", [(check_vertical_edge, SOBEL_X), (check_blur, np.ones((3, 3)) / 9),
                                           (check_blur, np.ones((5, 5)) / 25), (check_sharpen, SHARPEN),
                                           (check_diagonal, DIAGONAL)],
                         ids=["sobel", "box3", "box5", "sharpen", "diagonal"])
def test_a_kernel_that_does_the_job_passes(check, kernel, hidden):
    check(kernel, hidden=hidden)


def test_a_nested_list_is_accepted_as_a_kernel():
    check_vertical_edge(SOBEL_X.tolist())


BUGS = [
    ("edge: horizontal", check_vertical_edge, SOBEL_X.T, "your kernel detects horizontal edges"),
    ("edge: every direction", check_vertical_edge, LAPLACIAN, "your kernel responds to edges of every direction"),
    ("edge: flat areas", check_vertical_edge, SOBEL_X + 0.01, r"it responds to flat areas: the weights must sum to 0 "
                                                              r"\(yours sum to 0\.09\)"),
    ("blur: brighter", check_blur, np.ones((3, 3)), "the weights sum to 9, so brightness changes; divide"),
    ("blur: no smoothing", check_blur, IDENTITY, "it does not smooth"),
    ("sharpen: edge detector", check_sharpen, -LAPLACIAN, "the weights sum to 0: that is an edge detector"),
    ("sharpen: brighter", check_sharpen, SHARPEN + IDENTITY, "the weights sum to 2, so brightness changes"),
    ("sharpen: no boost", check_sharpen, IDENTITY, "it does not boost detail"),
    ("sharpen: too strong", check_sharpen, OVERSHARPEN, "the result no longer looks like the photo"),
    ("diagonal: mirrored", check_diagonal, DIAGONAL[:, ::-1], r"your kernel finds the other diagonal \(/\)"),
    ("diagonal: brightness", check_diagonal, np.ones((3, 3)), "its response follows the photo's brightness"),
    ("diagonal: vertical line", check_diagonal, np.array([[-1.0, 2.0, -1.0]] * 3), "responds as much to the '|' line"),
]


@pytest.mark.parametrize("name, check, kernel, text", BUGS, ids=[b[0] for b in BUGS])
def test_kernel_flaw_is_named(name, check, kernel, text):
    with pytest.raises(AssertionError, match="Likely bug: " + text):
        check(kernel)


def test_the_message_reports_what_was_measured_on_which_photo():
    with pytest.raises(AssertionError) as err:
        check_blur(np.ones((3, 3)))
    lines = str(err.value).splitlines()
    assert lines[0].startswith("`blur` does not behave as required on photo='camera', kernel=array(3, 3) float64")
    assert lines[1].startswith("  flat grey 0.5 -> 4.5 (needs 0.5 +- 1%)")   # 9 weights of 1 on a 0.5 grey


@pytest.mark.parametrize("kernel, text", [(np.ones((2, 2)), r"must be a 3x3 or 5x5 array; got shape \(2, 2\)"),
                                          (np.full((3, 3), np.nan), "contains inf or nan"),
                                          (np.zeros((5, 5)), "is all zeros: it responds to nothing")],
                         ids=["shape", "nan", "zeros"])
def test_a_kernel_that_is_not_a_kernel_is_refused(kernel, text):
    with pytest.raises(AssertionError, match=f"^`sharpen` {text}"):
        check_sharpen(kernel)


def test_hidden_checks_use_other_photos():
    visible = [name for name, _ in kernel_design._photos(False)]
    hidden = [name for name, _ in kernel_design._photos(True)]
    assert visible and hidden and not set(visible) & set(hidden)


def test_hidden_line_scenes_move_the_lines(monkeypatch):
    monkeypatch.delenv("CONV_COURSE_HIDDEN_SEED", raising=False)     # the package's seed: lines move by (4, 3)
    photo = kernel_design._photo("camera")
    _, fixed = kernel_design.line_scene(photo)
    _, moved = kernel_design.line_scene(photo, kernel_design.case_rng("diagonal", hidden=True))
    assert not np.array_equal(fixed["\\"], moved["\\"])


def test_stripes_hold_only_vertical_or_only_horizontal_edges():
    photo = np.arange(12.0).reshape(3, 4)
    v, h = kernel_design.stripes(photo)
    assert v.tolist() == [[4.0, 5.0, 6.0, 7.0]] * 3                 # the middle row, repeated down
    assert np.array_equal(h, v.T)
