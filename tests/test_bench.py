import json

from conv_course import bench


def test_interleaved_reports_median_and_iqr_per_function():
    calls = []
    res = bench.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                            repeats=5, warmup=2)
    assert set(res) == {"a", "b"}
    assert calls[:4] == ["a", "a", "b", "b"]           # warmup first
    assert calls[4:] == ["a", "b"] * 5                 # then round-robin
    assert all(r["median_s"] >= 0 and r["iqr_s"] >= 0 for r in res.values())


def test_write_results_writes_json(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", str(tmp_path))
    path = bench.write_results("demo", {"ratio": 0.5})
    assert json.load(open(path)) == {"ratio": 0.5}
