"""conv_course.glyphs: the rendered, jittered pretraining source."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_course import glyphs


@pytest.fixture(scope="module")
def source():
    return glyphs.GlyphSource()


def test_classes_are_140_distinct_non_digits():
    assert len(glyphs.CLASSES) == 140 == len(set(glyphs.CLASSES))
    assert not any(c.isdigit() for c in glyphs.CLASSES)
    # digit look-alikes stay out: Latin, Greek iota/omicron, Cyrillic Ze/Che/be/E, partial, section
    assert not set("BIOSZlo\u03b9\u03bf\u0417\u0437\u0427\u0447\u0431\u042d\u044d\u2202\u00a7") & set(glyphs.CLASSES)


def test_templates_cover_every_class_in_every_font():
    labels = glyphs.render_templates()[1]
    counts = torch.bincount(labels, minlength=140)
    letters = torch.tensor([c.isascii() and c.isalpha() for c in glyphs.CLASSES])
    # Latin letters in all 16 full fonts and the 5 Computer Modern ones; the rest in the full fonts,
    # except that some math symbols and card suits are missing from a few of them
    assert len(glyphs.FONTS) == 16 and len(glyphs.LETTER_FONTS) == 5
    assert (counts[letters] == 21).all() and (counts[:99][~letters[:99]] == 16).all()
    assert counts[~letters].min() >= 13
    t = glyphs.render_templates()[0]
    assert t.shape == (len(labels), 1, 56, 56) and t.min() >= 0 and t.max() <= 1


def test_monoline_adds_every_template_again_as_a_pen_stroke(source):
    from scipy.ndimage import distance_transform_edt

    drawn, labels = glyphs.render_templates()
    n = len(drawn)
    assert len(source.templates) == 2 * n and torch.equal(source.template_labels, labels.repeat(2))
    assert torch.equal(source.templates[:n], drawn)
    # half the stroke width = the largest distance from ink to background: fonts vary (bold, thin
    # serifs), the pen version stays near its radius 2.5 (a little more where strokes cross)
    half_width = lambda ims: [distance_transform_edt(im > 0.5).max() for im in ims[::25, 0].numpy()]
    assert max(half_width(drawn)) > 7
    assert 2.5 <= min(half_width(source.templates[n:])) and max(half_width(source.templates[n:])) <= 5
    assert len(glyphs.GlyphSource(monoline=0).templates) == n


def test_templates_are_centred_by_mass_and_fit_the_box():
    t = glyphs.render_templates()[0][:, 0].numpy()
    mass = t.sum((1, 2))
    coords = np.arange(56)
    cy = (t.sum(2) * coords).sum(1) / mass
    cx = (t.sum(1) * coords).sum(1) / mass
    assert np.abs(cy - 27.5).max() <= 1.0 and np.abs(cx - 27.5).max() <= 1.0
    ink = t > 0.1
    extent = [max(np.ptp(np.flatnonzero(im.any(1))), np.ptp(np.flatnonzero(im.any(0)))) + 1 for im in ink]
    assert min(extent) >= 37 and max(extent) <= 41  # longer side fitted to 40 px


def test_batch_shapes_range_and_labels(source):
    x, y = source.batch(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert y.dtype == torch.int64 and 0 <= y.min() and y.max() < len(glyphs.CLASSES) == 140


def test_batches_are_reproducible_and_always_new(source):
    a = source.batch(16, torch.Generator().manual_seed(5))
    b = source.batch(16, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    it = source.batches(16, seed=5)
    first, second = next(it), next(it)
    assert torch.equal(first[0], a[0])
    assert not torch.equal(first[0], second[0])


def test_without_jitter_a_sample_is_its_downsampled_template():
    plain = glyphs.GlyphSource(rotation=0, scale=(1, 1), aspect=0, shear=0, shift=0,
                               stroke=(0, 1, 0), blur=0, noise=0, elastic=0)
    gen = torch.Generator().manual_seed(0)
    x, _ = plain.batch(8, gen)
    idx = torch.randint(len(plain.templates), (8,), generator=torch.Generator().manual_seed(0))
    want = F.avg_pool2d(plain.templates[idx], 2)
    want = want / want.amax((1, 2, 3), keepdim=True)
    torch.testing.assert_close(x, want, atol=2e-2, rtol=0)


def test_jitter_changes_the_same_template(source):
    # same glyph drawn many times: the jittered versions differ from each other
    x, y = source.batch(400, torch.Generator().manual_seed(1))
    same = x[y == y[0]]
    assert len(same) >= 2
    assert (same[0] - same[1]).abs().mean() > 0.02


def test_glyph_dataset_is_a_fixed_labelled_sample():
    ds = glyphs.glyph_dataset(20, seed=3)
    again = glyphs.glyph_dataset(20, seed=3)
    assert len(ds) == 20 and torch.equal(ds.images, again.images)
    assert ds.classes == glyphs.CLASSES
    with pytest.raises(ValueError, match="`n` must be a positive integer"):
        glyphs.glyph_dataset(0)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "2", True])
def test_monoline_must_be_zero_or_a_positive_radius(bad):
    with pytest.raises(ValueError, match="`monoline` must be 0 or a positive stroke radius"):
        glyphs.GlyphSource(monoline=bad)
