"""The codec at the trust boundary: plain data in, everything else refused before it is inflated."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

from conv_course.autograding import plaindata


def test_round_trips_plain_data():
    value = {"a": [1, 2.5, None, True, "s"], (1, 2): (np.arange(6).reshape(2, 3), np.float32(0.5)),
             "big": 2 ** 80, "nan": float("nan")}
    arrays = []
    back = plaindata.decode(plaindata.encode(value, arrays), arrays)
    assert plaindata.same(value, back)
    assert back["big"] == 2 ** 80 and isinstance(back[(1, 2)], tuple)
    assert np.array_equal(back[(1, 2)][0], np.arange(6).reshape(2, 3))


def test_refuses_non_data():
    for bad in (lambda: 1, object(), np.array([object()]), {1, 2}):
        with pytest.raises(plaindata.Unencodable):
            plaindata.encode(bad, [])


def test_refuses_trees_nested_too_deeply():
    deep = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(plaindata.Unencodable, match="deeply"):
        plaindata.encode(deep, [])
    node = {"t": "none"}
    for _ in range(40):
        node = {"t": "list", "v": [node]}
    with pytest.raises(ValueError):
        plaindata.decode(node, [])


@pytest.mark.parametrize("node", [{"t": "array", "i": 5}, {"t": "int", "v": 3}, {"t": "list", "v": "x"},
                                  {"t": "eval", "v": "1"}, "x", {"t": "dict", "k": [], "v": [{"t": "none"}]},
                                  {"t": "array", "i": True}, {"t": "int", "v": "9" * 500}])
def test_decode_rejects_malformed_trees(node):
    with pytest.raises(ValueError):
        plaindata.decode(node, [np.zeros(1)])


def test_same_compares_shapes_values_and_kinds():
    a = np.array([[1.0, 2.0]])
    assert plaindata.same(a, a + 1e-9)
    assert not plaindata.same(a, a + 1e-3)
    assert not plaindata.same(a, a.reshape(2, 1))
    assert not plaindata.same(np.array([True]), np.array([1]))
    assert plaindata.same(3, 3.0) and not plaindata.same(3, True) and not plaindata.same("a", b"a")
    assert plaindata.same([1, (2, 3)], (1, [2, 3])) and not plaindata.same([1, 2], [1, 2, 3])


def test_read_bundle_refuses_links_fifos_and_pickles(tmp_path):
    plaindata.write_bundle(str(tmp_path), "ok", {"x": 1}, [np.zeros(2)])
    obj, arrays = plaindata.read_bundle(str(tmp_path), "ok")
    assert obj == {"x": 1} and np.array_equal(arrays[0], np.zeros(2))
    os.symlink(tmp_path / "ok.json", tmp_path / "link.json")
    os.symlink(tmp_path / "ok.npz", tmp_path / "link.npz")
    with pytest.raises(OSError):
        plaindata.read_bundle(str(tmp_path), "link")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(ValueError, match="regular file"):
        plaindata.read_bundle(str(tmp_path), "fifo")
    (tmp_path / "pickled.json").write_text("{}")
    np.savez(tmp_path / "pickled.npz", np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        plaindata.read_bundle(str(tmp_path), "pickled")


def test_a_compression_bomb_is_refused_before_it_is_inflated(tmp_path):
    (tmp_path / "bomb.json").write_text("{}")
    np.savez_compressed(tmp_path / "bomb.npz", np.zeros(50_000_000, dtype=np.uint8))  # 50 MB in ~50 KB
    assert os.path.getsize(tmp_path / "bomb.npz") < 1 << 20
    with pytest.raises(ValueError, match="compressed"):
        plaindata.read_bundle(str(tmp_path), "bomb")


def test_array_and_total_sizes_are_limited(tmp_path):
    plaindata.write_bundle(str(tmp_path), "big", {}, [np.zeros(1000), np.zeros(1000)])
    small = plaindata.Limits(array_bytes=10_000, total_bytes=10_000)
    with pytest.raises(ValueError, match="larger than"):
        plaindata.read_bundle(str(tmp_path), "big", small)
    with pytest.raises(ValueError, match="larger than"):
        plaindata.read_bundle(str(tmp_path), "big", plaindata.Limits(array_bytes=100, total_bytes=10 ** 9))


def test_an_array_header_claiming_more_than_its_data_is_refused(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 10,)})
    with zipfile.ZipFile(tmp_path / "lie.npz", "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("arr_0.npy", header.getvalue() + b"\0" * 64)
    (tmp_path / "lie.json").write_text("{}")
    with pytest.raises(ValueError, match="header does not match"):
        plaindata.read_bundle(str(tmp_path), "lie")


def test_huge_trees_and_non_json_are_refused(tmp_path):
    np.savez(tmp_path / "wide.npz")
    (tmp_path / "wide.json").write_text(json.dumps({"v": [[0]] * 5000}))
    with pytest.raises(ValueError, match="data nodes"):
        plaindata.read_bundle(str(tmp_path), "wide", plaindata.Limits(nodes=1000))
    np.savez(tmp_path / "junk.npz")
    (tmp_path / "junk.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="not JSON"):
        plaindata.read_bundle(str(tmp_path), "junk")


def test_regular_files_lists_regular_files_and_refuses_the_rest(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "link").symlink_to("/etc/passwd")
    (tmp_path / "dirlink").symlink_to(tmp_path / "sub")
    os.mkfifo(tmp_path / "pipe")
    refused = []
    got = plaindata.regular_files(str(tmp_path), refused, max_files=10)
    assert sorted(rel for rel, _ in got) == ["a.txt", os.path.join("sub", "b.txt")]
    assert sorted(r.split(":")[0] for r in refused) == ["dirlink", "link", "pipe"]


def test_regular_files_stops_at_the_file_limit(tmp_path):
    for i in range(5):
        (tmp_path / f"f{i}").write_text("x")
    refused = []
    assert len(plaindata.regular_files(str(tmp_path), refused, max_files=3)) == 3
    assert refused == ["more than 3 files: the rest was not read"]
