"""Rendered glyphs: an offline pretraining source that looks like MNIST but holds no digits.

140 classes of characters that are not digits are rendered once from the fonts matplotlib
ships: Latin capitals and the lowercase letters whose shape differs from their capital, Greek
and Cyrillic letters, and symbols. Characters that look like a digit are left out (B I O S Z l o,
Greek iota and omicron, Cyrillic Ze, Che, be and reversed E, the partial and the
section signs), and so are small letters that are only smaller capitals (Cyrillic), because every
glyph is scaled to the same box. The fonts are DejaVu Sans, Sans Mono and Serif and STIX, every
style (16 fonts; a few math symbols and card suits are missing from two or three of them), plus
five Computer Modern fonts for the Latin letters.
Each template is fitted into a 20x20 box and centred by its centre of mass in a 28x28 frame,
the way MNIST was made (drawn at twice the resolution).

`GlyphSource` also redraws every template as a pen stroke of constant width (skeleton, then
thickened), and `GlyphSource.batch` makes new samples on the fly, all in torch on whole batches:
stroke-width change (dilate or erode), a random affine map (rotation, scale, aspect, shear,
shift) plus a smooth elastic warp, downsampling, Gaussian blur and noise. No two samples are
the same, so a network trained on it cannot memorise; `glyph_dataset` draws a fixed, seeded
set for evaluation. Many classes and strong warps are what make the features transfer to
handwritten digits: the network must tell apart shapes that differ in their strokes, not in
their font.
"""

import functools
import os

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CLASSES", "FONTS", "LETTER_FONTS", "GlyphSource", "glyph_dataset", "render_templates"]

CLASSES = (list("ACDEFGHJKLMNPQRTUVWXY")              # 21 capitals (no B I O S Z: digit look-alikes)
           + list("abdefghijmnqrty")                  # 15 lowercase that differ from their capital
           + list("+\u00d7\u00f7=<>%&@#$?!*/\\()[]{}")  # 22 symbols
           + list("\u03b1\u03b2\u03b3\u03b5\u03b6\u03b7\u03b8\u03ba\u03bb\u03bc"   # 20 Greek lowercase
                  "\u03bd\u03be\u03c0\u03c1\u03c4\u03c5\u03c6\u03c7\u03c8\u03c9")  # (no iota, omicron)
           + list("\u0393\u0394\u0398\u039b\u039e\u03a0\u03a3\u03a6\u03a8\u03a9")  # 10 Greek capitals unlike Latin
           + list("\u0414\u0416\u0418\u041b\u0426\u0428\u0429\u042a\u042b\u042e\u042f")  # 11 Cyrillic capitals
           + list("~^\u00b1\u00b6\u221e\u221a\u222b\u2248\u2260\u2264\u2265\u2192\u2190\u2191\u2193"  # 41 more
                  "\u2660\u2663\u2665\u2666\u20ac\u00a3\u00a5\u00a2\u00a9\u00ae\u2207\u266a\u263a"   # symbols
                  "\u263c\u25ca\u2295\u2297\u2229\u222a\u2208\u2209\u2282\u2283\u2200\u2203\u00ac"))
FONTS = ([f"DejaVu{fam}{sty}.ttf" for fam in ("Sans", "SansMono")
          for sty in ("", "-Bold", "-Oblique", "-BoldOblique")]
         + [f"DejaVuSerif{sty}.ttf" for sty in ("", "-Bold", "-Italic", "-BoldItalic")]
         + [f"STIXGeneral{sty}.ttf" for sty in ("", "Bol", "Italic", "BolIta")])
# Computer Modern (roman, sans, typewriter, math italic, text italic): more letter shapes. Their
# other code points hold TeX's own glyphs (ASCII '<' is an inverted '!'), so only A-Z a-z are used.
LETTER_FONTS = ["cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmmi10.ttf", "cmti10.ttf"]

_HI = 56    # template side: 2x the 28x28 output, so strokes and affine maps are antialiased
_BOX = 40   # the glyph's longer side in the template (MNIST: 20 px in 28)


def _font_dir():
    import matplotlib

    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")


