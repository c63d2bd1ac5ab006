"""conv_course._engine.threads: batch parts on BLAS's thread count, each with one-threaded BLAS."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from conv_course import ops
from conv_course._engine import threads


def blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.mark.parametrize("n, parts, sizes", [(5, 2, [3, 2]), (4, 2, [2, 2]), (1, 2, [1]), (7, 3, [3, 2, 2])])
def test_split_makes_contiguous_nearly_equal_parts(n, parts, sizes):
    got = threads.split(list(range(n)), parts)
    assert [len(p) for p in got] == sizes
    assert sum(got, []) == list(range(n))


def test_run_parts_uses_one_thread_per_part_with_single_threaded_blas():
    seen = []

    def work(part):
        seen.append((tuple(part), threading.get_ident(), blas_threads()))
        return sum(part)

    with threadpool_limits(limits=2, user_api="blas"):
        results = threads.run_parts(work, list(range(6)))
        after = blas_threads()
    assert sorted(results) == [0 + 1 + 2, 3 + 4 + 5]
    assert len({ident for _, ident, _ in seen}) == 2
    assert all(inside == [1] * len(inside) for _, _, inside in seen)
    assert after == [2] * len(after)


def test_run_parts_runs_inline_with_one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        assert threads.run_parts(lambda part: (list(part), threading.get_ident()), [1, 2, 3]) == \
            [([1, 2, 3], threading.get_ident())]


@pytest.mark.parametrize("threads", [1, 2])
def test_conv2d_results_do_not_depend_on_the_thread_count(threads):
    rng = np.random.default_rng(0)
    x, weight = rng.standard_normal((6, 3, 10, 9)), rng.standard_normal((4, 3, 3, 3))
    grad_out = rng.standard_normal((6, 4, 8, 7))
    want = [ops.conv2d_naive(x, weight)]
    with threadpool_limits(limits=threads, user_api="blas"):
        got = [ops.conv2d(x, weight)] + list(ops.conv2d_backward(grad_out, x, weight))
    np.testing.assert_allclose(got[0], want[0], atol=1e-12)
    with threadpool_limits(limits=1, user_api="blas"):
        serial = ops.conv2d_backward(grad_out, x, weight)
    for g, s in zip(got[1:], serial):
        np.testing.assert_allclose(g, s, atol=1e-12)


def test_a_forked_child_gets_its_own_pool():
    """A child forked after the pool started must not wait on the parent's (absent) threads."""
    import multiprocessing as mp

    x, weight = np.ones((4, 2, 6, 6)), np.ones((3, 2, 3, 3))
    with threadpool_limits(limits=2, user_api="blas"):
        ops.conv2d(x, weight)  # starts the pool in this process
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        res = pool.apply_async(_conv_sum_in_child, (x, weight))
        assert res.get(timeout=30) == 4 * 3 * 4 * 4 * (2 * 9)


def _conv_sum_in_child(x, weight):
    with threadpool_limits(limits=2, user_api="blas"):
        return float(ops.conv2d(x, weight).sum())


@pytest.mark.parametrize("n, ho, row_bytes", [(64, 24, 7000), (64, 24, 40000), (1, 112, 90000), (3, 10, 10**9)])
def test_blocks_cover_the_batch_once_in_equal_shares_per_thread(n, ho, row_bytes):

    with threadpool_limits(limits=2, user_api="blas"):
        got = threads.blocks(n, ho, row_bytes)
    cells = sorted((s, r) for n0, n1, r0, r1 in got for s in range(n0, n1) for r in range(r0, r1))
    assert cells == [(s, r) for s in range(n) for r in range(ho)]
    sizes = [sum((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in part) for part in threads.split(got, 2)]
    assert len(sizes) == 2 and sizes[0] == sizes[1]


def test_scratch_reuses_a_buffer_per_name_and_thread_and_grows_on_demand():
    view = threads.scratch(np.float32)
    a = view("test_buf", (2, 3))
    b = view("test_buf", (3, 2))
    assert a.dtype == np.float32 and b.shape == (3, 2) and np.shares_memory(a, b)
    assert not np.shares_memory(b, view("test_other", (6,)))
    big = view("test_buf", (100,))
    assert big.size == 100 and not np.shares_memory(a, big)
    other = []
    thread = threading.Thread(target=lambda: other.append(threads.scratch(np.float32)("test_buf", (100,))))
    thread.start()
    thread.join()
    assert not np.shares_memory(other[0], big)
