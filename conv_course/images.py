"""Real photographs that ship inside installed packages, loaded offline.

Every image comes from a file inside scikit-image, scikit-learn or matplotlib: no download.
`load` returns float arrays in [0, 1]: grayscale (H, W) by default, RGB (H, W, 3) with
``color=True``. `describe` lists each image with its source and licence.
"""

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["load", "names", "describe", "Photo", "CATALOG"]

# Rec. 709 luma, the weights scikit-image's rgb2gray uses.
_LUMA = np.array([0.2125, 0.7154, 0.0721])


@dataclass(frozen=True)
class Photo:
    """Where a shipped photo lives and under which terms we may show it."""

    package: str
    relpath: str
    description: str
    source: str
    licence: str

    def path(self):
        module = __import__(self.package, fromlist=["__file__"])
        return os.path.join(os.path.dirname(module.__file__), self.relpath)


CATALOG = {
    "camera": Photo("skimage", "data/camera.png", "cameraman on a tripod, 512x512 grayscale",
                    "scikit-image data (skimage.data.camera)", "public domain (no copyright restrictions)"),
    "coins": Photo("skimage", "data/coins.png", "Greek coins from Pompeii, 303x384 grayscale",
                   "Brooklyn Museum via scikit-image", "public domain"),
    "astronaut": Photo("skimage", "data/astronaut.png", "astronaut Eileen Collins, 512x512 RGB",
                       "NASA via scikit-image", "public domain"),
    "chelsea": Photo("skimage", "data/chelsea.png", "Chelsea the cat, 300x451 RGB",
                     "Stefan van der Walt via scikit-image", "CC0"),
    "coffee": Photo("skimage", "data/coffee.png", "a cup of coffee, 400x600 RGB",
                    "Rachel Michetti via scikit-image", "CC0"),
    "brick": Photo("skimage", "data/brick.png", "a brick wall texture, 512x512 grayscale",
                   "scikit-image data", "CC0"),
    "text": Photo("skimage", "data/text.png", "printed text, 172x448 grayscale",
                  "scikit-image data", "public domain"),
    "china": Photo("sklearn", "datasets/images/china.jpg", "a Chinese temple, 427x640 RGB",
                   "scikit-learn sample image (Flickr)", "CC BY 2.0"),
    "flower": Photo("sklearn", "datasets/images/flower.jpg", "a flower, 427x640 RGB",
                    "scikit-learn sample image (Flickr)", "CC BY 2.0"),
    "grace_hopper": Photo("matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                          "Rear Admiral Grace Hopper, 600x512 RGB",
                          "U.S. Navy via matplotlib sample data", "public domain"),
}


def names():
    """Names accepted by `load`."""
    return list(CATALOG)


def _read(path):
    import matplotlib.image as mpimg  # reads PNG natively and JPEG through Pillow

    img = np.asarray(mpimg.imread(path))
    if img.dtype == np.uint8:
        img = img / 255.0
    img = img.astype(np.float64)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    return img


def load(name, color=False, dtype=np.float64):
    """Load a shipped photo as a float array in [0, 1].

    Args:
        name: one of `names()`.
        color: False for grayscale (H, W); True for RGB (H, W, 3) (gray photos are repeated).
        dtype: float32 or float64.
    Returns:
        (H, W) or (H, W, 3) array of `dtype` in [0, 1].
    """
    if name not in CATALOG:
        raise ValueError(f"images.load: unknown image {name!r}; choose one of {names()}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"images.load: `dtype` must be a float dtype; got {dtype}")
    img = _read(CATALOG[name].path())
    if color and img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif not color and img.ndim == 3:
        img = img @ _LUMA
    return np.clip(img, 0.0, 1.0).astype(dtype)


def describe():
    """One line per photo: name, description, source and licence."""
    return "\n".join(f"{n}: {p.description}; source: {p.source}; licence: {p.licence}"
                     for n, p in CATALOG.items())
