"""Checkers for assignment 04: kernels the STUDENT designs, graded by behaviour on real photos.

No kernel is compared with one right answer: a kernel passes when it does the job on images from
`conv_course.images` (a cameraman, coins, bricks...). Visible checks use one photo, hidden checks
others. Every criterion is scale-free unless the job fixes the scale (a blur keeps brightness).
"""

import functools

import numpy as np

from conv_course import images, ops

from ._core import case_rng, checker, format_case, likely_bug
from ._i18n import _

__all__ = ["check_vertical_edge", "check_blur", "check_sharpen", "check_diagonal", "stripes", "line_scene"]

_VISIBLE, _HIDDEN = ["camera"], ["coins", "brick", "text"]


@functools.lru_cache(maxsize=None)
def _photo(name, size=96):
    """A (size, size) grayscale crop of a shipped photo's centre, every 1st-3rd pixel, in [0, 1].

    Grayscale PNGs are decoded with Pillow (the values `images.load` gives, without importing
    matplotlib: grading time counts); anything else goes through `images.load`.
    """
    try:
        from PIL import Image

        with Image.open(images.CATALOG[name].path()) as f:
            img = np.asarray(f) / 255.0 if f.mode == "L" else None
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        img = None
    if img is None:
        img = images.load(name)
    h, w = img.shape
    step = max(1, min(3, min(h, w) // size))
    top, left = (h - step * size) // 2, (w - step * size) // 2
    return np.ascontiguousarray(img[top:top + step * size:step, left:left + step * size:step])


def _photos(hidden):
    return [(name, _photo(name)) for name in (_HIDDEN if hidden else _VISIBLE)]


def _kernel(kernel, what):
    k = np.asarray(kernel, dtype=np.float64) if not isinstance(kernel, np.ndarray) else kernel.astype(np.float64)
    if k.shape not in ((3, 3), (5, 5)):
        raise AssertionError(_("`{name}` must be a 3x3 or 5x5 array; got shape {shape}").format(
            name=what, shape=k.shape))
    if not np.all(np.isfinite(k)):
        raise AssertionError(_("`{name}` contains inf or nan").format(name=what))
    if not np.any(k):
        raise AssertionError(_("`{name}` is all zeros: it responds to nothing").format(name=what))
    return k


def _same(img, k):
    return ops.corr2d(img, k, padding=k.shape[0] // 2)


def _inner(a, m=3):
    return a[m:-m, m:-m]  # drop the zero-padding border


def stripes(photo, row=None):
    """(V, H): a real row of `photo` repeated down the image (only vertical edges), and its transpose."""
    row = photo[photo.shape[0] // 2 if row is None else row]
    v = np.tile(row, (photo.shape[0], 1))
    return v, v.T.copy()


def _fail(what, case, lines, bug):
    raise AssertionError(_("`{name}` does not behave as required on {case}").format(name=what, case=format_case(case))
                         + "".join(f"\n  {line}" for line in lines) + "\n  " + likely_bug(bug))


@checker
def check_vertical_edge(kernel, group="basic", hidden=False):
    """A vertical-edge detector: strong on vertical edges, weak on horizontal ones and on flat areas."""
    k = _kernel(kernel, "vertical_edge")
    for name, photo in _photos(hidden):
        v, h = stripes(photo)
        on_v, on_h = np.abs(_inner(_same(v, k))).mean(), np.abs(_inner(_same(h, k))).mean()
        flat = abs(float(_inner(_same(np.full_like(photo, 0.5), k)).mean()))
        case = {"photo": name, "kernel": k}
        lines = [_("mean |response| to vertical edges {on_v:.4g}, to horizontal edges {on_h:.4g} "
                   "(needs <= 0.2 x {on_v:.4g}), to a flat grey image {flat:.4g} (needs about 0)").format(
                       on_v=on_v, on_h=on_h, flat=flat)]
        if on_h > 0.2 * on_v:
            bug = (_("your kernel detects horizontal edges (it compares rows); a vertical edge changes along a "
                     "ROW, so compare columns: left column minus right column, e.g. transpose your kernel")
                   if on_h > 2 * on_v else
                   _("your kernel responds to edges of every direction; weight the columns differently and "
                     "keep each column's pattern the same down the rows"))
            _fail("vertical_edge", case, lines, bug)
        if flat > 0.05 * on_v:
            _fail("vertical_edge", case, lines, _("it responds to flat areas: the weights must sum to 0 "
                                                  "(yours sum to {total:.4g})").format(total=k.sum()))


@checker
def check_blur(kernel, group="basic", hidden=False):
    """A blur: keeps brightness (weights sum to 1), cuts pixel noise at least in half, keeps the picture."""
    k = _kernel(kernel, "blur")
    rng = case_rng("blur", hidden)
    for name, photo in _photos(hidden):
        noise = 0.1 * rng.standard_normal(photo.shape)
        flat = float(_inner(_same(np.full_like(photo, 0.5), k)).mean())
        residual = _inner(_same(photo + noise, k) - _same(photo, k)).std() / noise.std()
        case = {"photo": name, "kernel": k}
        lines = [_("flat grey 0.5 -> {flat:.4g} (needs 0.5 +- 1%); noise kept {residual:.1%} (needs <= 50%)").format(
            flat=flat, residual=residual)]
        if abs(flat - 0.5) > 0.005:
            _fail("blur", case, lines, _("the weights sum to {total:.4g}, so brightness changes; divide the "
                                         "kernel by its sum").format(total=k.sum()))
        if residual > 0.5:
            _fail("blur", case, lines, _("it does not smooth: spread positive weights over the window (a box "
                                         "or a Gaussian) instead of concentrating them on one pixel or mixing signs"))


def _detail(a):
    return np.abs(_inner(ops.corr2d(a, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]), padding=1))).mean()


@checker
def check_sharpen(kernel, group="basic", hidden=False):
    """A sharpener: keeps brightness, boosts fine detail by >= 1.5x, still looks like the photo."""
    k = _kernel(kernel, "sharpen")
    for name, photo in _photos(hidden):
        out = _same(photo, k)
        flat = float(_inner(_same(np.full_like(photo, 0.5), k)).mean())
        gain = _detail(out) / _detail(photo)
        similar = np.corrcoef(_inner(out).ravel(), _inner(photo).ravel())[0, 1]
        case = {"photo": name, "kernel": k}
        lines = [_("flat grey 0.5 -> {flat:.4g} (needs 0.5 +- 1%); fine detail x{gain:.2f} (needs >= 1.5); "
                   "correlation with the photo {similar:.2f} (needs >= 0.5)").format(flat=flat, gain=gain,
                                                                                     similar=similar)]
        if abs(flat - 0.5) > 0.005:
            bug = (_("the weights sum to {total:.4g}: that is an edge detector, not a sharpener; add the image "
                     "back (add 1 to the centre weight)") if abs(k.sum()) < 1e-6 else
                   _("the weights sum to {total:.4g}, so brightness changes; they must sum to 1"))
            _fail("sharpen", case, lines, bug.format(total=k.sum()))
        if gain < 1.5:
            _fail("sharpen", case, lines, _("it does not boost detail: use a centre weight above 1 and negative "
                                            "neighbours (image + (image - blurred image))"))
        if similar < 0.5:
            _fail("sharpen", case, lines, _("the result no longer looks like the photo: sharpen less (a smaller "
                                            "centre weight, smaller negative neighbours)"))


def line_scene(photo, rng=None, size=21):
    """A dimmed real photo with four thin bright lines: "\\" (the target), "/", "|" and "-".

    Returns (scene (96, 96), masks): line name -> boolean mask of the pixels within 1 px of it.
    """
    scene = 0.4 * photo
    n = scene.shape[0]
    off = (0, 0) if rng is None else tuple(int(v) for v in rng.integers(-4, 5, size=2))
    r0, c0 = 10 + off[0], 10 + off[1]
    t = np.arange(size)
    lines = {"\\": (r0 + t, c0 + t), "/": (r0 + t, n - 10 - t), "|": (n - 12 - t, c0 + 12 + 0 * t),
             "-": (n - 16 + 0 * t, n // 2 + 4 + t)}
    masks = {}
    for name, (rows, cols) in lines.items():
        scene[rows, cols] += 0.6
        mask = np.zeros(scene.shape, bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                mask[np.clip(rows + dr, 0, n - 1), np.clip(cols + dc, 0, n - 1)] = True
        masks[name] = mask
    return scene, masks


def _diagonal_verdict(k, scene, masks):
    """(None or the rival line that wins, report line) for kernel `k` on a line scene."""
    resp = _same(scene, k)
    resp[:3], resp[-3:], resp[:, :3], resp[:, -3:] = -np.inf, -np.inf, -np.inf, -np.inf
    peak = {line: float(resp[m].max()) for line, m in masks.items()}
    base = float(np.median(resp[3:-3, 3:-3]))
    report = _("peak response on the lines: {peaks}; median over the photo {base:.3g}").format(
        peaks=", ".join(f"'{line}' {v:.3g}" for line, v in peak.items()), base=base)
    where = np.unravel_index(np.argmax(resp), resp.shape)
    if not masks["\\"][where]:
        on = [line for line in masks if masks[line][where]]
        return (on[0] if on else "photo"), report
    rival = max((line for line in peak if line != "\\"), key=peak.get)
    if peak["\\"] - base < 1.5 * max(peak[rival] - base, 0.0):
        return rival, report
    return None, report


@checker
def check_diagonal(kernel, group="basic", hidden=False):
    """A "\\"-diagonal line finder: its strongest response in a real photo is on the "\\" line,
    clearly ahead of the "/", "|" and "-" lines."""
    k = _kernel(kernel, "diagonal")
    rng = case_rng("diagonal", hidden) if hidden else None
    for name, photo in _photos(hidden):
        scene, masks = line_scene(photo, rng)
        rival, report = _diagonal_verdict(k, scene, masks)
        if rival is None:
            continue
        if _diagonal_verdict(k[:, ::-1], scene, masks)[0] is None:
            bug = _("your kernel finds the other diagonal (/): mirror it left-right (kernel[:, ::-1])")
        elif rival == "photo" or abs(k.sum()) > 0.2 * np.abs(k).sum() and rival not in ("|", "-"):
            bug = _("its response follows the photo's brightness (weights sum to {total:.3g}): make the weights "
                    "sum to 0 (subtract their mean) so smooth areas cancel and thin lines stand out").format(
                        total=k.sum())
        else:
            bug = _("your kernel responds as much to the '{rival}' line: put positive weights on the main "
                    "diagonal and negative ones off it").format(rival=rival)
        _fail("diagonal", {"photo": name, "kernel": k}, [report], bug)
