"""conv_course.glyphs: the rendered, jittered pretraining source."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv_course import glyphs


@pytest.fixture(scope="module")
def source():
    return glyphs.GlyphSource()


def test_classes_are_58_distinct_non_digits():
    assert len(glyphs.CLASSES) == 58 == len(set(glyphs.CLASSES))
    assert not any(c.isdigit() for c in glyphs.CLASSES)
    assert not set("BIOSZlo") & set(glyphs.CLASSES)  # digit look-alikes stay out


def test_templates_cover_every_class_in_every_font(source):
    labels = source.template_labels
    assert torch.bincount(labels, minlength=58).min() == len(glyphs.FONTS) == 16
    t = source.templates
    assert t.shape == (len(labels), 1, 56, 56) and t.min() >= 0 and t.max() <= 1


def test_templates_are_centred_by_mass_and_fit_the_box(source):
    t = source.templates[:, 0].numpy()
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
    assert y.dtype == torch.int64 and 0 <= y.min() and y.max() < 58


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
