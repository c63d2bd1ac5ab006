"""benchmarks/bench_conv.py: the measuring function the performance appendix imports."""

import runpy

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module")
def bench_conv(repo_root):
    return runpy.run_path(str(repo_root / "benchmarks" / "bench_conv.py"))


def test_run_times_forward_and_backward_per_case(bench_conv):
    suite = [("2x3x9x9 -> 4, 3x3", (2, 3, 9, 9), 4, 3, 1, 1), ("1x2x8x8 -> 2, 2x2 s2", (1, 2, 8, 8), 2, 2, 2, 0)]
    torch_threads = torch.get_num_threads()
    with threadpool_limits(limits=None):  # run() limits BLAS threads; restore them afterwards
        try:
            rows = bench_conv["run"](suite, repeats=1, threads=1)
        finally:
            torch.set_num_threads(torch_threads)
    assert [(r["shape"], r["pass"]) for r in rows] == [(s[0], p) for s in suite for p in ("forward", "backward")]
    for row in rows:
        assert row["ours_ms"] > 0 and row["torch_ms"] > 0
        assert row["ratio"] == pytest.approx(row["ours_ms"] / row["torch_ms"])
    # GFLOP/s uses 2 * outputs * C_in * k * k multiply-adds: 2 * (2*4*9*9) * 3 * 9 forward
    first = rows[0]
    assert first["ours_gflops"] == pytest.approx(2 * 2 * 4 * 81 * 27 / (first["ours_ms"] * 1e-3) / 1e9)


def test_geometric_mean(bench_conv):
    assert bench_conv["geometric_mean"]([0.5, 2.0, 1.0]) == pytest.approx(1.0)
    assert bench_conv["geometric_mean"]([4.0, 1.0]) == pytest.approx(2.0)


def test_each_timing_follows_an_untimed_call_of_the_same_function(bench_conv):
    """So that neither implementation is timed while the other's idle threads still spin."""
    from conv_course import bench

    log = []
    fns = {"ours": lambda: log.append("ours"), "torch": lambda: log.append("torch")}
    bench.interleaved(fns, repeats=2, warmup=0, sync=bench_conv["_settled"](fns, settle_s=0))
    assert log == ["ours", "ours", "torch", "torch"] * 2


def test_each_timing_follows_its_own_function_for_the_settle_time(bench_conv):
    """The untimed calls before a timing last at least settle_s, and only the timed function runs in them."""
    import itertools
    import time

    from conv_course import bench

    log = []
    fns = {name: (lambda name=name: log.append((name, time.perf_counter()))) for name in ("ours", "torch")}
    bench.interleaved(fns, repeats=3, warmup=0, sync=bench_conv["_settled"](fns, settle_s=0.01))
    runs = [list(g) for _, g in itertools.groupby(log, key=lambda item: item[0])]
    assert [run[0][0] for run in runs] == ["ours", "torch"] * 3
    for run in runs:  # untimed calls first, the timed call last
        assert len(run) >= 3 and run[-1][1] - run[0][1] >= 0.01


def test_looped_timings_drop_each_result_before_the_next_call(bench_conv):
    """A call of microseconds is looped thousands of times per timing: its results must not pile up."""
    live = {"now": 0, "most": 0}

    class Result:
        def __init__(self):
            live["now"] += 1
            live["most"] = max(live["most"], live["now"])

        def __del__(self):
            live["now"] -= 1

    res, calls = bench_conv["_timed"]({"ours": Result, "torch": Result}, repeats=1, budget_s=1e-3)
    assert calls > 10 and live["most"] <= 2
