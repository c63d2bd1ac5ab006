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


def test_format_table_aligns_columns_and_marks_missing():
    text = bench.format_table([{"x": 1.5, "y": None}, {"x": 10.25, "y": 3}],
                              [("x", "x", "{:.2f}"), ("y", "why", "{}")])
    lines = text.splitlines()
    assert lines[0].split() == ["x", "why"]
    assert lines[2].split() == ["1.50", "-"]
    assert len({len(line) for line in lines}) == 1


def test_write_results_writes_json(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", str(tmp_path))
    path = bench.write_results("demo", {"ratio": 0.5})
    assert json.load(open(path)) == {"ratio": 0.5}