def _render(font, ch):
    """The glyph as a float (h, w) bitmap cropped to its ink, or None if the font lacks it."""
    if font.get_char_index(ord(ch)) == 0:
        return None
    font.set_size(96, 72)  # 96 px em: larger than the template, so fitting only shrinks
    font.set_text(ch, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    img = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    rows, cols = np.flatnonzero(img.max(1) > 0.1), np.flatnonzero(img.max(0) > 0.1)
    if len(rows) == 0:
        return None
    return img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _fit_and_centre(img):
    """Scale the longer side to _BOX (aspect kept), then centre by centre of mass in _HI x _HI."""
    h, w = img.shape
    scale = _BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = F.interpolate(torch.from_numpy(img)[None, None], size=(nh, nw), mode="bilinear",
                          antialias=True, align_corners=False)[0, 0].clamp(0, 1).numpy()
    mass = small.sum()
    cy = (small.sum(1) * np.arange(nh)).sum() / mass
    cx = (small.sum(0) * np.arange(nw)).sum() / mass
    top = int(np.clip(round(_HI / 2 - 0.5 - cy), 0, _HI - nh))
    left = int(np.clip(round(_HI / 2 - 0.5 - cx), 0, _HI - nw))
    out = np.zeros((_HI, _HI), np.float32)
    out[top:top + nh, left:left + nw] = small
    return out


@functools.lru_cache(maxsize=4)
def render_templates(classes=tuple(CLASSES), fonts=tuple(FONTS), letter_fonts=tuple(LETTER_FONTS)):
    """Render every (class, font) pair once; `letter_fonts` render only the ASCII letters.

    Returns:
        (templates (T, 1, 56, 56) float32 in [0, 1], labels (T,) int64): T is about
        len(classes) * len(fonts) + (ASCII letters) * len(letter_fonts), less the glyphs a
        font lacks.
    """
    from matplotlib.ft2font import FT2Font

    images, labels = [], []
    for name in fonts + letter_fonts:
        font = FT2Font(os.path.join(_font_dir(), name))
        for label, ch in enumerate(classes):
            if name in letter_fonts and not (ch.isascii() and ch.isalpha()):
                continue
            img = _render(font, ch)
            if img is not None:
                images.append(_fit_and_centre(img))
                labels.append(label)
    missing = set(range(len(classes))) - set(labels)
    if missing:
        raise ValueError(f"render_templates: no font renders {[classes[i] for i in sorted(missing)]}")
    return torch.from_numpy(np.stack(images)[:, None]), torch.tensor(labels, dtype=torch.int64)


@functools.lru_cache(maxsize=4)
def _monoline_templates(radius):
    """Every template redrawn as a pen stroke of constant width: its skeleton, thickened to
    `radius` template pixels on each side (antialiased). (T, 1, 56, 56) float32 in [0, 1]."""
    from scipy.ndimage import distance_transform_edt
    from skimage.morphology import skeletonize

    templates = render_templates()[0][:, 0].numpy()
    out = [np.clip(radius + 0.5 - distance_transform_edt(~skeletonize(t > 0.5)), 0.0, 1.0) for t in templates]
    return torch.from_numpy(np.stack(out).astype(np.float32))[:, None]


def _uniform(gen, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=gen)


class GlyphSource:
    """An endless supply of jittered 28x28 glyph images, white on black like MNIST.

    Args:
        rotation: maximum rotation in degrees (uniform in +-rotation).
        scale: (low, high) overall size factor.
        aspect: maximum log-aspect change; width/height ratio in [e**-aspect, e**aspect].
        shear: maximum horizontal shear (x += shear * y).
        shift: maximum translation in output pixels.
        stroke: probabilities of (thinner, unchanged, thicker) strokes.
        blur: maximum Gaussian blur sigma in output pixels.
        noise: maximum standard deviation of added Gaussian noise.
        elastic: amplitude of a smooth random displacement field (in units of half the image
            side; 0.08 moves pixels by up to about 1 output pixel), which bends straight font
            strokes the way handwriting does (Simard et al., 2003).
        monoline: 0, or a stroke radius in template pixels (56x56): then every template also
            comes redrawn as a pen stroke of constant width (its skeleton, thickened), since
            handwriting has none of a font's thick and thin strokes; drawn and pen versions are
            equally likely.
    """

    def __init__(self, rotation=20.0, scale=(0.8, 1.1), aspect=0.2, shear=0.3, shift=2.0,
                 stroke=(0.25, 0.45, 0.3), blur=0.8, noise=0.1, elastic=0.2, monoline=2.5):
        if isinstance(monoline, bool) or not (isinstance(monoline, (int, float)) and 0 <= monoline < float("inf")):
            raise ValueError(f"GlyphSource: `monoline` must be 0 or a positive stroke radius; got {monoline!r}")
        self.templates, self.template_labels = render_templates()
        if monoline:
            self.templates = torch.cat([self.templates, _monoline_templates(float(monoline))])
            self.template_labels = self.template_labels.repeat(2)
        # stroke variants, computed once: eroded (thinner), as drawn, dilated (thicker)
        self._strokes = torch.stack([-F.max_pool2d(-self.templates, 3, 1, 1), self.templates,
                                     F.max_pool2d(self.templates, 3, 1, 1)])
        self.classes = list(CLASSES)
        self.rotation, self.scale, self.aspect, self.shear = rotation, scale, aspect, shear
        self.shift, self.blur, self.noise, self.elastic = shift, blur, noise, elastic
        self.stroke = torch.tensor(stroke, dtype=torch.float32)

    @property
    def num_classes(self):
        return len(self.classes)

    def _affine(self, n, gen):
        rot = torch.deg2rad(_uniform(gen, n, -self.rotation, self.rotation))
        s = _uniform(gen, n, *self.scale)
        a = torch.exp(_uniform(gen, n, -self.aspect, self.aspect))
        sh = _uniform(gen, n, -self.shear, self.shear)
        cos, sin = torch.cos(rot), torch.sin(rot)
        # forward map: rotate @ shear @ diag(s*sqrt(a), s/sqrt(a)); affine_grid needs its inverse
        fwd = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        fwd = fwd @ torch.stack([torch.stack([torch.ones(n), sh], -1),
                                 torch.stack([torch.zeros(n), torch.ones(n)], -1)], -2)
        fwd = fwd * torch.stack([s * a.sqrt(), s / a.sqrt()], -1)[:, None, :]
        inv = torch.linalg.inv(fwd)
        t = _uniform(gen, 2 * n, -self.shift, self.shift).view(n, 2, 1) / 14.0  # output px -> [-1, 1]
        return torch.cat([inv, -inv @ t], dim=2)                               # (n, 2, 3)

    def batch(self, n, generator=None):
        """`n` fresh samples: images (n, 1, 28, 28) float32 in [0, 1] and labels (n,) int64."""
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        idx = torch.randint(len(self.templates), (n,), generator=gen)
        kind = torch.multinomial(self.stroke, n, replacement=True, generator=gen)
        x, y = self._strokes[kind, idx], self.template_labels[idx]
        grid = F.affine_grid(self._affine(n, gen), (n, 1, _HI, _HI), align_corners=False)
        if self.elastic > 0:  # random offsets on a 5x5 lattice, interpolated smoothly to every pixel
            coarse = (2 * torch.rand(n, 2, 5, 5, generator=gen) - 1) * self.elastic
            grid = grid + F.interpolate(coarse, size=(_HI, _HI), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
        x = F.avg_pool2d(F.grid_sample(x, grid, align_corners=False), 2)         # (n, 1, 28, 28)
        x = self._blur(x, _uniform(gen, n, 0.0, self.blur))
        x = x / x.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        x = x + torch.randn(x.shape, generator=gen) * _uniform(gen, n, 0.0, self.noise).view(n, 1, 1, 1)
        return x.clamp_(0.0, 1.0), y

    @staticmethod
    def _blur(x, sigma):
        """Blur each image of (n, 1, H, W) `x` with its own Gaussian of width sigma[i] (0 = none)."""
        u = torch.arange(-2, 3, dtype=torch.float32)
        g = torch.exp(-u[None] ** 2 / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
        g = g / g.sum(1, keepdim=True)                                              # (n, 5)
        k = (g[:, :, None] * g[:, None, :])[:, None]                                # (n, 1, 5, 5)
        n = x.shape[0]
        return F.conv2d(x.view(1, n, *x.shape[2:]), k, padding=2, groups=n).view_as(x)

    def batches(self, batch_size, seed=0):
        """An endless iterator of (images, labels) batches, reproducible from `seed`."""
        gen = torch.Generator().manual_seed(seed)
        while True:
            yield self.batch(batch_size, gen)


def glyph_dataset(n, seed=0, source=None):
    """A fixed set of `n` fresh glyph samples (seeded), as a `data.ImageDataset` with class names."""
    from .data import ImageDataset

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"glyph_dataset: `n` must be a positive integer; got {n!r}")
    source = source or GlyphSource()
    x, y = source.batch(n, torch.Generator().manual_seed(seed))
    return ImageDataset(x, y, source.classes)
